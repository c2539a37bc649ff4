package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/aws/smithy-go"
)

// TestClassifyStore: the S3 adapter turns S3's codes and statuses into what
// they mean to the pipeline, one meaning each, and keeps the original error
// underneath for its code in logs.
func TestClassifyStore(t *testing.T) {
	t.Parallel()
	kinds := []error{errExists, errChanged, errConflict, errNotFound, errNoBucket, errDenied, errCredsBad, errRetryable}
	tests := []struct {
		name string
		err  error
		want error // nil: none of the kinds
	}{
		{"expired token", sdkErr(400, &smithy.GenericAPIError{Code: "ExpiredToken"}), errCredsBad},
		{"bad signature, a 403", sdkErr(403, &smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}), errCredsBad},
		{"access denied", sdkErr(403, &smithy.GenericAPIError{Code: "AccessDenied"}), errDenied},
		{"HEAD 403 without a body", sdkErr(403, &smithy.GenericAPIError{}), errDenied},
		{"no such key", sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchKey"}), errNotFound},
		{"no such bucket", sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchBucket"}), errNoBucket},
		{"conditional conflict", sdkErr(409, &smithy.GenericAPIError{Code: "ConditionalRequestConflict"}), errConflict},
		{"slow down", sdkErr(503, &smithy.GenericAPIError{Code: "SlowDown"}), errRetryable},
		{"internal error", sdkErr(500, &smithy.GenericAPIError{Code: "InternalError"}), errRetryable},
		{"stalled upload", sdkErr(400, &smithy.GenericAPIError{Code: "RequestTimeout"}), errRetryable},
		{"network", fmt.Errorf("read response: %w", io.ErrUnexpectedEOF), errRetryable},
		{"deadline", context.DeadlineExceeded, errRetryable},
		{"other 4xx", sdkErr(400, &smithy.GenericAPIError{Code: "InvalidArgument"}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := classifyStore(tt.err)
			for _, k := range kinds {
				if errors.Is(got, k) != (k == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", got, k, errors.Is(got, k), k == tt.want)
				}
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("%v does not unwrap to the store's own error", got)
			}
		})
	}
}
