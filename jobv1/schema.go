package jobv1

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// JobSchema is the JSON Schema (draft 2020-12) of job message v1, the
// contract with producers. ParseJob validates every message with it, so the
// schema decides what is valid; ParseJob adds only what a schema cannot say,
// and the schema's description lists those rules.
//
//go:embed schema/job.v1.schema.json
var JobSchema []byte

// ResultSchema is the JSON Schema (draft 2020-12) of result v1.
//
//go:embed schema/result.v1.schema.json
var ResultSchema []byte

// jobSchemaURL is JobSchema's $id.
const jobSchemaURL = "https://github.com/tierq/tierq/jobv1/schema/job.v1.schema.json"

// jobSchema is JobSchema compiled, once. The schema is embedded and tested,
// so a failure here is a build defect, not a bad message.
var jobSchema = sync.OnceValue(func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JobSchema))
	if err != nil {
		panic("jobv1: the embedded job schema is not JSON: " + err.Error())
	}
	c := newCompiler()
	if err := c.AddResource(jobSchemaURL, doc); err != nil {
		panic("jobv1: " + err.Error())
	}
	return c.MustCompile(jobSchemaURL)
})

// newCompiler returns a compiler that never reads a file or the network:
// the draft metaschemas are built into the library, and any other $ref or
// $schema that is not inside the schema itself fails. Without UseLoader the
// library would read file:// references from the worker's disk.
func newCompiler() *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	return c
}

// errNoLoading is every load noLoader refuses.
var errNoLoading = errors.New("schemas are never loaded from files or the network")

type noLoader struct{}

func (noLoader) Load(string) (any, error) { return nil, errNoLoading }

// outputSchemaURL names a job's extract schema while it compiles; the
// .invalid domain never resolves, and nothing is loaded anyway.
const outputSchemaURL = "https://tierq.invalid/job/schema.json"

// OutputSchema is the job's compiled extract schema, to validate the
// model's answer with ValidateAgainst; nil, nil when the job has none.
// ParseJob compiled it already and it is returned as such; a job built in
// Go is compiled on every call. The error wraps ErrInvalidJob and says, in
// the job's terms, why the schema does not compile.
func (j Job) OutputSchema() (*jsonschema.Schema, error) {
	if len(j.Schema) == 0 {
		return nil, nil
	}
	if j.compiled != nil {
		return j.compiled, nil
	}
	s, msg := compileOutputSchema(j.Schema)
	if msg != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalidJob, msg)
	}
	return s, nil
}

// compileOutputSchema compiles an extract schema as draft 2020-12 (unless
// its $schema names another draft the library knows), or says why not.
func compileOutputSchema(raw []byte) (*jsonschema.Schema, string) {
	doc, err := decodeValue(raw)
	if err != nil {
		return nil, `"schema" is not JSON`
	}
	if problem := checkSchemaGraph(doc); problem != "" {
		return nil, problem
	}
	c := newCompiler()
	if err := c.AddResource(outputSchemaURL, doc); err != nil {
		return nil, `"schema" does not compile: ` + truncate(err.Error(), 120)
	}
	s, err := c.Compile(outputSchemaURL)
	if err != nil {
		return nil, describeCompileError(err, doc)
	}
	// {"$ref": "#"} compiles, but checks no answer: the validator finds the
	// loop only when it validates. An empty object finds the loops at the
	// root, which is where a schema that is all loop has them.
	var verr *jsonschema.ValidationError
	if errors.As(s.Validate(map[string]any{}), &verr) && hasRefCycle(verr) {
		return nil, `"schema" refers to itself in a loop ($ref), so it can check no answer`
	}
	return s, ""
}

func hasRefCycle(e *jsonschema.ValidationError) bool {
	if _, ok := e.ErrorKind.(*kind.RefCycle); ok {
		return true
	}
	return slices.ContainsFunc(e.Causes, hasRefCycle)
}

// describeCompileError says in the job's terms why an extract schema does
// not compile.
func describeCompileError(err error, doc any) string {
	var (
		load   *jsonschema.LoadURLError
		meta   *jsonschema.SchemaValidationError
		regex  *jsonschema.InvalidRegexError
		anchor *jsonschema.AnchorNotFoundError
		ptr    *jsonschema.JSONPointerNotFoundError
	)
	switch {
	case errors.As(err, &meta):
		var verr *jsonschema.ValidationError
		if errors.As(meta.Err, &verr) {
			d := describer{doc: map[string]any{"schema": doc}, base: []string{"schema"}}
			d.walk(verr, nil)
			if msgs := d.messages(); len(msgs) > 0 {
				return strings.Join(msgs, "; ")
			}
		}
		return `"schema" is not a valid JSON Schema`
	case errors.As(err, &load):
		return fmt.Sprintf(`"schema" refers to %s, outside itself; $ref and $schema may only point inside the schema (such as "#/$defs/name") or name draft 2020-12`,
			quoteTrunc(load.URL))
	case errors.As(err, &regex):
		return fmt.Sprintf("%s is not a regular expression this worker can run: %s", subject(pointerPath(regex.URL), ""), quoteTrunc(regex.Regex))
	case errors.As(err, &anchor), errors.As(err, &ptr):
		return `"schema" has a $ref that points to nothing inside it`
	}
	return `"schema" does not compile: ` + truncate(err.Error(), 120)
}

// pointerPath turns a location inside the extract schema
// (https://tierq.invalid/job/schema.json#/properties/a/pattern) into a path
// in the job's terms (schema.properties.a.pattern).
func pointerPath(loc string) string {
	_, frag, _ := strings.Cut(loc, "#")
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	path := "schema"
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if tok != "" {
			path = joinKey(path, strings.NewReplacer("~1", "/", "~0", "~").Replace(tok))
		}
	}
	return path
}

// ErrAnswerMismatch is returned by ValidateAgainst for an answer that does
// not match the job's schema.
var ErrAnswerMismatch = errors.New("the answer does not match the job's schema")

// maxAnswerProblems is how many reasons ValidateAgainst gives.
const maxAnswerProblems = 3

// ValidateAgainst checks a model's answer against a job's compiled extract
// schema (Job.OutputSchema). The error wraps ErrAnswerMismatch and gives the
// first few reasons in the job's terms ("total" must be a string, got a
// number), without repeating the answer beyond short values. A nil schema
// accepts any answer.
func ValidateAgainst(s *jsonschema.Schema, answer json.RawMessage) error {
	if s == nil {
		return nil
	}
	if i := invalidUTF8At(answer); i >= 0 {
		return fmt.Errorf("%w: it is not valid UTF-8 (byte %d)", ErrAnswerMismatch, i)
	}
	sc, err := scanJSON(answer)
	if err != nil {
		return fmt.Errorf("%w: it is not JSON: %w", ErrAnswerMismatch, err)
	}
	var msgs []string
	for _, is := range sc.issues {
		msgs = append(msgs, is.msg)
	}
	v, err := decodeValue(answer)
	if err != nil {
		return fmt.Errorf("%w: it is not JSON: %w", ErrAnswerMismatch, err)
	}
	if err := s.Validate(v); err != nil {
		var verr *jsonschema.ValidationError
		if !errors.As(err, &verr) {
			return fmt.Errorf("%w: %w", ErrAnswerMismatch, err)
		}
		d := describer{doc: v, root: "the answer"}
		d.walk(verr, nil)
		msgs = append(msgs, d.messages()...)
	}
	if len(msgs) == 0 {
		return nil
	}
	if len(msgs) > maxAnswerProblems {
		msgs = append(msgs[:maxAnswerProblems], fmt.Sprintf("and %d more", len(msgs)-maxAnswerProblems))
	}
	return fmt.Errorf("%w: %s", ErrAnswerMismatch, strings.Join(msgs, "; "))
}

// describer turns a jsonschema validation error tree into short messages in
// the job's terms: the location as a path ("labels[3]", "metadata.tenant"),
// what was wanted and what was there. It never writes Go types and repeats
// at most maxEcho characters of a value.
type describer struct {
	doc  any      // the validated value, to tell array indexes from keys
	root string   // how to name the value itself ("the answer")
	base []string // prepended to every location
	// rule maps an error to one message for a whole rule of the job schema
	// (a task's requirements), or returns ok false.
	rule func(e *jsonschema.ValidationError) (p problem, ok bool)
	// skip drops errors under these top-level keys: reported otherwise.
	skip map[string]bool
	out  []found
	// perField counts what was found under each top-level key; past
	// maxFoundPerField the rest is dropped unread (a wrong type in
	// 100,000 array items needs ten messages, not 100,000).
	perField map[string]int
}

const maxFoundPerField = 20

// found is one described error.
type found struct {
	problem
	loc    string // rendered location
	isType bool   // a wrong JSON type, which makes other errors there noise
}

func (d *describer) walk(e *jsonschema.ValidationError, parent []string) {
	if d.rule != nil {
		if p, ok := d.rule(e); ok {
			d.out = append(d.out, found{problem: p, loc: "rule:" + p.msg})
			return
		}
	}
	loc := append(slices.Clone(d.base), e.InstanceLocation...)
	if len(loc) > 0 && d.skip[loc[0]] {
		return
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference:
		for _, c := range e.Causes {
			d.walk(c, loc)
		}
	case *kind.AnyOf:
		// Each branch failed; the first one's reason is the clearest (for
		// "type" in a schema: "must be one of array, ..."), listing all is noise.
		if len(e.Causes) > 0 {
			d.walk(e.Causes[0], loc)
		}
	case *kind.OneOf:
		if len(k.Subschemas) > 1 {
			d.add(loc, false, "%s matches more than one of the forms it may take", d.subject(loc))
		} else if len(e.Causes) > 0 {
			d.walk(e.Causes[0], loc)
		}
	case *kind.PropertyNames:
		// The library reports this error's location wrongly (a slice it
		// reuses), so the object is the enclosing error's location.
		obj := parent
		if len(obj) != len(loc) {
			obj = nil
			_, frag, _ := strings.Cut(e.SchemaURL, "#")
			if name, ok := strings.CutPrefix(strings.TrimSuffix(frag, "/propertyNames"), "/properties/"); ok &&
				strings.HasSuffix(frag, "/propertyNames") && !strings.Contains(name, "/") {
				obj = append(slices.Clone(d.base), name)
			}
		}
		who := "key " + quoteTrunc(k.Property)
		if s := d.subject(obj); s != "" {
			who += " in " + s
		}
		for _, c := range e.Causes {
			d.walkName(c, who, obj)
		}
	default:
		d.leaf(e.ErrorKind, loc, d.subject(loc))
	}
}

// walkName describes why an object's key is refused: the causes' locations
// are relative to the key, so they are ignored.
func (d *describer) walkName(e *jsonschema.ValidationError, who string, obj []string) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			d.walkName(c, who, obj)
		}
		return
	}
	d.leaf(e.ErrorKind, obj, who)
}

// leaf describes one error that has no causes.
func (d *describer) leaf(k jsonschema.ErrorKind, loc []string, who string) {
	switch k := k.(type) {
	case *kind.Type:
		d.add(loc, true, "%s must be %s, got %s", who, typeList(k.Want), article(k.Got))
	case *kind.Const:
		want := display(k.Want)
		if s, ok := k.Want.(string); ok {
			want = strconv.Quote(s) // the schema's own value, not the message's: in full
		}
		d.add(loc, false, "%s must be %s", who, want)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = plainDisplay(w)
		}
		d.add(loc, false, "%s must be %s, got %s", who, orList(want), display(k.Got))
	case *kind.Required:
		for _, m := range k.Missing {
			p := append(slices.Clone(loc), m)
			if d.full(p) {
				continue
			}
			d.out = append(d.out, found{problem: problem{field: d.field(p), msg: d.subject(p) + " is required"}, loc: d.render(p)})
		}
	case *kind.AdditionalProperties:
		for _, name := range slices.Sorted(slices.Values(k.Properties)) { // the library's order is a map's
			msg := "unknown field " + quoteTrunc(name)
			if path := d.render(loc); path != "" {
				msg += " in " + subject(path, "")
			}
			p := append(slices.Clone(loc), name)
			if d.full(p) {
				continue
			}
			d.out = append(d.out, found{problem: problem{field: d.field(p), msg: msg}, loc: d.render(p)})
		}
	case *kind.MinLength:
		d.add(loc, false, "%s must be at least %s long, got %d", who, plural(k.Want, "character"), k.Got)
	case *kind.MaxLength:
		d.add(loc, false, "%s must be at most %s long, got %d", who, plural(k.Want, "character"), k.Got)
	case *kind.Minimum:
		d.add(loc, false, "%s must be at least %s, got %s", who, ratString(k.Want), ratString(k.Got))
	case *kind.Maximum:
		d.add(loc, false, "%s must be at most %s, got %s", who, ratString(k.Want), ratString(k.Got))
	case *kind.ExclusiveMinimum:
		d.add(loc, false, "%s must be more than %s, got %s", who, ratString(k.Want), ratString(k.Got))
	case *kind.ExclusiveMaximum:
		d.add(loc, false, "%s must be less than %s, got %s", who, ratString(k.Want), ratString(k.Got))
	case *kind.MultipleOf:
		d.add(loc, false, "%s must be a multiple of %s, got %s", who, ratString(k.Want), ratString(k.Got))
	case *kind.MinItems:
		d.add(loc, false, "%s must have at least %s, got %d", who, plural(k.Want, "item"), k.Got)
	case *kind.MaxItems:
		d.add(loc, false, "%s must have at most %s, got %d", who, plural(k.Want, "item"), k.Got)
	case *kind.MinProperties:
		d.add(loc, false, "%s must have at least %s, got %d", who, plural(k.Want, "key"), k.Got)
	case *kind.MaxProperties:
		d.add(loc, false, "%s must have at most %s, got %d", who, plural(k.Want, "key"), k.Got)
	case *kind.UniqueItems:
		first := d.subject(append(slices.Clone(loc), strconv.Itoa(k.Duplicates[0])))
		again := d.subject(append(slices.Clone(loc), strconv.Itoa(k.Duplicates[1])))
		d.add(loc, false, "%s repeats %s", again, first)
	case *kind.Pattern:
		if rule, ok := patternRules[k.Want]; ok {
			if rule.echo {
				d.add(loc, false, "%s must be %s, got %s", who, rule.want, quoteTrunc(k.Got))
			} else {
				d.add(loc, false, "%s must %s", who, rule.want)
			}
			return
		}
		d.add(loc, false, "%s must match the pattern %s, got %s", who, quoteTrunc(k.Want), quoteTrunc(k.Got))
	case *kind.RefCycle:
		d.add(loc, false, "%s cannot be checked: the schema refers to itself in a loop ($ref)", who)
	case *kind.Not, *kind.FalseSchema:
		d.add(loc, false, "%s is not allowed here", who)
	case *kind.Format:
		if k.Want == "regex" {
			d.add(loc, false, "%s is not a regular expression this worker can run: %s", who, display(k.Got))
			return
		}
		d.add(loc, false, "%s must be a valid %s, got %s", who, k.Want, display(k.Got))
	default:
		kw := strings.Join(k.KeywordPath(), "/")
		if kw == "" {
			kw = "the schema"
		}
		d.add(loc, false, "%s does not satisfy %s", who, kw)
	}
}

func (d *describer) add(loc []string, isType bool, format string, args ...any) {
	if d.full(loc) {
		return
	}
	d.out = append(d.out, found{problem: problem{field: d.field(loc), msg: fmt.Sprintf(format, args...)}, loc: d.render(loc), isType: isType})
}

// full reports whether enough was found under loc's top-level key, and
// counts one more.
func (d *describer) full(loc []string) bool {
	if d.perField == nil {
		d.perField = map[string]int{}
	}
	f := d.field(loc)
	d.perField[f]++
	return d.perField[f] > maxFoundPerField
}

func (d *describer) field(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	return loc[0]
}

// messages returns the problems found, minus the noise: other complaints
// about a value of the wrong type.
func (d *describer) messages() []string {
	var msgs []string
	for _, p := range d.problems() {
		msgs = append(msgs, p.msg)
	}
	return msgs
}

func (d *describer) problems() []problem {
	wrongType := map[string]bool{}
	for _, f := range d.out {
		if f.isType {
			wrongType[f.loc] = true
		}
	}
	var ps []problem
	for _, f := range d.out {
		if !f.isType && wrongType[f.loc] {
			continue
		}
		ps = append(ps, f.problem)
	}
	return ps
}

func (d *describer) subject(loc []string) string { return subject(d.render(loc), d.root) }

// render writes a location as a path, using the value to tell an array's
// index (labels[3]) from an object's key (metadata.tenant).
func (d *describer) render(loc []string) string {
	path := ""
	cur := d.doc
	for _, tok := range loc {
		switch c := cur.(type) {
		case []any:
			path += "[" + tok + "]"
			cur = nil
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			}
		case map[string]any:
			path = joinKey(path, tok)
			cur = c[tok]
		default:
			path = joinKey(path, tok)
			cur = nil
		}
	}
	return path
}

// patternRule is what a pattern of the job schema means, for messages.
type patternRule struct {
	want string // completes "must be" (echo) or "must"
	echo bool   // the value is a short name, worth repeating
}

// patternRules explains the job schema's patterns; a test checks that every
// pattern in JobSchema has an entry.
var patternRules = map[string]patternRule{
	`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`:                                                             {"1 to 128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit", true},
	`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`:                                                              {"1 to 64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit", true},
	`^[^\x00-\x1f\x7f-\x9f]*$`:                                                                       {"not contain control characters", false},
	`^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$`:                                                      {"not contain control characters other than tab, line feed and carriage return", false},
	"[^\\x00-\\x20\\x7f-\\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]":                     {"not be blank", false},
	`^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^/\x00-\x1f\x7f-\x9f\\]+(/[^/\x00-\x1f\x7f-\x9f\\]+)*$`: {"an s3://bucket/key URI", true},
}

func typeList(want []string) string {
	out := make([]string, len(want))
	for i, w := range want {
		out[i] = article(w)
	}
	return orList(out)
}

// article names a JSON type with its article: "an array", "a string".
func article(t string) string {
	switch t {
	case "null":
		return "null"
	case "array", "object", "integer":
		return "an " + t
	}
	return "a " + t
}

func orList(items []string) string {
	switch len(items) {
	case 0:
		return "nothing"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// display repeats a JSON value briefly: strings quoted and cut, objects and
// arrays only named.
func display(v any) string {
	switch v := v.(type) {
	case string:
		return quoteTrunc(v)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case nil:
		return "null"
	}
	return truncate(fmt.Sprint(v), maxEcho)
}

// plainDisplay is display without quotes around strings, for lists of
// allowed names.
func plainDisplay(v any) string {
	if s, ok := v.(string); ok {
		return truncate(s, maxEcho)
	}
	return display(v)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return truncate(r.RatString(), maxEcho)
	}
	f, _ := r.Float64()
	return truncate(strconv.FormatFloat(f, 'g', -1, 64), maxEcho)
}
