package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/tiering"
)

func TestClassifyModelError(t *testing.T) {
	t.Parallel()
	msg := aws.String("from Bedrock")
	tests := []struct {
		name     string
		err      error
		kind     errKind
		code     string
		outcome  limiter.Outcome
		contains string
	}{
		{"throttling", sdkErr(429, &types.ThrottlingException{Message: msg}), kindThrottle, "ThrottlingException", limiter.Dropped, ""},
		{"model not ready", sdkErr(429, &types.ModelNotReadyException{Message: msg}), kindThrottle, "ModelNotReadyException", limiter.Dropped, ""},
		{"service unavailable", sdkErr(503, &types.ServiceUnavailableException{Message: msg}), kindTransient, "ServiceUnavailableException", limiter.Ignored, ""},
		{"internal server", sdkErr(500, &types.InternalServerException{Message: msg}), kindTransient, "InternalServerException", limiter.Ignored, ""},
		{"model timeout", sdkErr(408, &types.ModelTimeoutException{Message: msg}), kindTransient, "ModelTimeoutException", limiter.Ignored, ""},
		{"unmodeled 429", sdkErr(429, &smithy.GenericAPIError{Code: "TooManyRequests"}), kindThrottle, "TooManyRequests", limiter.Dropped, ""},
		{"unmodeled 502 without a code", sdkErr(502, &smithy.GenericAPIError{}), kindTransient, "HTTP 502", limiter.Ignored, ""},
		{"unmodeled 504", sdkErr(504, &smithy.GenericAPIError{Code: "GatewayTimeout"}), kindTransient, "GatewayTimeout", limiter.Ignored, ""},
		{"connection refused", &smithy.OperationError{ServiceID: "Bedrock Runtime", OperationName: "Converse",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}, kindTransient, "network", limiter.Ignored, ""},
		{"response cut short", fmt.Errorf("read response: %w", io.ErrUnexpectedEOF), kindTransient, "network", limiter.Ignored, ""},
		{"validation", sdkErr(400, &types.ValidationException{Message: aws.String("The maximum tokens you requested exceeds the model limit")}),
			kindPermanent, jobv1.CodeModelRejected, limiter.Ignored, "m1 rejected the request: The maximum tokens"},
		{"access denied", sdkErr(403, &types.AccessDeniedException{Message: msg}), kindPermanent, jobv1.CodeAccessDenied, limiter.Ignored,
			"enable model access for m1 in the Bedrock console"},
		{"resource not found names the model and the guardrail", sdkErr(404, &types.ResourceNotFoundException{Message: msg}), kindPermanent, jobv1.CodeResourceNotFound, limiter.Ignored,
			"model ID or inference profile m1 is available in this account and Region, and that guardrail g1 version 2 exists there: from Bedrock"},
		{"access denied stays permanent", sdkErr(403, &types.AccessDeniedException{Message: msg}), kindPermanent, jobv1.CodeAccessDenied, limiter.Ignored, ""},
		{"attempt timed out", &smithy.OperationError{ServiceID: "Bedrock Runtime", OperationName: "Converse",
			Err: fmt.Errorf("request send: %w", context.DeadlineExceeded)}, kindTransient, "timeout", limiter.Ignored, "m1 did not answer within the call timeout"},
		{"model error", sdkErr(424, &types.ModelErrorException{Message: msg}), kindPermanent, jobv1.CodeModelError, limiter.Ignored,
			"m1 failed with ModelErrorException: from Bedrock"},
		{"unknown 4xx", sdkErr(418, &smithy.GenericAPIError{Code: "Teapot", Message: "short and stout"}), kindPermanent, jobv1.CodeModelError, limiter.Ignored,
			"Teapot: short and stout"},
		{"canceled", fmt.Errorf("converse: %w", context.Canceled), kindCanceled, "canceled", limiter.Ignored, ""},
	}
	// AWS refusing to authenticate is the worker's trouble, never the job's:
	// transient, whatever the 4xx status says.
	for _, c := range []struct {
		code   string
		status int
	}{
		{"ExpiredTokenException", 403}, {"ExpiredToken", 400}, {"UnrecognizedClientException", 403},
		{"InvalidSignatureException", 403}, {"SignatureDoesNotMatch", 403}, {"InvalidClientTokenId", 403},
		{"RequestExpired", 400}, {"IncompleteSignature", 400}, {"InvalidAccessKeyId", 403}, {"RequestTimeTooSkewed", 403},
	} {
		tests = append(tests, struct {
			name     string
			err      error
			kind     errKind
			code     string
			outcome  limiter.Outcome
			contains string
		}{"credentials: " + c.code, sdkErr(c.status, &smithy.GenericAPIError{Code: c.code, Message: "from AWS"}),
			kindCredentials, c.code, limiter.Ignored, "check the task role's credentials and the host clock"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := classifyModelError(context.Background(), tt.err, "m1", "g1 version 2")
			if got.kind != tt.kind || got.code != tt.code {
				t.Errorf("kind %d code %q, want kind %d code %q", got.kind, got.code, tt.kind, tt.code)
			}
			if o := got.outcome(); o != tt.outcome {
				t.Errorf("limiter outcome %v, want %v", o, tt.outcome)
			}
			if !strings.Contains(got.msg, tt.contains) {
				t.Errorf("message %q does not contain %q", got.msg, tt.contains)
			}
			if wantTransient := tt.kind != kindPermanent && tt.kind != kindCanceled; got.transient() != wantTransient {
				t.Errorf("transient() = %v, want %v", got.transient(), wantTransient)
			}
		})
	}
}

func TestClassifyModelErrorOnOurCancellation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Whatever the error says, a call cut short by our own context is not the model's fault.
	got := classifyModelError(ctx, sdkErr(503, &types.ServiceUnavailableException{}), "m1", "")
	if got.kind != kindCanceled || got.transient() {
		t.Errorf("kind %d, want canceled and not transient", got.kind)
	}
}

func TestGuardrailName(t *testing.T) {
	t.Parallel()
	if got := guardrailName(tiering.GuardrailRef{ID: "g1", Version: "2"}); got != "g1 version 2" {
		t.Errorf("guardrailName = %q", got)
	}
	if got := guardrailName(tiering.GuardrailRef{}); got != "(none configured)" {
		t.Errorf("guardrailName of no guardrail = %q", got)
	}
}
