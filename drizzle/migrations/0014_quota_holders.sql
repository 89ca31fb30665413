ALTER TABLE `quota_reservations` ADD `held_by` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;--> statement-breakpoint
CREATE TABLE `quota_shared_holds` (
	`user_id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`held_by` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`bytes` bigint NOT NULL DEFAULT 0,
	CONSTRAINT `quota_shared_holds_user_id_held_by_pk` PRIMARY KEY(`user_id`,`held_by`)
);
