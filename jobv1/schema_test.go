package jobv1_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
)

// goldenDir holds the job examples and result goldens the pipeline's tests
// write (refresh them with go test ./pipeline -update).
const goldenDir = "../testdata/results"

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
	s := testenv.CompileSchema(t, "job.v1.schema.json", jobv1.JobSchema)
	tasks := map[string]bool{}
	byReference := false
	for _, f := range goldenFiles(t, "job-*.json") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := testenv.Validate(s, b); err != nil {
			t.Errorf("%s fails the job schema: %v", filepath.Base(f), err)
		}
		j, err := jobv1.ParseJob(b)
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

// Every job ParseJob refuses, the published schema refuses too, except
// for what a JSON Schema cannot see; those rows say why, and check that the
// schema indeed lets them through, so the list stays true.
func TestKnownBadJobsAreRejectedByBoth(t *testing.T) {
	t.Parallel()
	s := testenv.CompileSchema(t, "job.v1.schema.json", jobv1.JobSchema)
	const (
		dupKeys  = "repeated keys: a validator sees only the decoded object"
		decoded  = "a decoder has already turned the lone surrogate into U+FFFD"
		notUTF8  = "a decoder has already replaced the invalid bytes"
		bytesLim = "a byte limit: maxLength counts characters"
		compiles = "whether an extract schema compiles: its $refs resolve, within 32 levels and 32 KiB"
		total    = "a limit on several fields together"
		numbers  = "a number's size"
	)
	job := func(members string) string {
		return `{"version":"1","job_id":"a","task":"summarize","text":"x",` + members + `}`
	}
	extract := func(schema string) string {
		return `{"version":"1","job_id":"a","task":"extract","text":"x","schema":` + schema + `}`
	}
	byRef := func(uri string) string {
		return `{"version":"1","job_id":"a","task":"summarize","document_uri":"` + uri + `"}`
	}
	tests := []struct {
		name     string
		body     string
		sentinel error
		goOnly   string // why the schema cannot refuse it; "" when it does
	}{
		{"no document", `{"version":"1","job_id":"a","task":"summarize"}`, jobv1.ErrInvalidJob, ""},
		{"two documents", `{"version":"1","job_id":"a","task":"summarize","text":"x","document_uri":"s3://b/k"}`, jobv1.ErrInvalidJob, ""},
		{"document_uri not S3", byRef("https://b/k"), jobv1.ErrInvalidJob, ""},
		{"unknown field", job(`"priority":"high"`), jobv1.ErrInvalidJob, ""},
		{"unknown field differing in case", job(`"Text":"y"`), jobv1.ErrInvalidJob, ""},
		{"unknown field with a long s", `{"version":"1","job_id":"a","taſk":"summarize","text":"x"}`, jobv1.ErrInvalidJob, ""},
		{"unknown task", `{"version":"1","job_id":"a","task":"translate","text":"x"}`, jobv1.ErrInvalidJob, ""},
		{"no task", `{"version":"1","job_id":"a","text":"x"}`, jobv1.ErrInvalidJob, ""},
		{"classify with one label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a"]}`, jobv1.ErrInvalidJob, ""},
		{"classify without labels", `{"version":"1","job_id":"a","task":"classify","text":"x"}`, jobv1.ErrInvalidJob, ""},
		{"blank label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a"," "]}`, jobv1.ErrInvalidJob, ""},
		{"label of ideographic spaces", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","\u3000\u2003"]}`, jobv1.ErrInvalidJob, ""},
		{"label with an escape sequence", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","\u001b[31mb"]}`, jobv1.ErrInvalidJob, ""},
		{"label with a C1 control", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","b\u0085"]}`, jobv1.ErrInvalidJob, ""},
		{"repeated label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","a"]}`, jobv1.ErrInvalidJob, ""},
		{"label of 201 characters", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","` + strings.Repeat("b", 201) + `"]}`, jobv1.ErrInvalidJob, ""},
		{"51 labels", job(`"labels":[` + strings.TrimSuffix(strings.Repeat(`"l",`, 51), ",") + `]`), jobv1.ErrInvalidJob, ""},
		{"blank field", `{"version":"1","job_id":"a","task":"extract","text":"x","fields":["\t"]}`, jobv1.ErrInvalidJob, ""},
		{"repeated field", `{"version":"1","job_id":"a","task":"extract","text":"x","fields":["a","a"]}`, jobv1.ErrInvalidJob, ""},
		{"extract without fields or schema", `{"version":"1","job_id":"a","task":"extract","text":"x"}`, jobv1.ErrInvalidJob, ""},
		{"extract with an empty field list", `{"version":"1","job_id":"a","task":"extract","text":"x","fields":[]}`, jobv1.ErrInvalidJob, ""},
		{"extract with a null schema", extract(`null`), jobv1.ErrInvalidJob, ""},
		{"extract schema that is not a JSON Schema", extract(`{"type":12,"properties":"x"}`), jobv1.ErrInvalidJob, ""},
		{"extract schema of draft-07", extract(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`), jobv1.ErrInvalidJob, ""},
		{"extract schema with an invalid regex", extract(`{"pattern":"(unclosed"}`), jobv1.ErrInvalidJob, ""},
		{"extract schema with a remote $ref", extract(`{"$ref":"https://example.com/s.json"}`), jobv1.ErrInvalidJob, compiles},
		{"extract schema with a file $ref", extract(`{"$ref":"file:///etc/passwd"}`), jobv1.ErrInvalidJob, compiles},
		{"extract schema that is a $ref loop", extract(`{"$ref":"#"}`), jobv1.ErrInvalidJob, compiles},
		{"extract schema with a $ref to nothing", extract(`{"$ref":"#/$defs/none"}`), jobv1.ErrInvalidJob, compiles},
		{"extract schema 33 levels deep", extract(strings.Repeat(`{"not":`, 32) + `{}` + strings.Repeat(`}`, 32)), jobv1.ErrInvalidJob, compiles},
		{"extract schema over 32 KiB", extract(`{"description":"` + strings.Repeat("d", 32<<10) + `"}`), jobv1.ErrInvalidJob, compiles},
		{"extract schema with a huge number", extract(`{"maximum":1e999}`), jobv1.ErrInvalidJob, numbers},
		{"custom without instructions", `{"version":"1","job_id":"a","task":"custom","text":"x"}`, jobv1.ErrInvalidJob, ""},
		{"custom with blank instructions", `{"version":"1","job_id":"a","task":"custom","text":"x","instructions":"  "}`, jobv1.ErrInvalidJob, ""},
		{"instructions with a control character", job(`"instructions":"a\u0000b"`), jobv1.ErrInvalidJob, ""},
		{"instructions over 16 KiB in bytes", job(`"instructions":"` + strings.Repeat("é", 8193) + `"`), jobv1.ErrInvalidJob, bytesLim},
		{"instructions, fields and schema over 64 KiB together", jobv1.BigPromptJob(), jobv1.ErrInvalidJob, total},
		{"max_output_tokens 0", job(`"max_output_tokens":0`), jobv1.ErrInvalidJob, ""},
		{"max_output_tokens 1.5", job(`"max_output_tokens":1.5`), jobv1.ErrInvalidJob, ""},
		{"max_output_tokens as a string", job(`"max_output_tokens":"100"`), jobv1.ErrInvalidJob, ""},
		{"max_output_tokens too large", job(`"max_output_tokens":70000`), jobv1.ErrInvalidJob, ""},
		{"tier_hint with a space", job(`"tier_hint":"big model"`), jobv1.ErrInvalidJob, ""},
		{"tier_override of 65 characters", job(`"tier_override":"` + strings.Repeat("t", 65) + `"`), jobv1.ErrInvalidJob, ""},
		{"metadata value not a string", job(`"metadata":{"n":1}`), jobv1.ErrInvalidJob, ""},
		{"metadata key empty", job(`"metadata":{"":"v"}`), jobv1.ErrInvalidJob, ""},
		{"metadata key with a newline", job(`"metadata":{"a\nb":"v"}`), jobv1.ErrInvalidJob, ""},
		{"metadata key over 128 bytes", job(`"metadata":{"` + strings.Repeat("é", 65) + `":"v"}`), jobv1.ErrInvalidJob, bytesLim},
		{"metadata value over 1024 bytes", job(`"metadata":{"k":"` + strings.Repeat("é", 513) + `"}`), jobv1.ErrInvalidJob, bytesLim},
		{"uri climbing out of its bucket", byRef("s3://tierq-docs/../other/secret.txt"), jobv1.ErrInvalidJob, ""},
		{"uri with an encoded ..", byRef("s3://tierq-docs/%2E%2e/other/secret.txt"), jobv1.ErrInvalidJob, ""},
		{"uri with a . segment", byRef("s3://tierq-docs/a/./b"), jobv1.ErrInvalidJob, ""},
		{"uri with a trailing ..", byRef("s3://tierq-docs/a/.."), jobv1.ErrInvalidJob, ""},
		{"uri with an empty segment", byRef("s3://tierq-docs/a//b"), jobv1.ErrInvalidJob, ""},
		{"uri with a leading slash in the key", byRef("s3://tierq-docs//a"), jobv1.ErrInvalidJob, ""},
		{"uri with a backslash", byRef(`s3://tierq-docs/a\\b`), jobv1.ErrInvalidJob, ""},
		{"uri with a control character", byRef(`s3://tierq-docs/a\u0001b`), jobv1.ErrInvalidJob, ""},
		{"uri with a port", byRef("s3://tierq-docs:443/k"), jobv1.ErrInvalidJob, ""},
		{"uri with user info", byRef("s3://user@tierq-docs/k"), jobv1.ErrInvalidJob, ""},
		{"uri with an upper-case scheme", byRef("S3://tierq-docs/k"), jobv1.ErrInvalidJob, ""},
		{"uri with an IP address bucket", byRef("s3://10.0.0.1/k"), jobv1.ErrInvalidJob, ""},
		{"uri with adjacent dots in the bucket", byRef("s3://a..b/k"), jobv1.ErrInvalidJob, ""},
		{"uri with a 1025-byte key", byRef("s3://tierq-docs/" + strings.Repeat("é", 513)), jobv1.ErrInvalidJob, bytesLim},
		{"text twice", job(`"text":"y"`), jobv1.ErrInvalidJob, dupKeys},
		{"metadata key twice", job(`"metadata":{"k":"1","k":"2"}`), jobv1.ErrInvalidJob, dupKeys},
		{"text with a lone surrogate", `{"version":"1","job_id":"a","task":"summarize","text":"\ud800"}`, jobv1.ErrInvalidJob, decoded},
		{"version 2", `{"version":"2","job_id":"a","task":"summarize","text":"x"}`, jobv1.ErrUnsupportedVersion, ""},
		{"version as a number", `{"version":1,"job_id":"a","task":"summarize","text":"x"}`, jobv1.ErrUnsupportedVersion, ""},
		{"no version", `{"job_id":"a","task":"summarize","text":"x"}`, jobv1.ErrUnsupportedVersion, ""},
		{"version twice", `{"version":"2","version":"1","job_id":"a","task":"summarize","text":"x"}`, jobv1.ErrUnsupportedVersion, dupKeys},
		{"job_id with a slash", `{"version":"1","job_id":"a/b","task":"summarize","text":"x"}`, jobv1.ErrBadJobID, ""},
		{"job_id with ..", `{"version":"1","job_id":"a..b","task":"summarize","text":"x"}`, jobv1.ErrBadJobID, ""},
		{"job_id as a number", `{"version":"1","job_id":7,"task":"summarize","text":"x"}`, jobv1.ErrBadJobID, ""},
		{"no job_id", `{"version":"1","task":"summarize","text":"x"}`, jobv1.ErrBadJobID, ""},
		{"job_id twice", `{"version":"1","job_id":"a/b","job_id":"a","task":"summarize","text":"x"}`, jobv1.ErrBadJobID, dupKeys},
		{"job_id with a lone surrogate", `{"version":"1","job_id":"a\ud800","task":"summarize","text":"x"}`, jobv1.ErrBadJobID, ""},
		{"not an object", `["version","1"]`, jobv1.ErrMalformed, ""},
		{"not UTF-8", "{\"version\":\"1\",\"job_id\":\"a\",\"task\":\"summarize\",\"text\":\"caf\xe9\"}", jobv1.ErrMalformed, notUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := testenv.Validate(s, []byte(tt.body))
			switch {
			case tt.goOnly == "" && err == nil:
				t.Error("the job schema accepts it")
			case tt.goOnly != "" && err != nil:
				t.Errorf("the job schema refuses it (%v), though the table says it cannot: %s", err, tt.goOnly)
			}
			if _, err := jobv1.ParseJob([]byte(tt.body)); !errors.Is(err, tt.sentinel) {
				t.Errorf("ParseJob = %v, want %v", err, tt.sentinel)
			}
		})
	}
}

func TestResultGoldensPassSchema(t *testing.T) {
	t.Parallel()
	s := testenv.CompileSchema(t, "result.v1.schema.json", jobv1.ResultSchema)
	statuses := map[string]bool{}
	for _, f := range goldenFiles(t, "result-*.json") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := testenv.Validate(s, b); err != nil {
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
	s := testenv.CompileSchema(t, "result.v1.schema.json", jobv1.ResultSchema)
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
			if err := testenv.Validate(s, b); err == nil {
				t.Error("the result schema accepts it")
			}
		})
	}
}
