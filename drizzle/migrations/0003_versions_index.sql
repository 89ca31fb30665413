CREATE TABLE `document_versions` (
	`document_id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`number` int NOT NULL,
	`storage_key` varchar(512) NOT NULL,
	`size` bigint unsigned NOT NULL,
	`sha256` char(64) NOT NULL,
	`mime_type` varchar(255) NOT NULL,
	`filename` varchar(255) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`created_by` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	CONSTRAINT `document_versions_document_id_number_pk` PRIMARY KEY(`document_id`,`number`)
);
--> statement-breakpoint
CREATE TABLE `ingestion_batches` (
	`id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`requested_by` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`filter` json NOT NULL,
	`pipeline` varchar(100) NOT NULL,
	`options` json NOT NULL,
	`status` varchar(16) NOT NULL,
	`matched` int NOT NULL DEFAULT 0,
	`cursor` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	`finished_at` datetime(3),
	CONSTRAINT `ingestion_batches_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
ALTER TABLE `documents` ADD `current_version` int DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `documents` ADD `index_state` varchar(16) DEFAULT 'none' NOT NULL;--> statement-breakpoint
ALTER TABLE `documents` ADD `index_version` int;--> statement-breakpoint
ALTER TABLE `documents` ADD `index_chunks` int;--> statement-breakpoint
ALTER TABLE `documents` ADD `index_pipeline` varchar(100);--> statement-breakpoint
ALTER TABLE `documents` ADD `index_pipeline_version` varchar(100);--> statement-breakpoint
ALTER TABLE `documents` ADD `indexed_at` datetime(3);--> statement-breakpoint
ALTER TABLE `documents` ADD `index_error` text;--> statement-breakpoint
ALTER TABLE `ingestions` ADD `operation` varchar(8) DEFAULT 'upsert' NOT NULL;--> statement-breakpoint
ALTER TABLE `ingestions` ADD `document_version` int;--> statement-breakpoint
ALTER TABLE `ingestions` ADD `batch_id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;--> statement-breakpoint
CREATE INDEX `documents_index_state_idx` ON `documents` (`index_state`,`deleted_at`,`id`,`owner_id`);--> statement-breakpoint
CREATE INDEX `ingestions_batch_idx` ON `ingestions` (`batch_id`,`status`);--> statement-breakpoint
INSERT INTO `document_versions` (`document_id`, `number`, `storage_key`, `size`, `sha256`, `mime_type`, `filename`, `created_at`, `created_by`)
  SELECT `id`, 1, `storage_key`, `size`, `sha256`, `mime_type`, `filename`, `created_at`, `owner_id` FROM `documents`;--> statement-breakpoint
UPDATE `ingestions` SET `document_version` = 1;--> statement-breakpoint
UPDATE `documents` d SET
  `index_state` = CASE
    WHEN EXISTS (SELECT 1 FROM `ingestions` i WHERE i.`document_id` = d.`id` AND i.`status` = 'succeeded') THEN 'indexed'
    WHEN EXISTS (SELECT 1 FROM `ingestions` i WHERE i.`document_id` = d.`id` AND i.`status` IN ('queued', 'running')) THEN 'pending'
    WHEN EXISTS (SELECT 1 FROM `ingestions` i WHERE i.`document_id` = d.`id` AND i.`status` = 'failed') THEN 'failed'
    ELSE 'none' END,
  `index_version` = (SELECT IF(COUNT(*) > 0, 1, NULL) FROM `ingestions` i WHERE i.`document_id` = d.`id` AND i.`status` = 'succeeded'),
  `indexed_at` = (SELECT MAX(i.`finished_at`) FROM `ingestions` i WHERE i.`document_id` = d.`id` AND i.`status` = 'succeeded');
