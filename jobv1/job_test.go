package jobv1

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// jobWith is a valid summarize job's body with more members appended (or,
// when a member repeats one of the base's keys, both appear).
func jobWith(members string) string {
	if members == "" {
		return `{"version":"1","job_id":"a","task":"summarize","text":"x"}`
	}
	return `{"version":"1","job_id":"a","task":"summarize","text":"x",` + members + `}`
}

func TestParseJobSentinels(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxJobIDLen+1)
	tests := []struct {
		name string
		body string
		want error // nil: accepted
	}{
		{"minimal summarize", jobWith(""), nil},
		{"not JSON", `hello`, ErrMalformed},
		{"empty body", ``, ErrMalformed},
		{"array", `[]`, ErrMalformed},
		{"null body", `null`, ErrMalformed},
		{"a JSON string holding a job", `"{\"version\":\"1\"}"`, ErrMalformed},
		{"trailing garbage", jobWith("") + ` x`, ErrMalformed},
		{"two objects", jobWith("") + jobWith(""), ErrMalformed},
		{"invalid UTF-8 in text", "{\"version\":\"1\",\"job_id\":\"a\",\"task\":\"summarize\",\"text\":\"caf\xe9\"}", ErrMalformed},
		{"byte order mark", "\ufeff" + jobWith(""), ErrMalformed},
		{"version is a number", `{"version":1,"job_id":"a"}`, ErrUnsupportedVersion},
		{"version missing", `{"job_id":"a","task":"summarize","text":"x"}`, ErrUnsupportedVersion},
		{"Version is not version", `{"Version":"1","job_id":"a","task":"summarize","text":"x"}`, ErrUnsupportedVersion},
		{"version 2", `{"version":"2","job_id":"a","task":"summarize","text":"x"}`, ErrUnsupportedVersion},
		{"version twice", `{"version":"2","version":"1","job_id":"a","task":"summarize","text":"x"}`, ErrUnsupportedVersion},
		{"version with a lone surrogate", `{"version":"1\ud800","job_id":"a","task":"summarize","text":"x"}`, ErrUnsupportedVersion},
		{"job_id missing", `{"version":"1","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id empty", `{"version":"1","job_id":"","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id with slash", `{"version":"1","job_id":"a/b","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id starts with dot", `{"version":"1","job_id":".a","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id with ..", `{"version":"1","job_id":"a..b","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id too long", `{"version":"1","job_id":"` + long + `","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id is a number", `{"version":"1","job_id":7}`, ErrBadJobID},
		{"job_id twice", `{"version":"1","job_id":"a","job_id":"b","task":"summarize","text":"x"}`, ErrBadJobID},
		{"job_id with a lone surrogate", `{"version":"1","job_id":"a\udc00","task":"summarize","text":"x"}`, ErrBadJobID},
		{"unknown field", jobWith(`"priority":1`), ErrInvalidJob},
		{"unknown field differing only in case", jobWith(`"Text":"y"`), ErrInvalidJob},
		{"unknown field with a long s", `{"version":"1","job_id":"a","taſk":"summarize","text":"x"}`, ErrInvalidJob},
		{"field of the wrong type", jobWith(`"labels":"a,b"`), ErrInvalidJob},
		{"invalid field", `{"version":"1","job_id":"a","task":"translate","text":"x"}`, ErrInvalidJob},
		{"duplicate text", jobWith(`"text":"y"`), ErrInvalidJob},
		{"duplicate key deep inside", jobWith(`"metadata":{"k":"1","k":"2"}`), ErrInvalidJob},
		{"lone surrogate in text", `{"version":"1","job_id":"a","task":"summarize","text":"\ud800"}`, ErrInvalidJob},
		{"max_output_tokens 0", jobWith(`"max_output_tokens":0`), ErrInvalidJob},
		{"max_output_tokens 1.5", jobWith(`"max_output_tokens":1.5`), ErrInvalidJob},
		{"max_output_tokens 1.0 is an integer", jobWith(`"max_output_tokens":1.0`), nil},
		{"max_output_tokens 1e3 is an integer", jobWith(`"max_output_tokens":1e3`), nil},
		{"max_output_tokens huge exponent", jobWith(`"max_output_tokens":1e999999`), ErrInvalidJob},
		{"nested too deep", jobWith(`"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100)), ErrInvalidJob},
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
				if !isZeroJob(j) {
					t.Errorf("rejected message returned job %+v, want the zero Job", j)
				}
			}
		})
	}
}

func isZeroJob(j Job) bool {
	b, _ := json.Marshal(j)
	return string(b) == `{"version":"","job_id":"","task":""}`
}

// Messages are part of the contract: they go into failed results and
// dead-letter reasons, so they are compared whole.
func TestParseJobMessages(t *testing.T) {
	t.Parallel()
	schemaJob := func(schema string) string {
		return `{"version":"1","job_id":"a","task":"extract","text":"x","schema":` + schema + `}`
	}
	tests := []struct {
		name, body, want string
	}{
		// Dead-lettered: no result can be written.
		{"not JSON", `hello`, `message is not a JSON job object: invalid character 'h' at byte 0, want a JSON value`},
		{"not an object", `[1]`, `message is not a JSON job object: got an array`},
		{"not UTF-8", "{\"version\":\"1\",\"text\":\"\xff\"}", `message is not a JSON job object: not valid UTF-8 (byte 23)`},
		{"version missing", `{"job_id":"a"}`, `unsupported job version: version is missing (want "1")`},
		{"version an array", `{"version":["1"],"job_id":"a"}`, `unsupported job version: "version" must be a string, got an array`},
		{"version 2", `{"version":"2","job_id":"a"}`, `unsupported job version "2" (this worker reads "1")`},
		{"version twice", `{"version":"1","version":"1","job_id":"a"}`, `unsupported job version: "version" appears 2 times; a job has exactly one`},
		{"version lone surrogate", `{"version":"\ud800","job_id":"a"}`, `unsupported job version: "version" has an unpaired surrogate escape \ud800`},
		{"job_id missing", `{"version":"1"}`, `invalid job_id: missing; want 1 to 128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, without ".."`},
		{"job_id a number", `{"version":"1","job_id":7}`, `invalid job_id: "job_id" must be a string, got a number`},
		{"job_id climbs", `{"version":"1","job_id":"../x"}`, `invalid job_id: "../x"; want 1 to 128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, without ".."`},
		{"job_id twice", `{"version":"1","job_id":"a","job_id":"b"}`, `invalid job_id: "job_id" appears 2 times; a job has exactly one`},

		// A failed result under the job's ID.
		{"unknown field", jobWith(`"Text":"y"`), `invalid job: unknown field "Text"`},
		{"unknown field with a long s", `{"version":"1","job_id":"a","taſk":"summarize","text":"x"}`, `invalid job: "task" is required; unknown field "taſk"`},
		{"unknown fields are listed after known ones", jobWith(`"zz":1,"max_output_tokens":0`), `invalid job: "max_output_tokens" must be at least 1, got 0; unknown field "zz"`},
		{"duplicate key", jobWith(`"text":"y"`), `invalid job: duplicate key "text"`},
		{"duplicate metadata key", jobWith(`"metadata":{"tenant":"a","tenant":"b"}`), `invalid job: duplicate key "tenant" in "metadata"`},
		{"lone surrogate", `{"version":"1","job_id":"a","task":"summarize","text":"\udc00"}`, `invalid job: "text" has an unpaired surrogate escape \udc00`},
		{"task missing", `{"version":"1","job_id":"a","text":"x"}`, `invalid job: "task" is required`},
		{"task unknown", `{"version":"1","job_id":"a","task":"translate","text":"x"}`, `invalid job: "task" must be summarize, classify, extract or custom, got "translate"`},
		{"task of the wrong type", `{"version":"1","job_id":"a","task":["summarize"],"text":"x"}`, `invalid job: "task" must be a string, got an array`},
		{"no document", `{"version":"1","job_id":"a","task":"summarize"}`, `invalid job: text or document_uri: one is required`},
		{"two documents", jobWith(`"document_uri":"s3://docs/k"`), `invalid job: text and document_uri: set only one`},
		{"empty text", `{"version":"1","job_id":"a","task":"summarize","text":""}`, `invalid job: "text" must be at least 1 character long, got 0`},
		{"document_uri climbs", `{"version":"1","job_id":"a","task":"summarize","document_uri":"s3://docs/a/../b"}`,
			`invalid job: document_uri: key "a/../b" has a ".." segment; keys must not climb out of their folder`},
		{"document_uri encoded", `{"version":"1","job_id":"a","task":"summarize","document_uri":"s3://docs/%2E%2e/other/x"}`,
			`invalid job: document_uri: key "%2E%2e/other/x" has a ".." segment once percent-decoded; keys must not climb out of their folder`},
		{"document_uri not a string", `{"version":"1","job_id":"a","task":"summarize","document_uri":7}`, `invalid job: "document_uri" must be a string, got a number`},
		{"max_output_tokens 0", jobWith(`"max_output_tokens":0`), `invalid job: "max_output_tokens" must be at least 1, got 0`},
		{"max_output_tokens too large", jobWith(`"max_output_tokens":70000`), `invalid job: "max_output_tokens" must be at most 64000, got 70000`},
		{"max_output_tokens a fraction", jobWith(`"max_output_tokens":1.5`), `invalid job: "max_output_tokens" must be an integer, got a number`},
		{"max_output_tokens a string", jobWith(`"max_output_tokens":"100"`), `invalid job: "max_output_tokens" must be an integer, got a string`},
		{"max_output_tokens huge", jobWith(`"max_output_tokens":1e999999`),
			`invalid job: "max_output_tokens" holds the number 1e999999, out of range (at most 64 characters, exponent within ±400); "max_output_tokens" must be at most 64000, got ` +
				`1000000000000000000000000000000000000000...`},
		{"label of the wrong type", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","b","c",4]}`,
			`invalid job: "labels[3]" must be a string, got a number`},
		{"classify with one label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a"]}`, `invalid job: labels: classify needs at least 2 labels`},
		{"classify without anything", `{"version":"1","job_id":"a","task":"classify"}`,
			`invalid job: text or document_uri: one is required; labels: classify needs at least 2 labels`},
		{"blank label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","\u3000 "]}`, `invalid job: "labels[1]" must not be blank`},
		{"control character in a label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","b\u001b[31m"]}`,
			`invalid job: "labels[1]" must not contain control characters`},
		{"repeated label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","b","a"]}`, `invalid job: "labels[2]" repeats "labels[0]"`},
		{"long label", `{"version":"1","job_id":"a","task":"classify","text":"x","labels":["a","` + strings.Repeat("b", 201) + `"]}`,
			`invalid job: "labels[1]" must be at most 200 characters long, got 201`},
		{"too many labels", jobWith(`"labels":[` + strings.TrimSuffix(strings.Repeat(`"l",`, 51), ",") + `]`),
			`invalid job: "labels" must have at most 50 items, got 51; "labels[1]" repeats "labels[0]"`},
		{"blank field", `{"version":"1","job_id":"a","task":"extract","text":"x","fields":[""]}`, `invalid job: "fields[0]" must not be blank`},
		{"extract without fields", `{"version":"1","job_id":"a","task":"extract","text":"x","fields":[]}`, `invalid job: fields or schema: extract needs one`},
		{"custom with blank instructions", `{"version":"1","job_id":"a","task":"custom","text":"x","instructions":" \n\t"}`, `invalid job: instructions: required for task custom`},
		{"control character in instructions", jobWith(`"instructions":"a\u0007b\r\n\tc"`), `invalid job: "instructions" must not contain control characters other than tab, line feed and carriage return`},
		{"instructions over 16 KiB in bytes", jobWith(`"instructions":"` + strings.Repeat("é", 8193) + `"`), `invalid job: "instructions" is 16386 bytes, more than 16384`},
		{"instructions over 16 KiB in characters", jobWith(`"instructions":"` + strings.Repeat("a", 16385) + `"`), `invalid job: "instructions" must be at most 16384 characters long, got 16385`},
		{"tier name with a space", jobWith(`"tier_hint":"big model"`), `invalid job: "tier_hint" must be 1 to 64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, got "big model"`},
		{"empty tier_override", jobWith(`"tier_override":""`), `invalid job: "tier_override" must be 1 to 64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, got ""`},
		{"metadata value not a string", jobWith(`"metadata":{"n":1}`), `invalid job: "metadata.n" must be a string, got a number`},
		{"metadata key empty", jobWith(`"metadata":{"":"v"}`), `invalid job: key "" in "metadata" must be at least 1 character long, got 0`},
		{"metadata key with a newline", jobWith(`"metadata":{"a\nb":"v"}`), `invalid job: key "a\nb" in "metadata" must not contain control characters`},
		{"metadata key over 128 bytes", jobWith(`"metadata":{"` + strings.Repeat("é", 65) + `":"v"}`),
			`invalid job: metadata key "éééééééééééééééééééé..." is 130 bytes, more than 128`},
		{"metadata value over 1024 bytes", jobWith(`"metadata":{"note":"` + strings.Repeat("é", 513) + `"}`), `invalid job: "metadata.note" is 1026 bytes, more than 1024`},
		{"metadata key that is not a plain name", jobWith(`"metadata":{"a b":2}`), `invalid job: "metadata["a b"]" must be a string, got a number`},
		{"schema not an object", schemaJob(`[1]`), `invalid job: "schema" must be an object, got an array`},
		{"schema null", schemaJob(`null`), `invalid job: "schema" must be an object, got null`},
		{"schema not a JSON Schema", schemaJob(`{"type":12,"properties":"x"}`),
			`invalid job: "schema.properties" must be an object, got a string; "schema.type" must be array, boolean, integer, null, number, object or string, got 12`},
		{"schema of another draft", schemaJob(`{"$schema":"http://json-schema.org/draft-07/schema#"}`),
			`invalid job: "schema.$schema" must be "https://json-schema.org/draft/2020-12/schema"`},
		{"schema with a remote $ref", schemaJob(`{"$ref":"https://example.com/s.json"}`),
			`invalid job: "schema" refers to "https://example.com/s.json", outside itself; $ref and $schema may only point inside the schema (such as "#/$defs/name") or name draft 2020-12`},
		{"schema with a file $ref", schemaJob(`{"properties":{"a":{"$ref":"file:///etc/passwd"}}}`),
			`invalid job: "schema" refers to "file:///etc/passwd", outside itself; $ref and $schema may only point inside the schema (such as "#/$defs/name") or name draft 2020-12`},
		{"schema with a relative $ref", schemaJob(`{"$ref":"other.json"}`),
			`invalid job: "schema" refers to "https://tierq.invalid/job/other.json", outside itself; $ref and $schema may only point inside the schema (such as "#/$defs/name") or name draft 2020-12`},
		{"schema that is a $ref loop", schemaJob(`{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`),
			`invalid job: "schema.$defs.a" refers to itself in a loop ($ref), so it can check no answer`},
		{"schema with a $ref to nothing", schemaJob(`{"$ref":"#/$defs/missing"}`), `invalid job: "schema" has a $ref that points to nothing inside it`},
		{"schema with a bad regex", schemaJob(`{"properties":{"a":{"pattern":"(?<x>a)\\1"}}}`),
			`invalid job: "schema.properties.a.pattern" is not a regular expression this worker can run: "(?<x>a)\\1"`},
		{"schema nested too deep", schemaJob(strings.Repeat(`{"not":`, 33) + `{}` + strings.Repeat(`}`, 33)), `invalid job: "schema" is nested 34 levels deep, more than 32`},
		{"schema too large", schemaJob(`{"description":"` + strings.Repeat("d", MaxSchemaBytes) + `"}`), `invalid job: "schema" is 32786 bytes compacted, more than 32768`},
		{"everything together too large", bigJob(), // 16000 + 100 × 200 + 30018
			`invalid job: instructions, labels, fields and schema are 66018 bytes together, more than 65536; they go with every model call`},
		{"many problems are cut at ten", `{"version":"1","job_id":"a","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11}`,
			`invalid job: "task" is required; text or document_uri: one is required; unknown field "a"; unknown field "b"; unknown field "c"; unknown field "d"; ` +
				`unknown field "e"; unknown field "f"; unknown field "g"; unknown field "h"; and 3 more`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseJob([]byte(tt.body))
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseJob:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// bigJob is an extract job whose instructions, fields and schema are each
// within their own limits but together over MaxPromptExtrasBytes.
func bigJob() string {
	fields := make([]string, MaxFields)
	for i := range fields {
		fields[i] = fmt.Sprintf("%s%03d", strings.Repeat("f", 197), i)
	}
	f, _ := json.Marshal(fields)
	return `{"version":"1","job_id":"a","task":"extract","text":"x","instructions":"` + strings.Repeat("i", 16000) +
		`","fields":` + string(f) + `,"schema":{"description":"` + strings.Repeat("d", 30000) + `"}}`
}

// ParseJob reads exactly what the message says: no case folding, present
// zero apart from absent, the extract schema byte for byte.
func TestParseJobDecodesExactly(t *testing.T) {
	t.Parallel()
	body := `{"version":"1","job_id":"j-1","task":"extract","text":"caf\u00e9 \ud83d\ude00","max_output_tokens":1e3,` +
		`"fields":["a"],"schema":{ "type" : "object",  "required":["b","a"] },"metadata":{"tenant":"acme"},"tier_hint":"standard"}`
	j, err := ParseJob([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if j.Text != "café 😀" || j.MaxOutputTokens != 1000 || j.Tenant() != "acme" || j.TierHint != "standard" || !slices.Equal(j.Fields, []string{"a"}) {
		t.Errorf("job = %+v", j)
	}
	if want := `{ "type" : "object",  "required":["b","a"] }`; string(j.Schema) != want {
		t.Errorf("schema = %s, want it as written: %s", j.Schema, want)
	}

	// An invalid job keeps what it can for its failed result, but not
	// metadata that is itself invalid.
	j, err = ParseJob([]byte(`{"version":"1","job_id":"j-2","task":"classify","labels":["a"],"metadata":{"tenant":"acme"}}`))
	if !errors.Is(err, ErrInvalidJob) || j.Task != "classify" || j.Tenant() != "acme" {
		t.Errorf("ParseJob = %+v, %v; want an invalid classify job with tenant acme", j, err)
	}
	j, err = ParseJob([]byte(jobWith(`"metadata":{"tenant":"acme","n":1}`)))
	if !errors.Is(err, ErrInvalidJob) || j.Metadata != nil {
		t.Errorf("ParseJob = %+v, %v; want an invalid job without its invalid metadata", j, err)
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
		is     error
	}{
		{"valid", func(*Job) {}, "", nil},
		{"task missing", func(j *Job) { j.Task = "" }, `invalid job: "task" must be summarize, classify, extract or custom, got ""`, ErrInvalidJob},
		{"no document", func(j *Job) { j.Text = "" }, "invalid job: text or document_uri: one is required", ErrInvalidJob},
		{"both documents", func(j *Job) { j.DocumentURI = "s3://docs/k" }, "invalid job: text and document_uri: set only one", ErrInvalidJob},
		{"bad uri scheme", func(j *Job) { j.Text, j.DocumentURI = "", "https://b/k" }, `invalid job: document_uri: "https://b/k" is not an s3:// URI; want s3://bucket/key`, ErrInvalidJob},
		{"uri without key", func(j *Job) { j.Text, j.DocumentURI = "", "s3://bucket/" }, `invalid job: document_uri: "s3://bucket/" has no key; want s3://bucket/key`, ErrInvalidJob},
		{"uri by reference", func(j *Job) { j.Text, j.DocumentURI = "", "s3://bucket/key.txt" }, "", nil},
		{"text not UTF-8", func(j *Job) { j.Text = "a\xffb" }, `invalid job: "text" is not valid UTF-8`, ErrInvalidJob},
		{"label not UTF-8", func(j *Job) { j.Labels = []string{"a", "\xff"} }, `invalid job: "labels[1]" is not valid UTF-8`, ErrInvalidJob},
		{"custom without instructions", func(j *Job) { j.Task = "custom"; j.Instructions = "  " }, "invalid job: instructions: required for task custom", ErrInvalidJob},
		{"custom with instructions", func(j *Job) { j.Task = "custom"; j.Instructions = "List risks." }, "", nil},
		{"instructions too long", func(j *Job) { j.Instructions = strings.Repeat("a", MaxInstructionsBytes+1) },
			`invalid job: "instructions" must be at most 16384 characters long, got 16385`, ErrInvalidJob},
		{"classify with one label", func(j *Job) { j.Task = "classify"; j.Labels = []string{"a"} }, "invalid job: labels: classify needs at least 2 labels", ErrInvalidJob},
		{"classify with two labels", func(j *Job) { j.Task = "classify"; j.Labels = []string{"a", "b"} }, "", nil},
		{"too many labels", func(j *Job) { j.Labels = many(MaxLabels+1, "l") }, `invalid job: "labels" must have at most 50 items, got 51`, ErrInvalidJob},
		{"empty label", func(j *Job) { j.Task = "classify"; j.Labels = []string{"a", " "} }, `invalid job: "labels[1]" must not be blank`, ErrInvalidJob},
		{"extract without fields or schema", func(j *Job) { j.Task = "extract" }, "invalid job: fields or schema: extract needs one", ErrInvalidJob},
		{"extract with fields", func(j *Job) { j.Task = "extract"; j.Fields = []string{"a"} }, "", nil},
		{"extract with schema", func(j *Job) { j.Task = "extract"; j.Schema = json.RawMessage(`{"type":"object"}`) }, "", nil},
		{"too many fields", func(j *Job) { j.Fields = many(MaxFields+1, "f") }, `invalid job: "fields" must have at most 100 items, got 101`, ErrInvalidJob},
		{"schema is an array", func(j *Job) { j.Schema = json.RawMessage(`[1]`) }, `invalid job: "schema" must be an object, got an array`, ErrInvalidJob},
		{"schema is null", func(j *Job) { j.Task = "extract"; j.Schema = json.RawMessage(`null`) }, `invalid job: "schema" must be an object, got null`, ErrInvalidJob},
		{"schema is not JSON", func(j *Job) { j.Schema = json.RawMessage(`{`) }, `invalid job: "schema" is not JSON`, ErrInvalidJob},
		{"negative max_output_tokens", func(j *Job) { j.MaxOutputTokens = -1 }, `invalid job: "max_output_tokens" must be at least 1, got -1`, ErrInvalidJob},
		{"max_output_tokens too large", func(j *Job) { j.MaxOutputTokens = MaxOutputTokensLimit + 1 }, `invalid job: "max_output_tokens" must be at most 64000, got 64001`, ErrInvalidJob},
		{"too many metadata keys", func(j *Job) { j.Metadata = manyMeta }, `invalid job: "metadata" must have at most 32 keys, got 33`, ErrInvalidJob},
		{"empty metadata key", func(j *Job) { j.Metadata = map[string]string{"": "v"} }, `invalid job: key "" in "metadata" must be at least 1 character long, got 0`, ErrInvalidJob},
		{"metadata key too long", func(j *Job) { j.Metadata = map[string]string{strings.Repeat("k", 129): "v"} },
			`invalid job: key "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk..." in "metadata" must be at most 128 characters long, got 129`, ErrInvalidJob},
		{"metadata value too long", func(j *Job) { j.Metadata = map[string]string{"k": strings.Repeat("v", MaxMetadataValueLen+1)} },
			`invalid job: "metadata.k" must be at most 1024 characters long, got 1025`, ErrInvalidJob},
		{"bad job ID", func(j *Job) { j.JobID = "a/b" }, `invalid job_id: "a/b"; want 1 to 128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, without ".."`, ErrBadJobID},
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
			if !errors.Is(err, tt.is) || err.Error() != tt.want {
				t.Errorf("Validate:\n got %v\nwant %s (%v)", err, tt.want, tt.is)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := Job{Version: "1", JobID: "a", Task: "classify", MaxOutputTokens: -5}.Validate()
	want := `invalid job: text or document_uri: one is required; "max_output_tokens" must be at least 1, got -5; labels: classify needs at least 2 labels`
	if !errors.Is(err, ErrInvalidJob) || err.Error() != want {
		t.Errorf("Validate:\n got %v\nwant %s", err, want)
	}
}

// schemaDoc is JobSchema decoded, for tests that read it.
func schemaDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(JobSchema, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// at reads a value from a decoded JSON document by path.
func at(v any, path ...string) any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

// The limits in Go and in the published schema are one set.
func TestJobLimitsMatchSchema(t *testing.T) {
	t.Parallel()
	doc := schemaDoc(t)
	p := func(path ...string) any { return at(doc, append([]string{"properties"}, path...)...) }
	num := func(v any) int { f, _ := v.(float64); return int(f) }
	checks := []struct {
		name      string
		got, want int
	}{
		{"instructions maxLength", num(p("instructions", "maxLength")), MaxInstructionsBytes},
		{"labels maxItems", num(p("labels", "maxItems")), MaxLabels},
		{"fields maxItems", num(p("fields", "maxItems")), MaxFields},
		{"name maxLength", num(at(doc, "$defs", "name", "maxLength")), MaxNameLen},
		{"max_output_tokens maximum", num(p("max_output_tokens", "maximum")), MaxOutputTokensLimit},
		{"metadata maxProperties", num(p("metadata", "maxProperties")), MaxMetadataKeys},
		{"metadata key maxLength", num(p("metadata", "propertyNames", "maxLength")), MaxMetadataKeyBytes},
		{"metadata value maxLength", num(p("metadata", "additionalProperties", "maxLength")), MaxMetadataValueLen},
		{"document_uri maxLength", num(p("document_uri", "maxLength")), len("s3://") + 63 + len("/") + MaxS3KeyBytes},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d in the schema, %d in Go", c.name, c.got, c.want)
		}
	}
	if got := p("job_id", "pattern"); got != jobIDRe.String() {
		t.Errorf("job_id pattern = %v in the schema, %s in Go", got, jobIDRe)
	}
	for _, f := range []string{"tier_override", "tier_hint"} {
		if got, want := p(f, "pattern"), fmt.Sprintf("^[A-Za-z0-9][A-Za-z0-9._-]{0,%d}$", MaxTierNameLen-1); got != want {
			t.Errorf("%s pattern = %v, want %s", f, got, want)
		}
	}
	desc, _ := doc["description"].(string)
	for _, n := range []int{MaxInstructionsBytes, MaxMetadataKeyBytes, MaxMetadataValueLen, MaxS3KeyBytes, MaxSchemaBytes, MaxSchemaDepth, MaxPromptExtrasBytes, maxNumberExponent} {
		if !strings.Contains(desc, fmt.Sprint(n)) {
			t.Errorf("the schema's description does not state the limit %d", n)
		}
	}
}

// Every pattern the job schema can fail on has a message in patternRules.
func TestPatternRulesCoverSchema(t *testing.T) {
	t.Parallel()
	var walk func(v any, underNot bool)
	walk = func(v any, underNot bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if p, ok := c.(string); ok && k == "pattern" && !underNot {
					if _, ok := patternRules[p]; !ok {
						t.Errorf("pattern %q has no entry in patternRules", p)
					}
				}
				walk(c, underNot || k == "not")
			}
		case []any:
			for _, c := range v {
				walk(c, underNot)
			}
		}
	}
	walk(schemaDoc(t), false)
}

func TestOutputSchema(t *testing.T) {
	t.Parallel()
	if s, err := (Job{}).OutputSchema(); s != nil || err != nil {
		t.Errorf("OutputSchema without a schema = %v, %v; want nil, nil", s, err)
	}
	j := Job{Schema: json.RawMessage(`{"$defs":{"money":{"type":"string","pattern":"^\\$"}},"type":"object",` +
		`"properties":{"total":{"$ref":"#/$defs/money"}},"required":["total"]}`)}
	s, err := j.OutputSchema()
	if err != nil || s == nil {
		t.Fatalf("OutputSchema = %v, %v", s, err)
	}
	if err := ValidateAgainst(s, json.RawMessage(`{"total":"$5"}`)); err != nil {
		t.Errorf("a matching answer: %v", err)
	}
	_, err = Job{Schema: json.RawMessage(`{"$ref":"https://example.com/s.json"}`)}.OutputSchema()
	if !errors.Is(err, ErrInvalidJob) {
		t.Errorf("a remote $ref: %v, want ErrInvalidJob", err)
	}
}

func TestValidateAgainst(t *testing.T) {
	t.Parallel()
	s, err := Job{Schema: json.RawMessage(`{"type":"object","additionalProperties":false,"required":["customer","total"],` +
		`"properties":{"customer":{"type":"string"},"total":{"type":"string"},"lines":{"type":"array","items":{"type":"integer","minimum":1}}}}`)}.OutputSchema()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		answer string
		want   string // "" for a match
	}{
		{"matches", `{"customer":"Northwind","total":"$1,250.00"}`, ""},
		{"wrong type and missing", `{"total":5}`, `the answer does not match the job's schema: "customer" is required; "total" must be a string, got a number`},
		{"not an object", `[1]`, `the answer does not match the job's schema: the answer must be an object, got an array`},
		{"not JSON", `Sure! Here is the JSON:`, `the answer does not match the job's schema: it is not JSON: invalid character 'S' at byte 0, want a JSON value`},
		{"repeated key", `{"customer":"a","customer":"b","total":"1"}`, `the answer does not match the job's schema: duplicate key "customer"`},
		{"deep problem", `{"customer":"a","total":"1","lines":[1,0]}`, `the answer does not match the job's schema: "lines[1]" must be at least 1, got 0`},
		{"unknown field", `{"customer":"a","total":"1","note":"x"}`, `the answer does not match the job's schema: unknown field "note"`},
		{"many problems", `{"lines":[0,0,0,0]}`,
			`the answer does not match the job's schema: "customer" is required; "total" is required; "lines[0]" must be at least 1, got 0; and 3 more`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateAgainst(s, json.RawMessage(tt.answer))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ValidateAgainst = %v, want a match", err)
			case tt.want != "" && (!errors.Is(err, ErrAnswerMismatch) || err.Error() != tt.want):
				t.Errorf("ValidateAgainst:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
	if err := ValidateAgainst(nil, json.RawMessage(`anything`)); err != nil {
		t.Errorf("a nil schema: %v", err)
	}
}

// worstCases are messages of the largest size SQS takes, each built to be
// slow to check: deep nesting, many numbers, strings or surrogates, one key
// repeated, and an extract schema as large as a message.
func worstCases() map[string][]byte {
	const size = 1 << 20
	list := func(item string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+",", size/(len(item)+1)), ",") + "]"
	}
	out := map[string][]byte{}
	for name, labels := range map[string]string{
		"deep nesting":  strings.Repeat("[", size/2) + strings.Repeat("]", size/2),
		"deep objects":  strings.Repeat(`{"a":`, size/5) + "1" + strings.Repeat("}", size/5),
		"numbers":       list("1e400"),
		"strings":       list(`"a"`),
		"duplicate key": "{" + strings.TrimSuffix(strings.Repeat(`"a":1,`, size/6), ",") + "}",
		"surrogates":    list(`"\ud800"`),
	} {
		out[name] = []byte(`{"version":"1","job_id":"a","task":"summarize","text":"x","labels":` + labels + `}`)
	}
	out["schema required list"] = []byte(`{"version":"1","job_id":"a","task":"extract","text":"x","schema":{"type":"object","required":` +
		list(`"a"`) + `}}`)
	return out
}

// Each worst case is refused as an invalid job, not a crash or a hang. How
// long each takes is measured by BenchmarkParseJobWorstCase (make bench),
// not here: a timed test fails on a busy machine.
func TestParseJobWorstCaseIsRefused(t *testing.T) {
	t.Parallel()
	for name, body := range worstCases() {
		if _, err := ParseJob(body); !errors.Is(err, ErrInvalidJob) {
			t.Errorf("%s: ParseJob = %v, want ErrInvalidJob", name, err)
		}
	}
}

// BenchmarkParseJobWorstCase: the scanner is linear in the message, paths
// are rendered only for problems, numbers are bounded before math/big sees
// them, and lists and schemas over their limits are cut before the schema
// validator runs; compare with BenchmarkParseJobTypical in the same run.
func BenchmarkParseJobWorstCase(b *testing.B) {
	for name, body := range worstCases() {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, _ = ParseJob(body)
			}
		})
	}
}

// BenchmarkParseJobTypical is a valid classify job of a few hundred bytes.
func BenchmarkParseJobTypical(b *testing.B) {
	body := []byte(`{"version":"1","job_id":"ticket-7","task":"classify","text":"Hello support, our invoice for October charged us twice.",` +
		`"labels":["billing","outage","feature request"],"metadata":{"tenant":"acme"}}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseJob(body); err != nil {
			b.Fatal(err)
		}
	}
}

// chainSchema is a $defs chain of n links, each referring to the next twice
// through anyOf: the validator's work doubles with every link.
func chainSchema(n int, keyword string) string {
	var b strings.Builder
	b.WriteString(`{"$ref":"#/$defs/d0","$defs":{`)
	for i := range n {
		fmt.Fprintf(&b, `"d%d":{"%s":[{"$ref":"#/$defs/d%d"},{"$ref":"#/$defs/d%d"}]},`, i, keyword, i+1, i+1)
	}
	fmt.Fprintf(&b, `"d%d":{"type":"string"}}}`, n)
	return b.String()
}

// TestSchemaGraph: what compiling an extract schema does not catch. Loops
// through in-place keywords at any depth and schemas whose checking work
// explodes are refused; recursion through properties or items (a tree) is
// a schema like any other; no subschema may name another draft.
func TestSchemaGraph(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, schema string
		want         string // "" when accepted
	}{
		{"a tree is recursive, not a loop", `{"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"name":{"type":"string"},` +
			`"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}}}`, ""},
		{"a short chain", chainSchema(8, "anyOf"), ""},
		{"an anyOf chain of 20 links", chainSchema(20, "anyOf"),
			`"schema.$defs.d11" applies more than 2000 subschemas to one value ($ref, allOf, anyOf, oneOf ...), which would make checking an answer too slow`},
		{"an allOf chain of 40 links", chainSchema(40, "allOf"),
			`"schema.$defs.d31" applies more than 2000 subschemas to one value ($ref, allOf, anyOf, oneOf ...), which would make checking an answer too slow`},
		{"a loop under a property", `{"type":"object","properties":{"a":{"$ref":"#/properties/a"}}}`,
			`"schema.properties.a" refers to itself in a loop ($ref), so it can check no answer`},
		{"a loop between two definitions, reached from a property", `{"properties":{"a":{"$ref":"#/$defs/x"}},"$defs":{"x":{"allOf":[{"$ref":"#/$defs/y"}]},"y":{"not":{"$ref":"#/$defs/x"}}}}`,
			`"schema.$defs.x" refers to itself in a loop ($ref), so it can check no answer`},
		{"a loop through an anchor", `{"properties":{"a":{"$anchor":"me","anyOf":[{"$ref":"#me"}]}}}`,
			`"schema.properties.a" refers to itself in a loop ($ref), so it can check no answer`},
		{"another draft inside", `{"$defs":{"a":{"$id":"https://x.example/a","$schema":"http://json-schema.org/draft-04/schema#"}}}`,
			`"schema.$defs.a.$schema" names "http://json-schema.org/draft-04/schema#"; an extract schema is draft 2020-12 throughout`},
		{"draft 2020-12 named inside", `{"$defs":{"a":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"string"}}}`, ""},
		{"a property called $ref is a name", `{"type":"object","properties":{"$ref":{"type":"string"},"$schema":{"type":"string"}}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc, err := decodeValue([]byte(tt.schema))
			if err != nil {
				t.Fatal(err)
			}
			if got := checkSchemaGraph(doc); got != tt.want {
				t.Errorf("checkSchemaGraph:\n got %s\nwant %s", got, tt.want)
			}
			_, err = ParseJob([]byte(`{"version":"1","job_id":"j","task":"extract","text":"x","schema":` + tt.schema + `}`))
			if (err == nil) != (tt.want == "") {
				t.Errorf("ParseJob = %v; want accepted %v", err, tt.want == "")
			}
		})
	}
}
