package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// retryDelay returns the RetryAfter delay of err, or -1 when it has none.
func retryDelay(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return -1
}

func TestWriteResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		putErr      error
		cancel      bool
		wantWritten bool
		wantDelay   time.Duration // -1: no error
	}{
		{"written", nil, false, true, -1},
		{"412: another worker wrote it", sdkErr(412, &smithy.GenericAPIError{Code: "PreconditionFailed"}), false, false, -1},
		{"PreconditionFailed code alone", &smithy.GenericAPIError{Code: "PreconditionFailed"}, false, false, -1},
		{"409: concurrent conditional write", sdkErr(409, &smithy.GenericAPIError{Code: "ConditionalRequestConflict"}), false, false, conflictDelay},
		{"500", sdkErr(500, &smithy.GenericAPIError{Code: "InternalError"}), false, false, DefaultRetryReleaseDelay},
		{"403", sdkErr(403, &smithy.GenericAPIError{Code: "AccessDenied"}), false, false, DefaultRetryReleaseDelay},
		{"network", errors.New("connection reset by peer"), false, false, DefaultRetryReleaseDelay},
		{"our shutdown", errors.New("context canceled"), true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, nil, nil)
			u.store.putErr = tt.putErr
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			written, err := u.p.writeResult(ctx, "results/j.json", &Result{JobID: "j"})
			if written != tt.wantWritten || retryDelay(err) != tt.wantDelay || (tt.wantDelay == -1 && err != nil) {
				t.Errorf("writeResult = %v, %v (delay %s); want written %v, delay %s", written, err, retryDelay(err), tt.wantWritten, tt.wantDelay)
			}
		})
	}
}

func TestWriteResultIsConditional(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, nil)
	ctx := context.Background()
	if w, err := u.p.writeResult(ctx, "results/j.json", &Result{JobID: "j", Status: StatusSucceeded}); !w || err != nil {
		t.Fatalf("first write = %v, %v", w, err)
	}
	if w, err := u.p.writeResult(ctx, "results/j.json", &Result{JobID: "j", Status: StatusFailed}); w || err != nil {
		t.Fatalf("second write = %v, %v; want not written, no error", w, err)
	}
	if got := string(u.store.object("results", "results/j.json")); got == "" || !strings.Contains(got, `"status":"succeeded"`) {
		t.Errorf("stored %s, want the first result", got)
	}
}

func TestResultExists(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		headErr   error
		stored    bool
		want      bool
		wantDelay time.Duration
	}{
		{"exists", nil, true, true, -1},
		{"typed NotFound", &s3types.NotFound{}, false, false, -1},
		{"bare 404", sdkErr(404, &smithy.GenericAPIError{}), false, false, -1},
		{"403 is not absence", sdkErr(403, &smithy.GenericAPIError{Code: "Forbidden"}), false, false, DefaultRetryReleaseDelay},
		{"503", sdkErr(503, &smithy.GenericAPIError{Code: "SlowDown"}), false, false, DefaultRetryReleaseDelay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, nil, nil)
			u.store.headErr = tt.headErr
			if tt.stored {
				u.store.objects["results/results/j.json"] = []byte("{}")
			}
			got, err := u.p.resultExists(context.Background(), "results/j.json")
			if got != tt.want || retryDelay(err) != tt.wantDelay || (tt.wantDelay == -1 && err != nil) {
				t.Errorf("resultExists = %v, %v; want %v, delay %s", got, err, tt.want, tt.wantDelay)
			}
		})
	}
}

func TestLoadDocument(t *testing.T) {
	t.Parallel()
	const limit = 32
	tests := []struct {
		name      string
		job       Job
		object    []byte
		length    *int64
		getErr    error
		wantCode  string        // failed result code
		wantDelay time.Duration // transient
		wantText  string
	}{
		{"inline", Job{Text: "inline text"}, nil, nil, nil, "", -1, "inline text"},
		{"inline too large", Job{Text: string(make([]byte, limit+1))}, nil, nil, nil, CodeDocumentTooLarge, -1, ""},
		{"inline blank", Job{Text: " \n\t"}, nil, nil, nil, CodeInvalidDocument, -1, ""},
		{"by reference", Job{DocumentURI: "s3://docs/a.txt"}, []byte("stored text"), nil, nil, "", -1, "stored text"},
		{"exactly at the limit", Job{DocumentURI: "s3://docs/a.txt"}, []byte("0123456789abcdef0123456789abcdef"), nil, nil, "", -1, "0123456789abcdef0123456789abcdef"},
		{"ContentLength over the limit", Job{DocumentURI: "s3://docs/a.txt"}, []byte("small"), aws.Int64(limit + 1), nil, CodeDocumentTooLarge, -1, ""},
		{"body over the limit, no ContentLength", Job{DocumentURI: "s3://docs/a.txt"}, make([]byte, limit+5), new(int64), nil, CodeDocumentTooLarge, -1, ""},
		{"bucket not allowed", Job{DocumentURI: "s3://other/a.txt"}, nil, nil, nil, CodeBucketNotAllowed, -1, ""},
		{"missing", Job{DocumentURI: "s3://docs/missing.txt"}, nil, nil, nil, CodeDocumentNotFound, -1, ""},
		{"access denied", Job{DocumentURI: "s3://docs/a.txt"}, nil, nil, sdkErr(403, &smithy.GenericAPIError{Code: "AccessDenied"}), CodeDocumentAccessDenied, -1, ""},
		{"no such bucket", Job{DocumentURI: "s3://docs/a.txt"}, nil, nil, sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchBucket"}), CodeDocumentNotFound, -1, ""},
		{"S3 unavailable", Job{DocumentURI: "s3://docs/a.txt"}, nil, nil, sdkErr(503, &smithy.GenericAPIError{Code: "SlowDown"}), "", DefaultRetryReleaseDelay, ""},
		{"not UTF-8", Job{DocumentURI: "s3://docs/a.txt"}, []byte{'a', 0xff}, nil, nil, CodeInvalidDocument, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, nil, func(c *Config) { c.MaxDocumentBytes = limit })
			if tt.object != nil {
				u.store.objects["docs/a.txt"] = tt.object
				if tt.length != nil {
					u.store.length["docs/a.txt"] = tt.length
				}
			}
			u.store.getErr = tt.getErr
			text, err := u.p.loadDocument(context.Background(), tt.job)
			var f *failure
			switch {
			case tt.wantCode != "":
				if !errors.As(err, &f) || f.code != tt.wantCode {
					t.Errorf("loadDocument error = %v, want failure %s", err, tt.wantCode)
				}
			case tt.wantDelay >= 0:
				if errors.As(err, &f) || retryDelay(err) != tt.wantDelay {
					t.Errorf("loadDocument error = %v, want transient (retry after %s)", err, tt.wantDelay)
				}
			default:
				if err != nil || text != tt.wantText {
					t.Errorf("loadDocument = %q, %v; want %q", text, err, tt.wantText)
				}
			}
		})
	}
}
