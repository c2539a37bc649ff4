package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tierq/tierq/pipeline"
)

// FuzzParseJob checks that ParseJob never panics, that every job it accepts
// is valid, and that every rejection is one of the four sentinels the worker
// acts on (an unknown error would be released forever instead of answered).
func FuzzParseJob(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "job-*.json"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"1"`,
		`{"version":"1"}`,
		`{"version":"1","job_id":"a"}`,
		`{"version":"1","job_id":"a","task":"extract","text":"x","schema":null}`,
		`{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","b"],"metadata":{"tenant":"t"}}`,
		`{"version":"1","job_id":"a","task":"summarize","document_uri":"s3://b/k","max_output_tokens":-1}`,
		`{"version":"1","job_id":"a","task":"custom","text":"x","instructions":"do","extra":1}`,
		`{"version":"1","job_id":"a","task":"summarize","text":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		j, err := pipeline.ParseJob(body)
		if err == nil {
			if verr := j.Validate(); verr != nil {
				t.Fatalf("ParseJob accepted %q but Validate says %v", body, verr)
			}
			if j.JobID == "" || j.Version != pipeline.JobVersion {
				t.Fatalf("accepted job %+v has no job_id or version", j)
			}
			return
		}
		sentinels := 0
		for _, s := range []error{pipeline.ErrMalformed, pipeline.ErrUnsupportedVersion, pipeline.ErrBadJobID, pipeline.ErrInvalidJob} {
			if errors.Is(err, s) {
				sentinels++
			}
		}
		if sentinels != 1 {
			t.Fatalf("ParseJob(%q) = %v, matching %d sentinels; want exactly one", body, err, sentinels)
		}
		if errors.Is(err, pipeline.ErrInvalidJob) && j.JobID == "" {
			t.Fatalf("invalid job %q lost its job_id", body)
		}
	})
}
