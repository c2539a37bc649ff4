package awserr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tierq/tierq/internal/awserr"
)

// apiErr is an error as the SDK returns it: an API error inside a response
// error carrying the HTTP status, wrapped by the operation.
func apiErr(status int, code string, fault smithy.ErrorFault) error {
	var inner error = &smithy.GenericAPIError{Code: code, Message: "from AWS", Fault: fault}
	if code == "" {
		inner = errors.New("no body")
	}
	resp := &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: inner,
	}}
	return &smithy.OperationError{ServiceID: "X", OperationName: "Op", Err: resp}
}

func TestChecks(t *testing.T) {
	t.Parallel()
	checks := map[string]func(error) bool{
		"credential":   func(err error) bool { _, ok := awserr.Credential(err); return ok },
		"throttled":    awserr.Throttled,
		"client":       awserr.ClientFault,
		"missingQueue": awserr.MissingQueue,
		"denied":       awserr.AccessDenied,
		"notFound":     awserr.NotFound,
		"precondition": awserr.PreconditionFailed,
		"conflict":     awserr.ConditionalConflict,
	}
	tests := []struct {
		name string
		err  error
		want []string // the checks that hold; every other must not
	}{
		{"expired token", apiErr(403, "ExpiredTokenException", smithy.FaultClient), []string{"credential", "client", "denied"}},
		{"S3 clock skew", apiErr(403, "RequestTimeTooSkewed", smithy.FaultClient), []string{"credential", "client", "denied"}},
		{"Bedrock throttling", apiErr(429, "ThrottlingException", smithy.FaultClient), []string{"throttled"}},
		{"S3 slow down", apiErr(503, "SlowDown", smithy.FaultServer), []string{"throttled"}},
		{"bare 429", apiErr(429, "", smithy.FaultUnknown), []string{"throttled"}},
		{"5xx", apiErr(500, "InternalError", smithy.FaultServer), nil},
		{"missing queue", apiErr(400, "AWS.SimpleQueueService.NonExistentQueue", smithy.FaultClient), []string{"missingQueue", "client"}},
		{"kumo's missing queue", apiErr(400, "QueueDoesNotExist", smithy.FaultClient), []string{"missingQueue", "client"}},
		{"batch too long", apiErr(400, "AWS.SimpleQueueService.BatchRequestTooLong", smithy.FaultClient), []string{"client"}},
		{"S3 access denied", apiErr(403, "AccessDenied", smithy.FaultClient), []string{"client", "denied"}},
		{"HEAD 403 without a body", apiErr(403, "", smithy.FaultUnknown), []string{"denied"}},
		{"no such key", apiErr(404, "NoSuchKey", smithy.FaultClient), []string{"notFound", "client"}},
		{"HEAD 404 without a body", apiErr(404, "", smithy.FaultUnknown), []string{"notFound"}},
		{"condition failed", apiErr(412, "PreconditionFailed", smithy.FaultClient), []string{"precondition", "client"}},
		{"conditional conflict", apiErr(409, "ConditionalRequestConflict", smithy.FaultClient), []string{"conflict", "client"}},
		{"network", fmt.Errorf("send: %w", errors.New("connection reset by peer")), nil},
		{"canceled", context.Canceled, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := map[string]bool{}
			for _, w := range tt.want {
				want[w] = true
			}
			for name, check := range checks {
				if got := check(tt.err); got != want[name] {
					t.Errorf("%s = %v, want %v", name, got, want[name])
				}
			}
		})
	}
}

func TestCodeAndStatus(t *testing.T) {
	t.Parallel()
	err := apiErr(412, "PreconditionFailed", smithy.FaultClient)
	if awserr.Code(err) != "PreconditionFailed" || awserr.HTTPStatus(err) != 412 {
		t.Errorf("Code %q HTTPStatus %d, want PreconditionFailed 412", awserr.Code(err), awserr.HTTPStatus(err))
	}
	if awserr.Code(context.Canceled) != "" || awserr.HTTPStatus(context.Canceled) != 0 {
		t.Error("an error without an answer has a code or a status")
	}
}
