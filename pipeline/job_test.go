package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseJobSentinels(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxJobIDLen+1)
	tests := []struct {
		name string
		body string
		want error // nil: accepted
	}{
		{"minimal summarize", `{"version":"1","job_id":"a","task":"summarize","text":"x"}`, nil},
		{"not JSON", `hello`, ErrMalformed},
		{"empty body", ``, ErrMalformed},
		{"array", `[]`, ErrMalformed},
		{"trailing garbage", `{"version":"1","job_id":"a","task":"summarize","text":"x"} x`, ErrMalformed},
		{"version is a number", `{"version":1,"job_id":"a"}`, ErrMalformed},
		{"null body", `null`, ErrUnsupportedVersion},
		{"version missing", `{"job_id":"a","task":"summarize","text":"x"}`, ErrUnsupportedVersion},
		{"version 2", `{"version":"2","job_id":"a","task":"summarize","text":"x"}`, ErrUnsupportedVersion},
		{"job_id missing", `{"version":"1","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id empty", `{"version":"1","job_id":"","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id with slash", `{"version":"1","job_id":"a/b","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id starts with dot", `{"version":"1","job_id":".a","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id too long", `{"version":"1","job_id":"` + long + `","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id is a number", `{"version":"1","job_id":7}`, ErrMalformed},
		{"unknown field", `{"version":"1","job_id":"a","task":"summarize","text":"x","priority":1}`, ErrInvalidJob},
		{"field of the wrong type", `{"version":"1","job_id":"a","task":"summarize","text":"x","labels":"a,b"}`, ErrInvalidJob},
		{"invalid field", `{"version":"1","job_id":"a","task":"translate","text":"x"}`, ErrInvalidJob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j, err := ParseJob([]byte(tt.body))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("ParseJob = %v, want %v", err, tt.want)
			}
			switch {
			case tt.want == nil:
				if j.JobID != "a" || j.Task != "summarize" {
					t.Errorf("job = %+v", j)
				}
			case errors.Is(err, ErrInvalidJob):
				// The job ID survives so a failed result can be written.
				if j.JobID != "a" || j.Version != JobVersion {
					t.Errorf("invalid job = %+v, want job_id a and version 1 kept", j)
				}
			default:
				if j.JobID != "" {
					t.Errorf("rejected message returned job %+v, want the zero Job", j)
				}
			}
		})
	}
}

func TestValidateRules(t *testing.T) {
	t.Parallel()
	valid := func() Job {
		return Job{Version: "1", JobID: "a", Task: "summarize", Text: "x"}
	}
	many := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", s, i)
		}
		return out
	}
	manyMeta := map[string]string{}
	for i := range MaxMetadataKeys + 1 {
		manyMeta[fmt.Sprint("k", i)] = "v"
	}
	tests := []struct {
		name   string
		change func(*Job)
		want   string // "" for valid
	}{
		{"valid", func(*Job) {}, ""},
		{"task missing", func(j *Job) { j.Task = "" }, "task: required"},
		{"task unknown", func(j *Job) { j.Task = "translate" }, `task: "translate" is not`},
		{"no document", func(j *Job) { j.Text = "" }, "text or document_uri: one is required"},
		{"both documents", func(j *Job) { j.DocumentURI = "s3://b/k" }, "set only one"},
		{"bad uri scheme", func(j *Job) { j.Text, j.DocumentURI = "", "https://b/k" }, "document_uri:"},
		{"uri without key", func(j *Job) { j.Text, j.DocumentURI = "", "s3://bucket/" }, "document_uri:"},
		{"uri by reference", func(j *Job) { j.Text, j.DocumentURI = "", "s3://bucket/key.txt" }, ""},
		{"text not UTF-8", func(j *Job) { j.Text = "a\xffb" }, "text: not valid UTF-8"},
		{"custom without instructions", func(j *Job) { j.Task = "custom"; j.Instructions = "  " }, "instructions: required for task custom"},
		{"custom with instructions", func(j *Job) { j.Task = "custom"; j.Instructions = "List risks." }, ""},
		{"instructions too long", func(j *Job) { j.Instructions = strings.Repeat("a", MaxInstructionsBytes+1) }, "instructions: 16385 bytes"},
		{"classify with one label", func(j *Job) { j.Task = "classify"; j.Labels = []string{"a"} }, "classify needs at least 2 labels"},
		{"classify with two labels", func(j *Job) { j.Task = "classify"; j.Labels = []string{"a", "b"} }, ""},
		{"too many labels", func(j *Job) { j.Labels = many(MaxLabels+1, "l") }, "labels: 51, more than 50"},
		{"empty label", func(j *Job) { j.Task = "classify"; j.Labels = []string{"a", " "} }, "labels[1]: empty"},
		{"extract without fields or schema", func(j *Job) { j.Task = "extract" }, "fields or schema: extract needs one"},
		{"extract with fields", func(j *Job) { j.Task = "extract"; j.Fields = []string{"a"} }, ""},
		{"extract with schema", func(j *Job) { j.Task = "extract"; j.Schema = json.RawMessage(`{"type":"object"}`) }, ""},
		{"too many fields", func(j *Job) { j.Fields = many(MaxFields+1, "f") }, "fields: 101, more than 100"},
		{"schema is an array", func(j *Job) { j.Schema = json.RawMessage(`[1]`) }, "schema: must be a JSON object"},
		{"schema is null", func(j *Job) { j.Task = "extract"; j.Schema = json.RawMessage(`null`) }, "schema: must be a JSON object"},
		{"negative max_output_tokens", func(j *Job) { j.MaxOutputTokens = -1 }, "max_output_tokens: -1 is outside"},
		{"max_output_tokens too large", func(j *Job) { j.MaxOutputTokens = MaxOutputTokensLimit + 1 }, "max_output_tokens: 64001 is outside"},
		{"too many metadata keys", func(j *Job) { j.Metadata = manyMeta }, "metadata: 33 keys"},
		{"empty metadata key", func(j *Job) { j.Metadata = map[string]string{"": "v"} }, `metadata[""]`},
		{"metadata key too long", func(j *Job) { j.Metadata = map[string]string{strings.Repeat("k", 129): "v"} }, "keys are 1 to 128 bytes"},
		{"metadata value too long", func(j *Job) { j.Metadata = map[string]string{"k": strings.Repeat("v", MaxMetadataValueLen+1)} }, "values at most 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := valid()
			tt.change(&j)
			err := j.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidJob) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want ErrInvalidJob mentioning %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := Job{Version: "1", JobID: "a", Task: "classify", MaxOutputTokens: -5}.Validate()
	for _, want := range []string{"text or document_uri", "labels:", "max_output_tokens"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %q", err, want)
		}
	}
}
