package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"

	"github.com/tierq/tierq/internal/awserr"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/limiter"
)

// errKind is what a failed model call means for the job.
type errKind int

const (
	// kindPermanent: retrying cannot help; the job fails with a code.
	kindPermanent errKind = iota
	// kindTransient: the service had trouble; retry later.
	kindTransient
	// kindThrottle: the model refused for capacity; retry later and tell
	// the limiter, which is how an adaptive limiter learns the quota.
	kindThrottle
	// kindCanceled: our own context ended (shutdown); not the model's fault.
	kindCanceled
	// kindCredentials: AWS could not authenticate the request (expired or
	// unknown credentials, a bad signature, a skewed clock). Nothing is
	// wrong with the job, so it is retried like kindTransient and logged at
	// ERROR: a person may have to fix the task role or the host clock.
	kindCredentials
)

// modelErr is a classified Converse error.
type modelErr struct {
	kind errKind
	// code is the failed result's error code (permanent errors) or the AWS
	// error code (transient ones), for logs.
	code string
	msg  string
}

func (e modelErr) transient() bool {
	return e.kind == kindTransient || e.kind == kindThrottle || e.kind == kindCredentials
}

// outcome is what the call means for the limiter.
func (e modelErr) outcome() limiter.Outcome {
	if e.kind == kindThrottle {
		return limiter.Dropped
	}
	return limiter.Ignored
}

// classifyModelError sorts a Converse error by behaviour: by the AWS error
// code (errors.As on smithy.APIError, as the SDK's own retryer does), then by
// HTTP status for errors the Bedrock model does not declare, never by message
// text. ctx is the job's context, not the attempt's: an attempt that ran out
// of its own time (Config.CallTimeout) is transient, while a job whose context
// ended is canceled. model and guardrail name the call for the failed
// result's message.
func classifyModelError(ctx context.Context, err error, model, guardrail string) modelErr {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return modelErr{kind: kindCanceled, code: "canceled", msg: err.Error()}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return modelErr{kind: kindTransient, code: "timeout", msg: fmt.Sprintf("%s did not answer within the call timeout", model)}
	}
	if code, ok := awserr.Credential(err); ok {
		return modelErr{kind: kindCredentials, code: code, msg: credentialHint}
	}
	var ae smithy.APIError
	isAPI := errors.As(err, &ae)
	code, msg := "", ""
	if isAPI {
		code, msg = ae.ErrorCode(), ae.ErrorMessage()
	}
	switch code {
	case "ThrottlingException", "ModelNotReadyException":
		return modelErr{kind: kindThrottle, code: code, msg: msg}
	case "ServiceUnavailableException", "InternalServerException", "ModelTimeoutException":
		return modelErr{kind: kindTransient, code: code, msg: msg}
	case "ValidationException":
		return modelErr{kind: kindPermanent, code: jobv1.CodeModelRejected, msg: fmt.Sprintf("%s rejected the request: %s", model, msg)}
	case "AccessDeniedException":
		return modelErr{kind: kindPermanent, code: jobv1.CodeAccessDenied,
			msg: fmt.Sprintf("enable model access for %s in the Bedrock console (and allow bedrock:InvokeModel and bedrock:ApplyGuardrail to the worker's role): %s", model, msg)}
	case "ResourceNotFoundException":
		// Bedrock says this for a model ID or inference profile that is
		// wrong, retired or not offered in the Region as much as for a
		// missing guardrail, and its message does not always say which.
		return modelErr{kind: kindPermanent, code: jobv1.CodeResourceNotFound,
			msg: fmt.Sprintf("Bedrock found no such resource: check that model ID or inference profile %s is available in this account and Region, and that guardrail %s exists there: %s", model, guardrail, msg)}
	}
	status := awserr.HTTPStatus(err)
	switch {
	case status == http.StatusTooManyRequests:
		return modelErr{kind: kindThrottle, code: orStatus(code, status), msg: msg}
	case status >= 500:
		return modelErr{kind: kindTransient, code: orStatus(code, status), msg: msg}
	case isAPI || status != 0:
		return modelErr{kind: kindPermanent, code: jobv1.CodeModelError,
			msg: fmt.Sprintf("%s failed with %s: %s", model, orStatus(code, status), msg)}
	}
	// No service answer at all: connection refused or reset, DNS, a
	// response cut short. The request may never have arrived.
	return modelErr{kind: kindTransient, code: "network", msg: err.Error()}
}

func orStatus(code string, status int) string {
	if code != "" {
		return code
	}
	return fmt.Sprintf("HTTP %d", status)
}

// credentialHint is what to check after a credential error. Logs name the
// error code and this, never the credentials or AWS's message.
const credentialHint = "AWS rejected the worker's credentials or request signature: check the task role's credentials and the host clock"
