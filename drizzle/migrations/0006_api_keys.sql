CREATE TABLE `api_keys` (
	`id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`public_id` varchar(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`user_id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`name` varchar(100) NOT NULL,
	`scopes` json NOT NULL,
	`secret_hash` char(64) NOT NULL,
	`created_by` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
	`created_at` datetime(3) NOT NULL,
	`expires_at` datetime(3),
	`revoked_at` datetime(3),
	`revoked_reason` varchar(32),
	`last_used_at` datetime(3),
	`last_used_ip` varchar(64),
	CONSTRAINT `api_keys_id` PRIMARY KEY(`id`),
	CONSTRAINT `api_keys_public_id_uq` UNIQUE(`public_id`)
);
--> statement-breakpoint
ALTER TABLE `audit_events` ADD `api_key_id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;--> statement-breakpoint
ALTER TABLE `users` ADD `kind` varchar(16) DEFAULT 'human' NOT NULL;--> statement-breakpoint
CREATE INDEX `api_keys_user_idx` ON `api_keys` (`user_id`,`id`);--> statement-breakpoint
CREATE INDEX `users_kind_idx` ON `users` (`kind`,`id`);