CREATE TABLE `document_shares` (
	`document_id` varchar(36) NOT NULL,
	`user_id` varchar(36) NOT NULL,
	`access` varchar(8) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	CONSTRAINT `document_shares_document_id_user_id_pk` PRIMARY KEY(`document_id`,`user_id`)
);
--> statement-breakpoint
CREATE TABLE `document_tags` (
	`document_id` varchar(36) NOT NULL,
	`tag` varchar(64) NOT NULL,
	CONSTRAINT `document_tags_document_id_tag_pk` PRIMARY KEY(`document_id`,`tag`)
);
--> statement-breakpoint
CREATE TABLE `documents` (
	`id` varchar(36) NOT NULL,
	`owner_id` varchar(36) NOT NULL,
	`title` varchar(500) NOT NULL,
	`description` text,
	`filename` varchar(255) NOT NULL,
	`mime_type` varchar(255) NOT NULL,
	`size` bigint unsigned NOT NULL,
	`sha256` char(64) NOT NULL,
	`status` varchar(16) NOT NULL,
	`visibility` varchar(16) NOT NULL DEFAULT 'private',
	`tags` json NOT NULL,
	`storage_key` varchar(512) NOT NULL,
	`thumbnail_key` varchar(512),
	`thumbnail_width` int,
	`thumbnail_height` int,
	`metadata` json NOT NULL,
	`error` text,
	`version` int NOT NULL DEFAULT 1,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	`deleted_at` datetime(3),
	CONSTRAINT `documents_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `uploads` (
	`id` varchar(36) NOT NULL,
	`user_id` varchar(36) NOT NULL,
	`filename` varchar(255) NOT NULL,
	`mime_type` varchar(255) NOT NULL,
	`size` bigint unsigned NOT NULL,
	`sha256` char(64),
	`storage_key` varchar(512) NOT NULL,
	`status` varchar(16) NOT NULL DEFAULT 'pending',
	`expires_at` datetime(3) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	CONSTRAINT `uploads_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `audit_events` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`at` datetime(3) NOT NULL,
	`actor_id` varchar(36),
	`action` varchar(64) NOT NULL,
	`subject` varchar(128),
	`ip` varchar(64),
	`user_agent` varchar(512),
	`request_id` varchar(128),
	`payload` json,
	CONSTRAINT `audit_events_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `refresh_tokens` (
	`token_hash` char(64) NOT NULL,
	`session_id` varchar(36) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`rotated_at` datetime(3),
	CONSTRAINT `refresh_tokens_token_hash` PRIMARY KEY(`token_hash`)
);
--> statement-breakpoint
CREATE TABLE `sessions` (
	`id` varchar(36) NOT NULL,
	`user_id` varchar(36) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`last_used_at` datetime(3) NOT NULL,
	`expires_at` datetime(3) NOT NULL,
	`revoked_at` datetime(3),
	`revoked_reason` varchar(32),
	`ip` varchar(64),
	`user_agent` varchar(512),
	CONSTRAINT `sessions_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `users` (
	`id` varchar(36) NOT NULL,
	`email` varchar(254) NOT NULL,
	`name` varchar(200),
	`password_hash` varchar(100) NOT NULL,
	`role` varchar(16) NOT NULL DEFAULT 'viewer',
	`grants` json NOT NULL,
	`revokes` json NOT NULL,
	`disabled` boolean NOT NULL DEFAULT false,
	`auth_version` int NOT NULL DEFAULT 1,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `users_id` PRIMARY KEY(`id`),
	CONSTRAINT `users_email_uq` UNIQUE(`email`)
);
--> statement-breakpoint
CREATE TABLE `ingestion_events` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`ingestion_id` varchar(36) NOT NULL,
	`at` datetime(3) NOT NULL,
	`type` varchar(32) NOT NULL,
	`message` text NOT NULL,
	`data` json,
	CONSTRAINT `ingestion_events_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `ingestions` (
	`id` varchar(36) NOT NULL,
	`document_id` varchar(36) NOT NULL,
	`status` varchar(16) NOT NULL,
	`pipeline` varchar(100) NOT NULL,
	`options` json NOT NULL,
	`attempts` int NOT NULL DEFAULT 0,
	`last_error` text,
	`result` json,
	`requested_by` varchar(36) NOT NULL,
	`idempotency_key` varchar(200),
	`request_id` varchar(128),
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	`started_at` datetime(3),
	`finished_at` datetime(3),
	`enqueued_at` datetime(3),
	CONSTRAINT `ingestions_id` PRIMARY KEY(`id`),
	CONSTRAINT `ingestions_idempotency_uq` UNIQUE(`requested_by`,`idempotency_key`)
);
--> statement-breakpoint
CREATE INDEX `document_shares_user_idx` ON `document_shares` (`user_id`,`document_id`);--> statement-breakpoint
CREATE INDEX `document_tags_tag_idx` ON `document_tags` (`tag`,`document_id`);--> statement-breakpoint
CREATE INDEX `documents_owner_idx` ON `documents` (`owner_id`,`deleted_at`,`id`);--> statement-breakpoint
CREATE INDEX `documents_visibility_idx` ON `documents` (`visibility`,`deleted_at`,`id`);--> statement-breakpoint
CREATE INDEX `documents_deleted_idx` ON `documents` (`deleted_at`,`id`);--> statement-breakpoint
CREATE INDEX `uploads_status_expires_idx` ON `uploads` (`status`,`expires_at`);--> statement-breakpoint
CREATE INDEX `audit_at_idx` ON `audit_events` (`at`);--> statement-breakpoint
CREATE INDEX `audit_actor_idx` ON `audit_events` (`actor_id`,`id`);--> statement-breakpoint
CREATE INDEX `audit_action_idx` ON `audit_events` (`action`,`id`);--> statement-breakpoint
CREATE INDEX `audit_subject_idx` ON `audit_events` (`subject`,`id`);--> statement-breakpoint
CREATE INDEX `refresh_tokens_session_idx` ON `refresh_tokens` (`session_id`);--> statement-breakpoint
CREATE INDEX `sessions_user_idx` ON `sessions` (`user_id`,`revoked_at`);--> statement-breakpoint
CREATE INDEX `users_role_idx` ON `users` (`role`,`id`);--> statement-breakpoint
CREATE INDEX `ingestion_events_ingestion_idx` ON `ingestion_events` (`ingestion_id`,`id`);--> statement-breakpoint
CREATE INDEX `ingestions_document_idx` ON `ingestions` (`document_id`,`id`);--> statement-breakpoint
CREATE INDEX `ingestions_status_idx` ON `ingestions` (`status`,`id`);