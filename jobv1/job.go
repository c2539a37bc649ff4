package jobv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// JobVersion is the job message version this package reads.
const JobVersion = "1"

// Limits on a job message's fields. JobSchema states each of them (a test
// keeps the two in step); the byte limits, which a schema's maxLength
// (counting characters) cannot express, are enforced by ParseJob after the
// schema and listed in the schema's description.
//
//   - job_id: 1 to 128 of A-Z a-z 0-9 . _ -, starting with a letter or digit,
//     without "..": it becomes part of an S3 key, so it needs no escaping and
//     cannot even look like climbing folders.
//   - instructions: at most 16 KiB (bytes); tab, line feed and carriage
//     return are the only control characters (instructions are prose, often
//     several paragraphs).
//   - labels: at most 50, fields: at most 100; each 1 to 200 characters,
//     not blank, no control characters, no repeats. A label or a field is a
//     name the model must repeat exactly; 200 characters is a long sentence,
//     and a repeated one is a mistake that would make an ambiguous answer.
//   - tier_override, tier_hint: 1 to 64 of A-Z a-z 0-9 . _ -, starting with a
//     letter or digit (tiering accepts any tier name; these are names that
//     need no quoting in logs and metric dimensions).
//   - max_output_tokens: an integer from 1 to 64000; 1.0 and 1e3 count as
//     integers, as JSON Schema counts them.
//   - schema: a JSON Schema (draft 2020-12) object of at most 32 KiB once
//     compacted, nested at most 32 levels deep, with $ref only to places
//     inside it.
//   - metadata: at most 32 keys of 1 to 128 bytes without control
//     characters; values are strings of at most 1024 bytes.
//   - instructions, labels, fields and schema together: at most 64 KiB.
//     They are sent with every model call, escalations included, on top of
//     the document; 64 KiB (about 16k tokens) leaves every default tier's
//     context window to the document.
const (
	MaxJobIDLen          = 128
	MaxInstructionsBytes = 16 << 10
	MaxLabels            = 50
	MaxFields            = 100
	MaxNameLen           = 200 // characters of one label or field
	MaxTierNameLen       = 64
	MaxMetadataKeys      = 32
	MaxMetadataKeyBytes  = 128
	MaxMetadataValueLen  = 1024
	MaxOutputTokensLimit = 64_000
	MaxSchemaBytes       = 32 << 10
	MaxSchemaDepth       = 32
	MaxPromptExtrasBytes = 64 << 10
)

var jobIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Job is job message v1: one document job, the body of one SQS message.
// The JSON Schema is jobv1/schema/job.v1.schema.json.
type Job struct {
	Version string `json:"version"`
	// JobID is the idempotency key: one result object per job ID, ever.
	JobID string `json:"job_id"`
	// Task is summarize, classify, extract or custom.
	Task string `json:"task"`
	// Instructions are required for custom and optional otherwise.
	Instructions string `json:"instructions,omitempty"`
	// Text is the document inline; DocumentURI (s3://bucket/key) references a
	// document too large for a message. Exactly one is set.
	Text        string `json:"text,omitempty"`
	DocumentURI string `json:"document_uri,omitempty"`
	// TierOverride forces a tier; TierHint prefers one when the document fits.
	TierOverride string `json:"tier_override,omitempty"`
	TierHint     string `json:"tier_hint,omitempty"`
	// MaxOutputTokens caps the answer below the tier's limit.
	MaxOutputTokens int `json:"max_output_tokens,omitempty"`
	// Labels are the classes for classify (required there).
	Labels []string `json:"labels,omitempty"`
	// Fields or Schema name what extract returns (one of them required there).
	Fields []string        `json:"fields,omitempty"`
	Schema json.RawMessage `json:"schema,omitempty"`
	// Metadata is echoed into the result; "tenant" is used for cost reports.
	Metadata map[string]string `json:"metadata,omitempty"`

	// compiled is Schema as ParseJob compiled it to check it, kept for
	// OutputSchema so that a job's schema compiles once.
	compiled *jsonschema.Schema
}

// Tenant is the job's metadata tenant, or "".
func (j Job) Tenant() string { return j.Metadata["tenant"] }

// Errors a job message can fail with. A message whose job ID is unusable
// cannot get a result object, so the worker dead-letters it (ErrMalformed,
// ErrUnsupportedVersion, ErrBadJobID); any other invalid field is reported in
// a failed result under the job's ID (ErrInvalidJob).
var (
	ErrMalformed          = errors.New("message is not a JSON job object")
	ErrUnsupportedVersion = errors.New("unsupported job version")
	ErrBadJobID           = errors.New("invalid job_id")
	ErrInvalidJob         = errors.New("invalid job")
)

// ParseJob decodes and validates a job message. JobSchema decides what is
// valid; ParseJob adds what a schema cannot see (repeated keys, lone
// surrogate escapes, byte limits, document_uri's exact rules, an extract
// schema that must compile) and never folds case: "Text" is an unknown
// field, not text.
//
// A message that is not UTF-8 JSON, not an object, or lacks exactly one
// valid version and job_id cannot get a result: ErrMalformed,
// ErrUnsupportedVersion or ErrBadJobID, with the zero Job. Every other
// problem is ErrInvalidJob, and the returned Job carries the decoded fields
// (its JobID is valid; metadata only if valid), so the caller can write a
// failed result. The message lists every problem, in the job's terms, most
// important field first, joined by "; ".
func ParseJob(body []byte) (Job, error) {
	if i := invalidUTF8At(body); i >= 0 {
		return Job{}, fmt.Errorf("%w: not valid UTF-8 (byte %d)", ErrMalformed, i)
	}
	sc, err := scanJSON(body)
	if err != nil {
		return Job{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if sc.kind != "object" {
		return Job{}, fmt.Errorf("%w: got %s", ErrMalformed, article(sc.kind))
	}
	version, found, err := headerString(sc, "version", ErrUnsupportedVersion)
	switch {
	case err != nil:
		return Job{}, err
	case !found:
		return Job{}, fmt.Errorf("%w: version is missing (want %q)", ErrUnsupportedVersion, JobVersion)
	case version != JobVersion:
		return Job{}, fmt.Errorf("%w %s (this worker reads %q)", ErrUnsupportedVersion, quoteTrunc(version), JobVersion)
	}
	jobID, found, err := headerString(sc, "job_id", ErrBadJobID)
	if err != nil {
		return Job{}, err
	}
	if !found {
		return Job{}, jobIDError("missing")
	}
	if err := ValidateJobID(jobID); err != nil {
		return Job{}, err
	}
	return checkJob(sc, jobID)
}

// ValidateJobID checks a job ID by the rules ParseJob applies: 1 to 128 of
// A-Z a-z 0-9 . _ -, starting with a letter or digit, without "..". The
// error wraps ErrBadJobID. Operator tools check an ID with it before
// naming an object after it.
func ValidateJobID(id string) error {
	if !jobIDRe.MatchString(id) || strings.Contains(id, "..") {
		return jobIDError(quoteTrunc(id))
	}
	return nil
}

func jobIDError(got string) error {
	return fmt.Errorf(`%w: %s; want 1 to %d characters of A-Z a-z 0-9 . _ - starting with a letter or digit, without ".."`,
		ErrBadJobID, got, MaxJobIDLen)
}

// headerString reads version or job_id, which must each be present once,
// as a string, before a message can be answered at all.
func headerString(sc *scanResult, key string, sentinel error) (s string, found bool, err error) {
	var raws [][]byte
	for _, m := range sc.members {
		if m.key == key {
			raws = append(raws, m.raw)
		}
	}
	switch len(raws) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, fmt.Errorf("%w: %q appears %d times; a job has exactly one", sentinel, key, len(raws))
	}
	// Judged by its first byte, so no value is decoded that is not a string.
	if k := kindOf(raws[0][0]); k != "string" {
		return "", true, fmt.Errorf("%w: %q must be a string, got %s", sentinel, key, article(k))
	}
	if err := json.Unmarshal(raws[0], &s); err != nil { // scanJSON accepted it: not expected
		return "", true, fmt.Errorf("%w: %q is not a JSON string", sentinel, key)
	}
	for _, is := range sc.issues {
		if is.field == key {
			return "", true, fmt.Errorf("%w: %s", sentinel, is.msg)
		}
	}
	return s, true, nil
}

// checkJob validates a message whose version and job_id are good: anything
// wrong now is the job's fault, answered with a failed result.
func checkJob(sc *scanResult, jobID string) (Job, error) {
	var ps problems
	for _, is := range sc.issues {
		ps.add(is.field, is.msg)
	}
	doc := make(map[string]any, len(sc.members))
	raw := make(map[string][]byte, len(sc.members))
	skip := map[string]bool{}
	for _, m := range sc.members {
		// Checked before the schema validator, which recurses into an
		// extract schema: no value in a job nests deeper than a schema may.
		if m.depth > MaxSchemaDepth {
			ps.add(m.key, fmt.Sprintf("%s is nested %d levels deep, more than %d", subject(joinKey("", m.key), ""), m.depth, MaxSchemaDepth))
			doc[m.key], skip[m.key] = nil, true
			continue
		}
		v, err := decodeValue(m.raw)
		if err != nil { // scanJSON accepted it, so this is not expected
			ps.add(m.key, fmt.Sprintf("%s cannot be decoded", subject(joinKey("", m.key), "")))
			doc[m.key], skip[m.key] = nil, true
			continue
		}
		doc[m.key], raw[m.key] = v, m.raw
	}
	boundBeforeSchema(doc, raw, skip, &ps)
	j := jobFrom(doc, raw)
	j.Version, j.JobID = JobVersion, jobID

	// ParseS3URI decides document_uri and says which rule a URI breaks; the
	// schema's pattern is the same rule as far as a regex can say it.
	if uri, ok := doc["document_uri"].(string); ok {
		if _, _, err := ParseS3URI(uri); err != nil {
			ps.add("document_uri", "document_uri: "+err.Error())
			skip["document_uri"] = true
		}
	}
	if err := jobSchema().Validate(doc); err != nil {
		var verr *jsonschema.ValidationError
		if !errors.As(err, &verr) {
			return j, fmt.Errorf("%w: %w", ErrInvalidJob, err)
		}
		d := describer{doc: doc, rule: jobRule, skip: skip}
		d.walk(verr, nil)
		for _, p := range d.problems() {
			ps.add(p.field, p.msg)
		}
	}
	checkBeyondSchema(&j, &ps)
	if err := ps.err(); err != nil {
		if ps.has("metadata") {
			j.Metadata = nil // a result echoes metadata; not invalid metadata
		}
		return j, err
	}
	return j, nil
}

// boundBeforeSchema applies the limits that keep the schema validator's
// work small, before it runs: a list over its item limit is cut to it (the
// validator checks items for repeats, which costs the square of their
// number), and an extract schema over its byte limit is not validated at all
// (it would be checked against the draft 2020-12 metaschema, item by item).
// Each is reported as the schema would; a message of SQS's 1 MiB then costs
// the validator no more than a message within the limits.
func boundBeforeSchema(doc map[string]any, raw map[string][]byte, skip map[string]bool, ps *problems) {
	for key, limit := range map[string]int{"labels": MaxLabels, "fields": MaxFields} {
		if arr, ok := doc[key].([]any); ok && len(arr) > limit {
			ps.add(key, fmt.Sprintf("%s must have at most %d items, got %d", subject(joinKey("", key), ""), limit, len(arr)))
			doc[key] = arr[:limit]
		}
	}
	if b, ok := raw["schema"]; ok && len(b) > MaxSchemaBytes {
		var compact bytes.Buffer
		if json.Compact(&compact, b) == nil && compact.Len() > MaxSchemaBytes {
			ps.add("schema", fmt.Sprintf(`"schema" is %d bytes compacted, more than %d`, compact.Len(), MaxSchemaBytes))
			doc["schema"], skip["schema"] = nil, true
		}
	}
}

// jobFrom builds a Job from a decoded message by exact key; a value of the
// wrong type is left zero (the schema reports it).
func jobFrom(doc map[string]any, raw map[string][]byte) Job {
	str := func(k string) string { s, _ := doc[k].(string); return s }
	strs := func(k string) []string {
		arr, _ := doc[k].([]any)
		var out []string
		for _, v := range arr {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	j := Job{
		Task:         str("task"),
		Instructions: str("instructions"),
		Text:         str("text"),
		DocumentURI:  str("document_uri"),
		TierOverride: str("tier_override"),
		TierHint:     str("tier_hint"),
		Labels:       strs("labels"),
		Fields:       strs("fields"),
	}
	// The schema has checked the range; 1e3 and 1.0 are integers to it,
	// and a float64 holds every integer up to 2^53 exactly.
	if n, ok := doc["max_output_tokens"].(json.Number); ok {
		if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32 {
			j.MaxOutputTokens = int(f)
		}
	}
	if m, ok := doc["metadata"].(map[string]any); ok {
		for k, v := range m {
			if s, ok := v.(string); ok {
				if j.Metadata == nil {
					j.Metadata = map[string]string{}
				}
				j.Metadata[k] = s
			}
		}
	}
	if r, ok := raw["schema"]; ok {
		j.Schema = json.RawMessage(slices.Clone(r)) // not an alias of the message body
	}
	return j
}

// jobRule gives one message for each rule of the job schema that spans
// fields (a task's requirements, text or document_uri), instead of the
// low-level errors the validator finds inside it.
func jobRule(e *jsonschema.ValidationError) (problem, bool) {
	frag, ok := strings.CutPrefix(e.SchemaURL, jobSchemaURL+"#")
	if !ok {
		return problem{}, false
	}
	if k, isOneOf := e.ErrorKind.(*kind.OneOf); isOneOf && frag == "" {
		if len(k.Subschemas) == 0 {
			return problem{"text", "text or document_uri: one is required"}, true
		}
		return problem{"text", "text and document_uri: set only one"}, true
	}
	// The schema's allOf, in order: custom, classify, extract.
	for i, p := range []problem{
		{"instructions", "instructions: required for task custom"},
		{"labels", "labels: classify needs at least 2 labels"},
		{"fields", "fields or schema: extract needs one"},
	} {
		if strings.HasPrefix(frag, fmt.Sprintf("/allOf/%d/", i)) {
			return p, true
		}
	}
	return problem{}, false
}

// checkBeyondSchema enforces the rules JobSchema can only describe: byte
// limits and an extract schema that compiles. A field the schema already
// refused is not judged again.
func checkBeyondSchema(j *Job, ps *problems) {
	if !ps.has("instructions") && len(j.Instructions) > MaxInstructionsBytes {
		ps.add("instructions", fmt.Sprintf(`"instructions" is %d bytes, more than %d`, len(j.Instructions), MaxInstructionsBytes))
	}
	if !ps.has("metadata") {
		keys := make([]string, 0, len(j.Metadata))
		for k := range j.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if len(k) > MaxMetadataKeyBytes {
				ps.add("metadata", fmt.Sprintf(`metadata key %s is %d bytes, more than %d`, quoteTrunc(k), len(k), MaxMetadataKeyBytes))
			}
			if v := j.Metadata[k]; len(v) > MaxMetadataValueLen {
				ps.add("metadata", fmt.Sprintf("%s is %d bytes, more than %d", subject(joinKey("metadata", k), ""), len(v), MaxMetadataValueLen))
			}
		}
	}
	schemaBytes := 0
	if len(j.Schema) > 0 && !ps.has("schema") {
		var compact bytes.Buffer
		if err := json.Compact(&compact, j.Schema); err == nil {
			schemaBytes = compact.Len()
		}
		if schemaBytes > MaxSchemaBytes {
			ps.add("schema", fmt.Sprintf(`"schema" is %d bytes compacted, more than %d`, schemaBytes, MaxSchemaBytes))
		} else if compiled, msg := compileOutputSchema(j.Schema); msg != "" {
			ps.add("schema", msg)
		} else {
			j.compiled = compiled
		}
	}
	for _, f := range []string{"instructions", "labels", "fields", "schema"} {
		if ps.has(f) {
			return // over its own limit: the total would say it again
		}
	}
	total := len(j.Instructions) + schemaBytes
	for _, s := range slices.Concat(j.Labels, j.Fields) {
		total += len(s)
	}
	if total > MaxPromptExtrasBytes {
		ps.add(totalField, fmt.Sprintf("instructions, labels, fields and schema are %d bytes together, more than %d; they go with every model call",
			total, MaxPromptExtrasBytes))
	}
}

// Validate checks a job built in Go (tierq submit builds them from files)
// by exactly ParseJob's rules: it encodes the job and parses it. A job
// without a usable version or job ID gets ParseJob's sentinel for that;
// every other problem is ErrInvalidJob. Strings are checked for valid UTF-8
// first, because encoding would silently replace bad bytes.
func (j Job) Validate() error {
	var ps problems
	utf8Field := func(field, path, s string) {
		if !utf8.ValidString(s) {
			ps.add(field, subject(path, "")+" is not valid UTF-8")
		}
	}
	for _, f := range []struct{ name, s string }{
		{"version", j.Version}, {"job_id", j.JobID}, {"task", j.Task}, {"instructions", j.Instructions},
		{"text", j.Text}, {"document_uri", j.DocumentURI}, {"tier_override", j.TierOverride}, {"tier_hint", j.TierHint},
	} {
		utf8Field(f.name, f.name, f.s)
	}
	for i, s := range j.Labels {
		utf8Field("labels", fmt.Sprintf("labels[%d]", i), s)
	}
	for i, s := range j.Fields {
		utf8Field("fields", fmt.Sprintf("fields[%d]", i), s)
	}
	for k, v := range j.Metadata {
		utf8Field("metadata", joinKey("metadata", k), k+v)
	}
	if err := ps.err(); err != nil {
		return err
	}
	body, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf(`%w: "schema" is not JSON`, ErrInvalidJob)
	}
	_, err = ParseJob(body)
	return err
}

// totalField files the combined-size problem after every field's own.
const totalField = "\x00total"

// fieldOrder is the order problems are listed in: the job's fields as the
// schema lists them, then unknown fields, then problems of the whole job.
var fieldOrder = []string{"version", "job_id", "task", "instructions", "text", "document_uri",
	"tier_override", "tier_hint", "max_output_tokens", "labels", "fields", "schema", "metadata"}

// maxJobProblems is how many problems one failed result lists.
const maxJobProblems = 10

// problem is one reason a job is invalid, filed under its top-level field.
type problem struct {
	field string
	msg   string
}

type problems struct {
	list    []problem
	byField map[string]int
}

// add files a problem. Past maxJobProblems for one field the rest are
// counted, not kept: a message of 100,000 wrong labels must not cost
// 100,000 sorted, compared messages.
func (ps *problems) add(field, msg string) {
	if ps.byField == nil {
		ps.byField = map[string]int{}
	}
	ps.byField[field]++
	if ps.byField[field] <= maxJobProblems {
		ps.list = append(ps.list, problem{field, msg})
	}
}

func (ps *problems) has(field string) bool {
	return slices.ContainsFunc(ps.list, func(p problem) bool { return p.field == field })
}

// err joins the problems in field order, each once, at most maxJobProblems.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	rank := func(field string) int {
		if i := slices.Index(fieldOrder, field); i >= 0 {
			return i
		}
		if field == totalField {
			return len(fieldOrder) + 2
		}
		if field == "" {
			return len(fieldOrder) + 1
		}
		return len(fieldOrder) // an unknown field
	}
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b problem) int { return rank(a.field) - rank(b.field) })
	var msgs []string
	seen := map[string]bool{}
	for _, p := range list {
		if !seen[p.msg] {
			seen[p.msg] = true
			msgs = append(msgs, p.msg)
		}
	}
	more := max(len(msgs)-maxJobProblems, 0)
	for _, n := range ps.byField {
		more += max(n-maxJobProblems, 0)
	}
	if more > 0 {
		msgs = append(msgs[:min(len(msgs), maxJobProblems)], fmt.Sprintf("and %d more", more))
	}
	return fmt.Errorf("%w: %s", ErrInvalidJob, strings.Join(msgs, "; "))
}
