package jobv1_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tierq/tierq/jobv1"
)

// FuzzParseJob checks that ParseJob never panics; that every job it accepts
// is valid and passes the published job schema too (the schema is the
// contract, so ParseJob may be stricter, never looser); that every rejection
// is one of the four sentinels the worker acts on (an unknown error would be
// released forever instead of answered); and that messages speak of the
// job, not of Go, on one line.
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
		`{"version":"1","job_id":"a","task":"summarize","text":"x","text":"y"}`,
		`{"version":"1","version":"1","job_id":"a","task":"summarize","text":"x"}`,
		`{"version":"1","job_id":"a","task":"summarize","Text":"x"}`,
		`{"version":"1","job_id":"a","task":"summarize","text":"x","max_output_tokens":1e3}`,
		`{"version":"1","job_id":"a","task":"summarize","text":"x","max_output_tokens":0}`,
		`{"version":"1","job_id":"a","task":"summarize","document_uri":"s3://tierq-docs/%2e%2e/x"}`,
		`{"version":"1","job_id":"a","task":"extract","text":"x","schema":{"$ref":"#/$defs/a","$defs":{"a":{"type":"object"}}}}`,
		`{"version":"1","job_id":"a","task":"extract","text":"x","schema":{"type":12}}`,
		`{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","\u3000"],"metadata":{"":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(jobv1.JobSchema))
	if err != nil {
		f.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("job.v1.schema.json", doc); err != nil {
		f.Fatal(err)
	}
	schema, err := c.Compile("job.v1.schema.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		j, err := jobv1.ParseJob(body)
		if err == nil {
			if verr := j.Validate(); verr != nil {
				t.Fatalf("ParseJob accepted %q but Validate says %v", body, verr)
			}
			if j.JobID == "" || j.Version != jobv1.JobVersion {
				t.Fatalf("accepted job %+v has no job_id or version", j)
			}
			v, derr := jsonschema.UnmarshalJSON(bytes.NewReader(body))
			if derr != nil {
				t.Fatalf("ParseJob accepted %q, which is not JSON: %v", body, derr)
			}
			if serr := schema.Validate(v); serr != nil {
				t.Fatalf("ParseJob accepted %q, which the job schema refuses: %v", body, serr)
			}
			return
		}
		sentinels := 0
		for _, s := range []error{jobv1.ErrMalformed, jobv1.ErrUnsupportedVersion, jobv1.ErrBadJobID, jobv1.ErrInvalidJob} {
			if errors.Is(err, s) {
				sentinels++
			}
		}
		if sentinels != 1 {
			t.Fatalf("ParseJob(%q) = %v, matching %d sentinels; want exactly one", body, err, sentinels)
		}
		if errors.Is(err, jobv1.ErrInvalidJob) && j.JobID == "" {
			t.Fatalf("invalid job %q lost its job_id", body)
		}
		if strings.ContainsAny(err.Error(), "\n\r") {
			t.Fatalf("ParseJob(%q) = %q, which spans lines", body, err)
		}
		for _, goTalk := range []string{"Go value", "cannot unmarshal", "struct {", "json: ", "jsonschema"} {
			if strings.Contains(err.Error(), goTalk) {
				t.Fatalf("ParseJob(%q) = %q, which speaks of Go (%q)", body, err, goTalk)
			}
		}
	})
}
