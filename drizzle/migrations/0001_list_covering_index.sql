DROP INDEX `documents_visibility_idx` ON `documents`;--> statement-breakpoint
CREATE INDEX `documents_visibility_idx` ON `documents` (`visibility`,`deleted_at`,`id`,`owner_id`);