package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/tierq/tierq/internal/awserr"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/worker"
)

// retryDelay is how long the worker, at its default release delay, keeps a
// released message invisible; -1 when err is no release.
func retryDelay(err error) time.Duration {
	var rel *worker.Released
	if errors.As(err, &rel) {
		return rel.Delay(worker.DefaultReleaseDelay)
	}
	return -1
}

func TestWriteResult(t *testing.T) {
	t.Parallel()
	e500 := sdkErr(500, &smithy.GenericAPIError{Code: "InternalError"})
	e503 := sdkErr(503, &smithy.GenericAPIError{Code: "SlowDown"})
	e409 := sdkErr(409, &smithy.GenericAPIError{Code: "ConditionalRequestConflict"})
	e412 := sdkErr(412, &smithy.GenericAPIError{Code: "PreconditionFailed"})
	network := errors.New("connection reset by peer")
	tests := []struct {
		name        string
		putErrs     []error // first calls
		putErr      error   // every call after those
		cancel      bool    // the job's context has ended
		wantWritten bool
		wantDelay   time.Duration // -1: no error
		wantPuts    int
	}{
		{"written", nil, nil, false, true, -1, 1},
		{"412: another worker wrote it", nil, e412, false, false, -1, 1},
		{"PreconditionFailed code alone", nil, &smithy.GenericAPIError{Code: "PreconditionFailed"}, false, false, -1, 1},
		{"500 then 503 then written", []error{e500, e503}, nil, false, true, -1, 3},
		{"network error then written", []error{network}, nil, false, true, -1, 2},
		{"409 then the other write won", []error{e409}, e412, false, false, -1, 2},
		{"409 every time", nil, e409, false, false, conflictDelay, resultWriteAttempts},
		{"500 every time", nil, e500, false, false, worker.DefaultReleaseDelay, resultWriteAttempts},
		{"network every time", nil, network, false, false, worker.DefaultReleaseDelay, resultWriteAttempts},
		{"S3 RequestTimeout then written", []error{sdkErr(400, &smithy.GenericAPIError{Code: "RequestTimeout"})}, nil, false, true, -1, 2},
		{"clock skew then written", []error{sdkErr(403, &smithy.GenericAPIError{Code: "RequestTimeTooSkewed"})}, nil, false, true, -1, 2},
		{"403 is not retried", nil, sdkErr(403, &smithy.GenericAPIError{Code: "AccessDenied"}), false, false, worker.DefaultReleaseDelay, 1},
		{"missing bucket is not retried", nil, sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchBucket"}), false, false, worker.DefaultReleaseDelay, 1},
		{"other 4xx is not retried", nil, sdkErr(400, &smithy.GenericAPIError{Code: "InvalidArgument"}), false, false, worker.DefaultReleaseDelay, 1},
		{"our shutdown does not stop the write", nil, nil, true, true, -1, 1},
		{"our shutdown, S3 down: release at once", nil, e500, true, false, 0, resultWriteAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, nil, nil)
			u.store.putErrs, u.store.putErr = tt.putErrs, tt.putErr
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			written, err := u.p.writeResult(ctx, u.p.log, "results/j.json", &jobv1.Result{JobID: "j"})
			if written != tt.wantWritten || retryDelay(err) != tt.wantDelay || (tt.wantDelay == -1 && err != nil) {
				t.Errorf("writeResult = %v, %v (delay %s); want written %v, delay %s", written, err, retryDelay(err), tt.wantWritten, tt.wantDelay)
			}
			if u.store.puts != tt.wantPuts {
				t.Errorf("%d PutObject calls, want %d", u.store.puts, tt.wantPuts)
			}
			if tt.wantWritten && !strings.Contains(string(u.store.object("results", "results/j.json")), `"job_id":"j"`) {
				t.Error("the result is not stored")
			}
		})
	}
}

// A write whose response was lost lands, and the retry gets 412: the result
// is ours, so the job's metrics line must still be emitted.
func TestWriteResultRecognisesItsOwnLostWrite(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{{out: answer("ok", types.StopReasonEndTurn, 4, 1, nil)}}, nil)
	u.store.lostPuts = 1
	u.process(t, msg(t, jobv1.Job{Task: "summarize", Text: shortDoc}))
	if u.store.puts != 2 {
		t.Errorf("%d PutObject calls, want 2", u.store.puts)
	}
	if st := u.p.Stats(); st.Succeeded != 1 || st.Duplicates != 0 || strings.Count(u.metrics.String(), `"Kind":"job"`) != 1 {
		t.Errorf("stats %+v, metrics %q; want one succeeded job with its metrics line", st, u.metrics)
	}
	// Another delivery's result, found after a failed attempt, stays theirs.
	other := newUnit(t, nil, nil)
	other.store.putErrs = []error{sdkErr(500, &smithy.GenericAPIError{Code: "InternalError"})}
	other.store.objects["results/results/j.json"] = []byte(`{"job_id":"j","worker":{"id":"w2"}}`)
	if w, err := other.p.writeResult(context.Background(), other.p.log, "results/j.json", &jobv1.Result{JobID: "j"}); w || err != nil {
		t.Errorf("writeResult = %v, %v; want not written (another delivery's), no error", w, err)
	}
}

func TestWriteResultIsBoundedByItsTimeout(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, func(c *Config) { c.ResultWriteTimeout = 30 * time.Millisecond })
	u.store.stallPut = true
	written, err := u.p.writeResult(context.Background(), u.p.log, "results/j.json", &jobv1.Result{JobID: "j"})
	if written || retryDelay(err) != worker.DefaultReleaseDelay || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("writeResult = %v, %v; want a release wrapping the deadline", written, err)
	}
}

func TestWriteResultLogsWhatToFix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"credentials", sdkErr(400, &smithy.GenericAPIError{Code: "ExpiredToken", Message: "secret-ish detail"}), "check the task role's credentials and the host clock"},
		{"missing bucket", sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchBucket", Message: "secret-ish detail"}), "allow s3:PutObject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, nil, nil)
			u.store.putErr = tt.err
			if _, err := u.p.writeResult(context.Background(), u.p.log, "results/j.json", &jobv1.Result{JobID: "j"}); err == nil {
				t.Fatal("writeResult succeeded")
			}
			logs := u.logs.String()
			if !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, tt.want) || !strings.Contains(logs, `"error_code":"`+awserr.Code(tt.err)+`"`) {
				t.Errorf("logs lack an ERROR line with %q and the code:\n%s", tt.want, logs)
			}
			if strings.Contains(logs, "secret-ish detail") {
				t.Errorf("logs carry AWS's message:\n%s", logs)
			}
		})
	}
}

func TestWriteResultIsConditional(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, nil)
	ctx := context.Background()
	if w, err := u.p.writeResult(ctx, u.p.log, "results/j.json", &jobv1.Result{JobID: "j", Status: jobv1.StatusSucceeded}); !w || err != nil {
		t.Fatalf("first write = %v, %v", w, err)
	}
	if w, err := u.p.writeResult(ctx, u.p.log, "results/j.json", &jobv1.Result{JobID: "j", Status: jobv1.StatusFailed}); w || err != nil {
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
		{"403 is not absence", sdkErr(403, &smithy.GenericAPIError{Code: "Forbidden"}), false, false, worker.DefaultReleaseDelay},
		{"missing bucket is not absence", sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchBucket"}), false, false, worker.DefaultReleaseDelay},
		{"expired credentials are not absence", sdkErr(400, &smithy.GenericAPIError{Code: "ExpiredToken"}), false, false, worker.DefaultReleaseDelay},
		{"503", sdkErr(503, &smithy.GenericAPIError{Code: "SlowDown"}), false, false, worker.DefaultReleaseDelay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, nil, nil)
			u.store.headErr = tt.headErr
			if tt.stored {
				u.store.objects["results/results/j.json"] = []byte("{}")
			}
			got, err := u.p.resultExists(context.Background(), u.p.log, "results/j.json")
			if got != tt.want || retryDelay(err) != tt.wantDelay || (tt.wantDelay == -1 && err != nil) {
				t.Errorf("resultExists = %v, %v; want %v, delay %s", got, err, tt.want, tt.wantDelay)
			}
		})
	}
}

// A 403 on the result check is what S3 says for a missing key to a caller
// without s3:ListBucket. It must not read as "no result" (the model would be
// paid for jobs that are done), and the reason must reach a person once, not
// once per job. The result is checked when the job's claim exists (a
// redelivery), so each job here has one.
func TestResultCheckDeniedIsLoggedOnce(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, nil)
	u.store.headErr = sdkErr(403, &smithy.GenericAPIError{Code: "Forbidden"})
	for i := range 3 {
		id := fmt.Sprintf("j%d", i)
		u.store.objects["results/"+jobv1.ClaimKey(DefaultResultsPrefix, id)] = []byte(`{"job_id":"` + id + `","worker":"w0"}`)
		m := msg(t, jobv1.Job{JobID: id, Task: "summarize", Text: shortDoc})
		err := u.p.Process(context.Background(), m)
		if retryDelay(err) != worker.DefaultReleaseDelay || !strings.Contains(err.Error(), "s3:ListBucket") {
			t.Fatalf("Process = %v, want a release that explains s3:ListBucket", err)
		}
	}
	if n := strings.Count(u.logs.String(), `"level":"ERROR"`); n != 1 {
		t.Errorf("%d ERROR lines, want 1:\n%s", n, u.logs)
	}
	for _, s := range []string{"403 instead of 404", "s3:ListBucket", "s3:GetObject", "results bucket results", "every job would look unfinished"} {
		if !strings.Contains(u.logs.String(), s) {
			t.Errorf("logs lack %q:\n%s", s, u.logs)
		}
	}
	if len(u.conv.calls) != 0 || u.store.puts != 0 {
		t.Errorf("%d model calls, %d writes; want none", len(u.conv.calls), u.store.puts)
	}
}

func TestS3ReadsAreBoundedByS3Timeout(t *testing.T) {
	t.Parallel()
	t.Run("result check", func(t *testing.T) {
		t.Parallel()
		u := newUnit(t, nil, func(c *Config) { c.S3Timeout = 10 * time.Millisecond })
		u.store.stallHead = true
		got, err := u.p.resultExists(context.Background(), u.p.log, "results/j.json")
		if got || retryDelay(err) != worker.DefaultReleaseDelay || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("resultExists = %v, %v; want a release wrapping the deadline", got, err)
		}
	})
	t.Run("document", func(t *testing.T) {
		t.Parallel()
		u := newUnit(t, nil, func(c *Config) { c.S3Timeout = 10 * time.Millisecond })
		u.store.stallGet = true
		_, err := u.p.loadDocument(context.Background(), u.p.log, jobv1.Job{DocumentURI: "s3://docs/a.txt"})
		var f *failure
		if errors.As(err, &f) || retryDelay(err) != worker.DefaultReleaseDelay || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("loadDocument = %v; want a release wrapping the deadline", err)
		}
	})
}

func TestLoadDocument(t *testing.T) {
	t.Parallel()
	const limit = 32
	tests := []struct {
		name      string
		job       jobv1.Job
		object    []byte
		length    *int64
		getErr    error
		wantCode  string        // failed result code
		wantDelay time.Duration // transient
		wantText  string
	}{
		{"inline", jobv1.Job{Text: "inline text"}, nil, nil, nil, "", -1, "inline text"},
		{"inline too large", jobv1.Job{Text: string(make([]byte, limit+1))}, nil, nil, nil, jobv1.CodeDocumentTooLarge, -1, ""},
		{"inline blank", jobv1.Job{Text: " \n\t"}, nil, nil, nil, jobv1.CodeInvalidDocument, -1, ""},
		{"by reference", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, []byte("stored text"), nil, nil, "", -1, "stored text"},
		{"exactly at the limit", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, []byte("0123456789abcdef0123456789abcdef"), nil, nil, "", -1, "0123456789abcdef0123456789abcdef"},
		{"ContentLength over the limit", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, []byte("small"), aws.Int64(limit + 1), nil, jobv1.CodeDocumentTooLarge, -1, ""},
		{"body over the limit, no ContentLength", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, make([]byte, limit+5), new(int64), nil, jobv1.CodeDocumentTooLarge, -1, ""},
		{"bucket not allowed", jobv1.Job{DocumentURI: "s3://other/a.txt"}, nil, nil, nil, jobv1.CodeBucketNotAllowed, -1, ""},
		{"missing", jobv1.Job{DocumentURI: "s3://docs/missing.txt"}, nil, nil, nil, jobv1.CodeDocumentNotFound, -1, ""},
		{"access denied", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, nil, nil, sdkErr(403, &smithy.GenericAPIError{Code: "AccessDenied"}), jobv1.CodeDocumentAccessDenied, -1, ""},
		{"no such bucket", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, nil, nil, sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchBucket"}), jobv1.CodeDocumentNotFound, -1, ""},
		{"signature mismatch is the worker's trouble, not the document's", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, nil, nil,
			sdkErr(403, &smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}), "", worker.DefaultReleaseDelay, ""},
		{"expired token", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, nil, nil, sdkErr(400, &smithy.GenericAPIError{Code: "ExpiredToken"}), "", worker.DefaultReleaseDelay, ""},
		{"S3 unavailable", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, nil, nil, sdkErr(503, &smithy.GenericAPIError{Code: "SlowDown"}), "", worker.DefaultReleaseDelay, ""},
		{"not UTF-8", jobv1.Job{DocumentURI: "s3://docs/a.txt"}, []byte{'a', 0xff}, nil, nil, jobv1.CodeInvalidDocument, -1, ""},
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
			text, err := u.p.loadDocument(context.Background(), u.p.log, tt.job)
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

func TestCheckText(t *testing.T) {
	t.Parallel()
	png := []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 0x0d, 'I', 'H', 'D', 'R'}
	utf16 := []byte{0xff, 0xfe, 'h', 0, 'i', 0, '\n', 0} // "hi\n", UTF-16LE with its byte order mark
	utf16NoBOM := []byte{'h', 0, 'i', 0, '\n', 0}
	tests := []struct {
		name, text string
		want       string // the failure's message; "" for accepted
	}{
		{"prose", "Quarterly report.\nRevenue grew 12%.", ""},
		{"CSV with tabs and CRLF", "name\ttotal\r\nNorthwind\t1250\r\n", ""},
		{"pages split by form feeds", "page one\fpage two\fpage three\v", ""},
		{"one escape in 100 characters", "\x1b" + strings.Repeat("a", 99), ""},
		{"unicode", "Café, naïve, 日本語, 😀", ""},
		{"4 KiB of NUL", strings.Repeat("\x00", 4096), "doc has 4096 NUL bytes; text has none (is it binary, or UTF-16?)"},
		{"one NUL", "text\x00more", "doc has 1 NUL byte; text has none (is it binary, or UTF-16?)"},
		{"PNG header", string(png), "doc is not valid UTF-8 text"},
		{"UTF-16 with a byte order mark", string(utf16), "doc is not valid UTF-8 text"},
		{"UTF-16 without one", string(utf16NoBOM), "doc has 3 NUL bytes; text has none (is it binary, or UTF-16?)"},
		{"Latin-1", "caf\xe9", "doc is not valid UTF-8 text"},
		{"two escapes in 100 characters", "\x1b\x1b" + strings.Repeat("a", 98), "doc has 2 control characters in 100 (2.0%), more than 1%; it looks binary, not text"},
		{"terminal colours", strings.Repeat("\x1b[31mERROR\x1b[0m disk full\n", 10), "doc has 20 control characters in 250 (8.0%), more than 1%; it looks binary, not text"},
		{"C1 controls", strings.Repeat("\u0092", 5) + "abc", "doc has 5 control characters in 8 (62.5%), more than 1%; it looks binary, not text"},
		{"one control in two characters", "\x01a", "doc has 1 control character in 2 (50.0%), more than 1%; it looks binary, not text"},
		{"DEL", "\x7f\x7f", "doc has 2 control characters in 2 (100.0%), more than 1%; it looks binary, not text"},
		{"empty", "", "doc is empty"},
		{"white space only", " \n\t\r\f\u3000", "doc is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkText(tt.text, "doc")
			if tt.want == "" {
				if err != nil {
					t.Errorf("checkText = %v, want accepted", err)
				}
				return
			}
			var f *failure
			if !errors.As(err, &f) || f.code != jobv1.CodeInvalidDocument || f.msg != tt.want {
				t.Errorf("checkText = %v\nwant %s: %s", err, jobv1.CodeInvalidDocument, tt.want)
			}
		})
	}
}
