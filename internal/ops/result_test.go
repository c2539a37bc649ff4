package ops_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/ops"
	"github.com/tierq/tierq/jobv1"
)

// noCalls is a Store that fails the test on any call.
type noCalls struct{ t *testing.T }

func (n noCalls) ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	n.t.Error("ListObjectsV2 called")
	return nil, errors.New("no calls")
}

func (n noCalls) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	n.t.Error("GetObject called")
	return nil, errors.New("no calls")
}

func TestValidateJobID(t *testing.T) {
	t.Parallel()
	for id, ok := range map[string]bool{
		"example-0001": true, "a": true, "A.b_c-9": true, strings.Repeat("x", 128): true,
		"": false, "-x": false, "a..b": false, "../etc": false, "a/b": false, "a b": false, strings.Repeat("x", 129): false,
		"é": false, `a"b`: false, "a\x00": false,
	} {
		err := ops.ValidateJobID(id)
		if (err == nil) != ok {
			t.Errorf("ValidateJobID(%q) = %v, want ok %v", id, err, ok)
		}
		if err != nil && !errors.Is(err, jobv1.ErrBadJobID) {
			t.Errorf("ValidateJobID(%q) = %v, want jobv1.ErrBadJobID", id, err)
		}
		if !ok {
			// Refused before any S3 call.
			if _, err := ops.FetchResult(t.Context(), noCalls{t}, "b", "results/", id, time.Now()); !errors.Is(err, jobv1.ErrBadJobID) {
				t.Errorf("FetchResult(%q) = %v, want jobv1.ErrBadJobID", id, err)
			}
		}
	}
}

func TestFetchResult(t *testing.T) {
	t.Parallel()
	bucket := newBucket(t)
	const prefix = "results/"
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	putResult(t, bucket, prefix, jobv1.Result{JobID: "done", Status: jobv1.StatusSucceeded, Tier: "economy"})
	put(t, bucket, prefix+"running.claim", []byte(`{"job_id":"running","worker":"w-7","token":"t","lease_until":"2026-11-30T12:00:40Z"}`))
	put(t, bucket, prefix+"released.claim", []byte(`{"job_id":"released","worker":"w-2","token":"t","lease_until":"2026-11-30T11:00:00Z"}`))
	put(t, bucket, prefix+"odd.json", []byte(`{"version":"2","job_id":"odd"}`))
	store := emulator.S3(kumoURL)

	f, err := ops.FetchResult(t.Context(), store, bucket, prefix, "done", now)
	if err != nil || f.Result.Status != jobv1.StatusSucceeded || f.Location != "s3://"+bucket+"/results/done.json" || len(f.Raw) == 0 {
		t.Fatalf("FetchResult(done) = %+v, %v", f, err)
	}

	tests := []struct {
		id   string
		want []string
	}{
		{"never", []string{"no result for job never", "results/never.json does not exist", "no worker has claimed it", "tierq status", "tierq redrive --dry-run"}},
		{"running", []string{"worker w-7 claimed it and holds it until 2026-11-30T12:00:40Z: it is running"}},
		{"released", []string{"worker w-2 claimed it, and its lease ended 2026-11-30T11:00:00Z", "waits in the queue"}},
	}
	for _, tt := range tests {
		_, err := ops.FetchResult(t.Context(), store, bucket, prefix, tt.id, now)
		if !errors.Is(err, ops.ErrNoResult) {
			t.Errorf("FetchResult(%s) = %v, want ErrNoResult", tt.id, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("FetchResult(%s) error lacks %q:\n%v", tt.id, w, err)
			}
		}
	}

	f, err = ops.FetchResult(t.Context(), store, bucket, prefix, "odd", now)
	if err == nil || !strings.Contains(err.Error(), `result version "2"`) || string(f.Raw) != `{"version":"2","job_id":"odd"}` {
		t.Errorf("FetchResult(odd) = %q, %v; want the raw object and a version error", f.Raw, err)
	}
	if _, err := ops.FetchResult(t.Context(), store, "no-such-bucket-ops", prefix, "done", now); err == nil || errors.Is(err, ops.ErrNoResult) {
		t.Errorf("FetchResult from a missing bucket = %v, want an error other than ErrNoResult", err)
	}
}
