package jobv1

// Error codes of failed results (ErrorInfo.Code). They are stable: automation
// and dashboards match on them.
const (
	CodeInvalidJob           = "invalid_job"
	CodeInvalidDocument      = "invalid_document"
	CodeBucketNotAllowed     = "bucket_not_allowed"
	CodeDocumentNotFound     = "document_not_found"
	CodeDocumentAccessDenied = "document_access_denied"
	CodeDocumentTooLarge     = "document_too_large"
	CodeTooLargeForTiers     = "too_large_for_tiers"
	CodeModelRejected        = "model_rejected"
	CodeAccessDenied         = "access_denied"
	CodeResourceNotFound     = "resource_not_found" // no such model ID, inference profile or guardrail version; the message names the model and the guardrail
	CodeModelError           = "model_error"
	CodeTieringError         = "tiering_error"
	// CodeOutputSchemaMismatch: an extract answer that does not match the
	// job's schema, after one escalation; the answer is kept in output.
	CodeOutputSchemaMismatch = "output_schema_mismatch"
)
