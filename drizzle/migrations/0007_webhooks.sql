CREATE TABLE `webhook_attempts` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`delivery_id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`at` datetime(3) NOT NULL,
	`status_code` int,
	`duration_ms` int NOT NULL,
	`error` varchar(1000),
	`response` varchar(1024),
	CONSTRAINT `webhook_attempts_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`endpoint_id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`event_id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`subject` varchar(80) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
	`seq` bigint unsigned,
	`status` varchar(16) NOT NULL,
	`attempts` int NOT NULL DEFAULT 0,
	`enqueued` boolean NOT NULL DEFAULT false,
	`last_status_code` int,
	`last_error` varchar(1000),
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	`retry_until` datetime(3) NOT NULL,
	`delivered_at` datetime(3),
	CONSTRAINT `webhook_deliveries_id` PRIMARY KEY(`id`),
	CONSTRAINT `webhook_deliveries_event_uq` UNIQUE(`endpoint_id`,`event_id`)
);
--> statement-breakpoint
CREATE TABLE `webhook_endpoints` (
	`id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`url` varchar(2048) NOT NULL,
	`description` varchar(500),
	`events` json NOT NULL,
	`secret` varchar(255) NOT NULL,
	`status` varchar(16) NOT NULL,
	`status_reason` varchar(255),
	`created_by` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	`last_success_at` datetime(3),
	CONSTRAINT `webhook_endpoints_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `webhook_events` (
	`id` varchar(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`type` varchar(64) NOT NULL,
	`subject` varchar(80) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
	`seq` bigint unsigned,
	`data` json NOT NULL,
	`hydrate` varchar(80) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
	`created_at` datetime(3) NOT NULL,
	`relayed_at` datetime(3),
	CONSTRAINT `webhook_events_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `webhook_sequences` (
	`subject` varchar(80) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	`seq` bigint unsigned NOT NULL,
	CONSTRAINT `webhook_sequences_subject` PRIMARY KEY(`subject`)
);
--> statement-breakpoint
CREATE INDEX `webhook_attempts_delivery_idx` ON `webhook_attempts` (`delivery_id`,`id`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_list_idx` ON `webhook_deliveries` (`endpoint_id`,`id`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_order_idx` ON `webhook_deliveries` (`endpoint_id`,`subject`,`seq`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_enqueue_idx` ON `webhook_deliveries` (`enqueued`,`id`);--> statement-breakpoint
CREATE INDEX `webhook_events_relay_idx` ON `webhook_events` (`relayed_at`,`id`);--> statement-breakpoint
CREATE INDEX `webhook_events_subject_idx` ON `webhook_events` (`subject`,`seq`);