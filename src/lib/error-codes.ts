/**
 * Every `code` the API answers in its error body (src/lib/error-reply.ts ErrorBody): the one
 * catalogue clients can switch on. `AppError` accepts only these, so a new code is added here
 * first (and documented where its route is).
 */
export const ERROR_CODES = [
  // generic, by status (codeForStatus) and from Fastify's own errors (FASTIFY_CODES)
  'bad_request', 'unauthorized', 'forbidden', 'not_found', 'method_not_allowed', 'not_acceptable', 'conflict', 'gone',
  'precondition_failed', 'payload_too_large', 'uri_too_long', 'unsupported_media_type', 'range_not_satisfiable',
  'rate_limited', 'internal_error', 'service_unavailable', 'bad_url', 'invalid_json', 'invalid_multipart',
  'validation_failed', 'invalid_cursor',
  // auth, users
  'invalid_credentials', 'token_expired', 'token_revoked', 'registration_closed', 'email_taken', 'last_admin',
  'invalid_transfer_target',
  // API keys, service accounts
  'api_key_invalid', 'api_key_revoked', 'api_key_expired', 'api_key_owner_disabled', 'session_required', 'scope_not_held',
  'invalid_expiry', 'too_many_api_keys', 'not_a_service_account',
  // documents, uploads, storage URLs
  'already_trashed', 'not_trashed', 'document_trashed', 'document_not_ready', 'version_mismatch', 'checksum_mismatch',
  'size_mismatch', 'content_type_mismatch', 'document_scanning', 'document_infected', 'upload_aborted', 'upload_cancelled', 'upload_completed', 'upload_expired',
  'upload_gone', 'upload_incomplete', 'url_expired', 'invalid_signature', 'quota_exceeded',
  'shared_upload_limit',
  // ingestions, jobs
  'idempotency_key_reused', 'ingestion_mismatch', 'ingestion_busy', 'invalid_transition', 'callback_replayed',
  'callback_in_progress', 'invalid_job_state',
  // webhooks
  'webhook_url_refused', 'delivery_pending',
] as const

export type ErrorCode = typeof ERROR_CODES[number]
