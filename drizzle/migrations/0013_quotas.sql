ALTER TABLE `users` ADD `quota_bytes` bigint;--> statement-breakpoint
ALTER TABLE `users` ADD `used_bytes` bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `reserved_bytes` bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE TABLE `quota_reservations` (
	`id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`user_id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`bytes` bigint NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`expires_at` datetime(3) NOT NULL,
	CONSTRAINT `quota_reservations_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE INDEX `quota_reservations_expires_idx` ON `quota_reservations` (`expires_at`);--> statement-breakpoint
ALTER TABLE `document_versions` ADD `scan_status` varchar(16);--> statement-breakpoint
CREATE INDEX `document_versions_scan_idx` ON `document_versions` (`scan_status`,`created_at`);--> statement-breakpoint
UPDATE `users` u SET `used_bytes` = (SELECT COALESCE(SUM(v.`size`), 0) FROM `document_versions` v JOIN `documents` d ON d.`id` = v.`document_id` WHERE d.`owner_id` = u.`id`);--> statement-breakpoint
UPDATE `document_versions` v JOIN `documents` d ON d.`id` = v.`document_id` AND d.`current_version` = v.`number` SET v.`scan_status` = d.`status` WHERE d.`status` IN ('scanning', 'infected');
