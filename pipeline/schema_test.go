package pipeline_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tierq/tierq/pipeline"
)

func compileSchema(t *testing.T, name string, schema []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(name)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, b []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

func goldenFiles(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s files in %s (%v)", pattern, goldenDir, err)
	}
	return files
}

func TestJobExamplesPassSchemaAndParseJob(t *testing.T) {
	t.Parallel()
	s := compileSchema(t, "job.v1.schema.json", pipeline.JobSchema)
	tasks := map[string]bool{}
	byReference := false
	for _, f := range goldenFiles(t, "job-*.json") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(t, s, b); err != nil {
			t.Errorf("%s fails the job schema: %v", filepath.Base(f), err)
		}
		j, err := pipeline.ParseJob(b)
		if err != nil {
			t.Errorf("%s fails ParseJob: %v", filepath.Base(f), err)
		}
		tasks[j.Task] = true
		byReference = byReference || j.DocumentURI != ""
	}
	if len(tasks) != 4 || !byReference {
		t.Errorf("examples cover tasks %v and by-reference %v; want all four tasks and one by reference", tasks, byReference)
	}
}

func TestKnownBadJobsAreRejectedByBoth(t *testing.T) {
	t.Parallel()
	s := compileSchema(t, "job.v1.schema.json", pipeline.JobSchema)
	tests := []struct {
		name     string
		body     string
		sentinel error
	}{
		{"no document", `{"version":"1","job_id":"a","task":"summarize"}`, pipeline.ErrInvalidJob},
		{"two documents", `{"version":"1","job_id":"a","task":"summarize","text":"x","document_uri":"s3://b/k"}`, pipeline.ErrInvalidJob},
		{"document_uri not S3", `{"version":"1","job_id":"a","task":"summarize","document_uri":"https://b/k"}`, pipeline.ErrInvalidJob},
		{"unknown field", `{"version":"1","job_id":"a","task":"summarize","text":"x","priority":"high"}`, pipeline.ErrInvalidJob},
		{"unknown task", `{"version":"1","job_id":"a","task":"translate","text":"x"}`, pipeline.ErrInvalidJob},
		{"no task", `{"version":"1","job_id":"a","text":"x"}`, pipeline.ErrInvalidJob},
		{"classify with one label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a"]}`, pipeline.ErrInvalidJob},
		{"classify without labels", `{"version":"1","job_id":"a","task":"classify","text":"x"}`, pipeline.ErrInvalidJob},
		{"blank label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a"," "]}`, pipeline.ErrInvalidJob},
		{"extract without fields or schema", `{"version":"1","job_id":"a","task":"extract","text":"x"}`, pipeline.ErrInvalidJob},
		{"extract with an empty field list", `{"version":"1","job_id":"a","task":"extract","text":"x","fields":[]}`, pipeline.ErrInvalidJob},
		{"extract with a null schema", `{"version":"1","job_id":"a","task":"extract","text":"x","schema":null}`, pipeline.ErrInvalidJob},
		{"custom without instructions", `{"version":"1","job_id":"a","task":"custom","text":"x"}`, pipeline.ErrInvalidJob},
		{"custom with blank instructions", `{"version":"1","job_id":"a","task":"custom","text":"x","instructions":"  "}`, pipeline.ErrInvalidJob},
		{"max_output_tokens too large", `{"version":"1","job_id":"a","task":"summarize","text":"x","max_output_tokens":70000}`, pipeline.ErrInvalidJob},
		{"metadata value not a string", `{"version":"1","job_id":"a","task":"summarize","text":"x","metadata":{"n":1}}`, pipeline.ErrInvalidJob},
		{"version 2", `{"version":"2","job_id":"a","task":"summarize","text":"x"}`, pipeline.ErrUnsupportedVersion},
		{"no version", `{"job_id":"a","task":"summarize","text":"x"}`, pipeline.ErrUnsupportedVersion},
		{"job_id with a slash", `{"version":"1","job_id":"a/b","task":"summarize","text":"x"}`, pipeline.ErrBadJobID},
		{"no job_id", `{"version":"1","task":"summarize","text":"x"}`, pipeline.ErrBadJobID},
		{"not an object", `["version","1"]`, pipeline.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := validate(t, s, []byte(tt.body)); err == nil {
				t.Error("the job schema accepts it")
			}
			if _, err := pipeline.ParseJob([]byte(tt.body)); !errors.Is(err, tt.sentinel) {
				t.Errorf("ParseJob = %v, want %v", err, tt.sentinel)
			}
		})
	}
}

func TestResultGoldensPassSchema(t *testing.T) {
	t.Parallel()
	s := compileSchema(t, "result.v1.schema.json", pipeline.ResultSchema)
	statuses := map[string]bool{}
	for _, f := range goldenFiles(t, "result-*.json") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(t, s, b); err != nil {
			t.Errorf("%s fails the result schema: %v", filepath.Base(f), err)
		}
		statuses[filepath.Base(f)] = true
	}
	for _, want := range []string{"result-succeeded-summarize.json", "result-succeeded-extract.json", "result-blocked.json",
		"result-failed.json", "result-escalated.json", "result-escalation-failed.json", "result-spillover.json"} {
		if !statuses[want] {
			t.Errorf("golden %s is missing", want)
		}
	}
}

func TestResultSchemaRejectsInconsistentResults(t *testing.T) {
	t.Parallel()
	s := compileSchema(t, "result.v1.schema.json", pipeline.ResultSchema)
	blocked, err := os.ReadFile(filepath.Join(goldenDir, "result-blocked.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, from, to string }{
		{"blocked result whose guardrail only masked", `"action": "blocked"`, `"action": "masked"`},
		{"unknown status", `"status": "blocked"`, `"status": "done"`},
		{"unknown field", `"attempts": 1,`, `"attempts": 1, "retries": 0,`},
		{"negative tokens", `"input_tokens": 0`, `"input_tokens": -1`},
		{"bad timestamp", `"finished_at": "2026-11-24T12:00:00.025Z"`, `"finished_at": "yesterday"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := bytes.Replace(blocked, []byte(tt.from), []byte(tt.to), 1)
			if bytes.Equal(b, blocked) {
				t.Fatalf("golden has no %s", tt.from)
			}
			if err := validate(t, s, b); err == nil {
				t.Error("the result schema accepts it")
			}
		})
	}
}
