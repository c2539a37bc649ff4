package app_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
)

// The adversarial corpus: raw message bodies, the S3 objects they refer to,
// and the outcome each must have. testdata/adversarial/README.md describes
// the format; this file loads and checks it, adversarial_test.go runs it.

const advDir = "../../testdata/adversarial"

// advExpect is one case's entry in expected.yaml.
type advExpect struct {
	Why string `yaml:"why"`
	// Outcome is dlq (dead-lettered, no result) or result.
	Outcome string `yaml:"outcome"`
	// Status, Code and GuardrailAction are the result's status, error.code
	// and guardrail.action.
	Status          string `yaml:"status"`
	Code            string `yaml:"code"`
	GuardrailAction string `yaml:"guardrail_action"`
	// ReasonContains are substrings of the dead-letter reason; MessageContains
	// of the failed result's error.message (both case-insensitive).
	ReasonContains  []string `yaml:"reason_contains"`
	MessageContains []string `yaml:"message_contains"`
	// OutputContains must all be in output.text, OutputContainsAny at least
	// one, OutputNotContains none.
	OutputContains    []string `yaml:"output_contains"`
	OutputContainsAny []string `yaml:"output_contains_any"`
	OutputNotContains []string `yaml:"output_not_contains"`
	// JobID is the job_id the result is written under; default the case name.
	JobID string `yaml:"job_id"`
	// Copies is how many times the body is sent in the batch; default 1.
	Copies int `yaml:"copies"`
	// Transport is sqs (default), direct (the raw bytes straight into the
	// worker's pipeline: SQS cannot carry them) or both.
	Transport string `yaml:"transport"`
}

// Transports.
const (
	viaSQS    = "sqs"
	viaDirect = "direct"
	viaBoth   = "both"
)

type advCase struct {
	Name string
	File string
	// Raw is the file's bytes, placeholders unexpanded.
	Raw []byte
	advExpect
}

// jobID is where the case's result is, or would wrongly be, written.
func (c advCase) jobID() string {
	if c.JobID != "" {
		return c.JobID
	}
	return c.Name
}

func (c advCase) overSQS() bool    { return c.Transport == viaSQS || c.Transport == viaBoth }
func (c advCase) directly() bool   { return c.Transport == viaDirect || c.Transport == viaBoth }
func (c advCase) good() bool       { return strings.Contains(c.Name, "-good-") }
func (c advCase) wantResult() bool { return c.Outcome == "result" }

// advObject is one S3 object of objects.yaml.
type advObject struct {
	Bucket string  `yaml:"bucket"`
	Key    string  `yaml:"key"`
	Text   *string `yaml:"text"`
	Base64 string  `yaml:"base64"`
	Repeat *struct {
		Count int    `yaml:"count"`
		Text  string `yaml:"text"`
	} `yaml:"repeat"`
}

func (o advObject) body() ([]byte, error) {
	switch {
	case o.Text != nil && o.Base64 == "" && o.Repeat == nil:
		return []byte(*o.Text), nil
	case o.Text == nil && o.Base64 != "" && o.Repeat == nil:
		return base64.StdEncoding.DecodeString(o.Base64)
	case o.Text == nil && o.Base64 == "" && o.Repeat != nil && o.Repeat.Count > 0:
		return bytes.Repeat([]byte(o.Repeat.Text), o.Repeat.Count), nil
	}
	return nil, errors.New("give exactly one of text, base64 or repeat (count > 0)")
}

type advCorpus struct {
	Cases          []advCase
	Objects        []advObject
	NeverLogged    []string
	NeverInResults []string
}

// Bucket placeholders, replaced by the test's own bucket names.
var advBuckets = []string{"ALLOWED", "OTHER", "RESULTS"}

// repeatRe is {{REPEAT n|text}}: text (raw bytes, up to the first "}}")
// n times. It keeps long bodies readable in the files.
var repeatRe = regexp.MustCompile(`\{\{REPEAT (\d+)\|(.*?)\}\}`)

// expand replaces the placeholders of a body or URI.
func expand(raw []byte, buckets map[string]string) []byte {
	out := repeatRe.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := repeatRe.FindSubmatch(m)
		n, _ := strconv.Atoi(string(sub[1]))
		return bytes.Repeat(sub[2], n)
	})
	for _, b := range advBuckets {
		out = bytes.ReplaceAll(out, []byte("{{"+b+"}}"), []byte(buckets[b]))
	}
	return out
}

func loadAdversarial(t *testing.T) *advCorpus {
	t.Helper()
	var exp struct {
		NeverLogged    []string             `yaml:"never_logged"`
		NeverInResults []string             `yaml:"never_in_results"`
		Cases          map[string]advExpect `yaml:"cases"`
	}
	decodeYAML(t, filepath.Join(advDir, "expected.yaml"), &exp)
	var objs struct {
		Objects []advObject `yaml:"objects"`
	}
	decodeYAML(t, filepath.Join(advDir, "objects.yaml"), &objs)

	files, err := os.ReadDir(filepath.Join(advDir, "cases"))
	if err != nil {
		t.Fatal(err)
	}
	c := &advCorpus{Objects: objs.Objects, NeverLogged: exp.NeverLogged, NeverInResults: exp.NeverInResults}
	seen := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(f.Name(), filepath.Ext(f.Name()))
		raw, err := os.ReadFile(filepath.Join(advDir, "cases", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		e, ok := exp.Cases[name]
		if !ok {
			t.Errorf("cases/%s has no entry in expected.yaml", f.Name())
			continue
		}
		if seen[name] {
			t.Errorf("two case files are named %s", name)
		}
		seen[name] = true
		if e.Copies == 0 {
			e.Copies = 1
		}
		if e.Transport == "" {
			e.Transport = viaSQS
		}
		c.Cases = append(c.Cases, advCase{Name: name, File: f.Name(), Raw: raw, advExpect: e})
	}
	for name := range exp.Cases {
		if !seen[name] {
			t.Errorf("expected.yaml: %s has no file in cases/", name)
		}
	}
	slices.SortFunc(c.Cases, func(a, b advCase) int { return strings.Compare(a.Name, b.Name) })
	return c
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt expectation must not be silently ignored
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestAdversarialCorpusIsWellFormed checks the corpus itself, without
// emulators: every expectation is complete and consistent, good jobs are
// valid by the job schema, and the corpus is as large as promised.
func TestAdversarialCorpusIsWellFormed(t *testing.T) {
	t.Parallel()
	c := loadAdversarial(t)
	jobSchema := testenv.CompileSchema(t, "job.v1.schema.json", jobv1.JobSchema)
	buckets := map[string]string{"ALLOWED": "tierq-allowed", "OTHER": "tierq-other", "RESULTS": "tierq-results"}
	bodies := map[string]string{}
	var good, others int
	for _, k := range c.Cases {
		if err := k.check(); err != nil {
			t.Errorf("expected.yaml: %s: %v", k.Name, err)
		}
		body := expand(k.Raw, buckets)
		if prev, dup := bodies[string(body)]; dup {
			t.Errorf("%s and %s have the same body: dead letters could not be told apart", prev, k.Name)
		}
		bodies[string(body)] = k.Name
		// SQS carries Unicode text only: bytes that are not UTF-8 must be
		// run directly, and the expectation must say so.
		if !utf8.Valid(body) && !k.directly() {
			t.Errorf("%s: the body is not UTF-8, which SQS cannot carry: set transport direct or both", k.Name)
		}
		if utf8.Valid(body) && k.directly() {
			t.Errorf("%s: transport %s is only for bodies that are not UTF-8", k.Name, k.Transport)
		}
		if k.wantResult() && (k.Status == jobv1.StatusSucceeded || k.Status == jobv1.StatusBlocked) {
			// A job expected to run must be valid by the published schema,
			// and its result must be where the test looks.
			if err := testenv.Validate(jobSchema, body); err != nil {
				t.Errorf("%s: expected to run, but the body fails job.v1.schema.json: %v", k.Name, err)
			}
			named := bytes.Contains(body, []byte(`"job_id":"`+k.Name+`"`)) || bytes.Contains(body, []byte(`"job_id": "`+k.Name+`"`))
			if k.JobID == "" && !named {
				t.Errorf("%s: the body's job_id is not the case name; set job_id in expected.yaml", k.Name)
			}
		}
		if k.good() {
			good += k.Copies
		} else {
			others += k.Copies
		}
	}
	if good < 15 {
		t.Errorf("%d good job messages, want at least 15", good)
	}
	if others < 60 {
		t.Errorf("%d adversarial messages besides the good jobs, want at least 60", others)
	}
	keys := map[string]bool{}
	for i, o := range c.Objects {
		if _, err := o.body(); err != nil {
			t.Errorf("objects.yaml: object %d (%s): %v", i, o.Key, err)
		}
		if !slices.Contains(advBuckets, o.Bucket) {
			t.Errorf("objects.yaml: object %d (%s): bucket %q is not one of %v", i, o.Key, o.Bucket, advBuckets)
		}
		if o.Bucket == "RESULTS" && strings.HasPrefix(o.Key, "results/") {
			t.Errorf("objects.yaml: %s would be taken for a result", o.Key)
		}
		if keys[o.Bucket+"/"+o.Key] {
			t.Errorf("objects.yaml: %s/%s twice", o.Bucket, o.Key)
		}
		keys[o.Bucket+"/"+o.Key] = true
	}
	t.Logf("%d cases, %d good job messages, %d other messages", len(c.Cases), good, others)
}

// check reports what is missing or contradictory in an expectation.
func (e advExpect) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(e.Why) == "" {
		bad("why: say what the case attacks")
	}
	switch e.Outcome {
	case "dlq":
		if e.Status != "" || e.Code != "" || e.GuardrailAction != "" || len(e.MessageContains)+len(e.OutputContains)+len(e.OutputContainsAny)+len(e.OutputNotContains) > 0 {
			bad("a dead-lettered case has no result: only reason_contains applies")
		}
	case "result":
		switch e.Status {
		case jobv1.StatusFailed:
			if e.Code == "" {
				bad("a failed result needs its error code")
			}
		case jobv1.StatusSucceeded, jobv1.StatusBlocked:
			if e.Code != "" {
				bad("only a failed result has an error code")
			}
		default:
			bad("status %q is not succeeded, failed or blocked", e.Status)
		}
		if len(e.ReasonContains) > 0 {
			bad("reason_contains is for dead letters; use message_contains")
		}
	default:
		bad("outcome %q is not dlq or result", e.Outcome)
	}
	switch e.GuardrailAction {
	case "", jobv1.GuardrailNone, jobv1.GuardrailMasked, jobv1.GuardrailBlocked:
	default:
		bad("guardrail_action %q is not none, masked or blocked", e.GuardrailAction)
	}
	switch e.Transport {
	case viaSQS, viaBoth:
	case viaDirect:
		if e.Copies > 1 {
			bad("copies are sent over SQS; a direct case runs once")
		}
	default:
		bad("transport %q is not sqs, direct or both", e.Transport)
	}
	if e.Copies < 1 {
		bad("copies: at least 1")
	}
	return errors.Join(errs...)
}
