package bedrocksim

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Structured outputs: with outputConfig.textFormat of type json_schema, Bedrock
// constrains decoding so the answer is a JSON document valid against the
// schema. The simulator has no decoder to constrain, so it builds the smallest
// plausible instance of the schema by fixed rules (see instance) and answers
// with that; maxTokens still cuts it, as it would a real answer.

// maxSchemaDepth bounds recursion through $ref and nesting. Deeper than this,
// optional members are left out and arrays are empty, so a recursive schema
// still yields a finite document.
const maxSchemaDepth = 12

// maxSchemaNodes bounds the values built for one schema, so a schema whose
// required members recurse widely is refused rather than built for ever.
const maxSchemaNodes = 10_000

// maxStringLen bounds a string built for a schema's minLength: the request
// is small, but the answer would grow with the number it names.
const maxStringLen = 64 << 10

// schemaInstance is a deterministic JSON instance of a JSON Schema.
type schemaInstance struct {
	root  map[string]any
	nodes *int // values built so far
}

// structuredAnswer returns the JSON text the simulator answers for schema, or
// an error naming what it could not follow (a $ref that does not resolve).
func structuredAnswer(schema map[string]any) (string, error) {
	g := schemaInstance{root: schema, nodes: new(int)}
	v, err := g.instance(schema, 0)
	if err != nil {
		return "", err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// instance builds a value for s:
//
//   - $ref to a local definition ("#/$defs/x", "#/definitions/x", any JSON
//     pointer into the schema) is followed; other references are an error;
//   - const, then the first enum value, wins over everything else;
//   - anyOf and oneOf take their first branch; allOf merges its branches'
//     objects (else takes the first);
//   - type (the first non-null one of a list) or, without it, the keywords
//     present decide the kind: object → every property (required ones too,
//     from additionalProperties when not in properties); array → one item,
//     or minItems copies, prefixItems each; string → a short string, a
//     format's example, padded or cut to minLength/maxLength; number and
//     integer → 0, or the minimum (exclusive bounds respected), capped by the
//     maximum; boolean → false; null → null.
//
// Other keywords (pattern, multipleOf, uniqueItems, if/then/else, ...) are
// ignored, so a schema that leans on them can get an instance it rejects,
// which Bedrock's constrained decoding would not produce.
func (g schemaInstance) instance(s any, depth int) (any, error) {
	// Every value built counts, boolean schemas too, so no schema can make
	// an answer grow without bound.
	if *g.nodes++; *g.nodes > maxSchemaNodes {
		return nil, fmt.Errorf("its instance would have more than %d values", maxSchemaNodes)
	}
	switch s := s.(type) {
	case bool:
		// true accepts anything; false accepts nothing, so no value is right.
		return nil, nil
	case map[string]any:
		return g.object(s, depth)
	}
	return nil, fmt.Errorf("a schema must be an object or a boolean, got %s", jsonKind(s))
}

func (g schemaInstance) object(s map[string]any, depth int) (any, error) {
	if depth > 2*maxSchemaDepth {
		return nil, nil
	}
	if ref, ok := s["$ref"].(string); ok {
		target, err := g.resolve(ref)
		if err != nil {
			return nil, err
		}
		return g.instance(target, depth+1)
	}
	if c, ok := s["const"]; ok {
		return c, nil
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[0], nil
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if branches, ok := s[k].([]any); ok && len(branches) > 0 {
			return g.instance(branches[0], depth+1)
		}
	}
	if branches, ok := s["allOf"].([]any); ok && len(branches) > 0 {
		merged := map[string]any{}
		for _, b := range branches {
			v, err := g.instance(b, depth+1)
			if err != nil {
				return nil, err
			}
			obj, isObj := v.(map[string]any)
			if !isObj {
				return v, nil
			}
			for k, x := range obj {
				merged[k] = x
			}
		}
		return merged, nil
	}
	switch kindOf(s) {
	case "object":
		return g.objectValue(s, depth)
	case "array":
		return g.arrayValue(s, depth)
	case "string":
		if minLen, ok := number(s["minLength"]); ok && minLen > maxStringLen {
			return nil, fmt.Errorf("minLength %v: its instance would be a string longer than %d characters", minLen, maxStringLen)
		}
		return stringValue(s), nil
	case "integer":
		return numberValue(s, true), nil
	case "number":
		return numberValue(s, false), nil
	case "boolean":
		return false, nil
	}
	return nil, nil
}

// kindOf is the JSON type a schema asks for: its type keyword (the first
// non-null of a list), else what its keywords imply, else null.
func kindOf(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		kinds := slices.DeleteFunc(slices.Clone(t), func(v any) bool { return v == "null" })
		if len(kinds) == 0 {
			return "null"
		}
		if k, ok := kinds[0].(string); ok {
			return k
		}
	}
	has := func(keys ...string) bool {
		return slices.ContainsFunc(keys, func(k string) bool { _, ok := s[k]; return ok })
	}
	switch {
	case has("properties", "required", "additionalProperties", "minProperties"):
		return "object"
	case has("items", "prefixItems", "minItems", "maxItems"):
		return "array"
	case has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
		return "number"
	case has("minLength", "maxLength", "pattern", "format"):
		return "string"
	}
	return "null"
}

func (g schemaInstance) objectValue(s map[string]any, depth int) (any, error) {
	obj := map[string]any{}
	props, _ := s["properties"].(map[string]any)
	var required []string
	if r, ok := s["required"].([]any); ok {
		for _, name := range r {
			if n, ok := name.(string); ok {
				required = append(required, n)
			}
		}
	}
	for _, name := range sortedKeys(props) {
		// Past the depth bound only required members are built, so a
		// recursive optional member ends the recursion.
		if depth > maxSchemaDepth && !slices.Contains(required, name) {
			continue
		}
		v, err := g.instance(props[name], depth+1)
		if err != nil {
			return nil, fmt.Errorf("properties.%s: %w", name, err)
		}
		obj[name] = v
	}
	for _, name := range required {
		if _, ok := obj[name]; ok {
			continue
		}
		var sub any = map[string]any{"type": "string"}
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			sub = ap
		}
		v, err := g.instance(sub, depth+1)
		if err != nil {
			return nil, fmt.Errorf("required %s: %w", name, err)
		}
		obj[name] = v
	}
	return obj, nil
}

func (g schemaInstance) arrayValue(s map[string]any, depth int) (any, error) {
	arr := []any{}
	if prefix, ok := s["prefixItems"].([]any); ok {
		for i, p := range prefix {
			v, err := g.instance(p, depth+1)
			if err != nil {
				return nil, fmt.Errorf("prefixItems.%d: %w", i, err)
			}
			arr = append(arr, v)
		}
		return arr, nil
	}
	n := 1
	if depth > maxSchemaDepth {
		n = 0
	}
	if minItems, ok := number(s["minItems"]); ok {
		if minItems > maxSchemaNodes {
			return nil, fmt.Errorf("minItems %v: its instance would have more than %d values", minItems, maxSchemaNodes)
		}
		n = max(n, int(minItems))
	}
	if maxItems, ok := number(s["maxItems"]); ok {
		n = min(n, int(maxItems))
	}
	items, ok := s["items"]
	if !ok {
		items = map[string]any{"type": "string"}
	}
	for range n {
		v, err := g.instance(items, depth+1)
		if err != nil {
			return nil, fmt.Errorf("items: %w", err)
		}
		arr = append(arr, v)
	}
	return arr, nil
}

// formatExamples are values valid for the string formats JSON Schema defines
// that structured-output schemas commonly use.
var formatExamples = map[string]string{
	"date":      "2026-01-01",
	"date-time": "2026-01-01T00:00:00Z",
	"time":      "00:00:00Z",
	"email":     "user@example.com",
	"uri":       "https://example.com/",
	"uuid":      "00000000-0000-4000-8000-000000000000",
	"hostname":  "example.com",
	"ipv4":      "192.0.2.1",
	"ipv6":      "2001:db8::1",
}

func stringValue(s map[string]any) string {
	if f, ok := s["format"].(string); ok {
		if v, ok := formatExamples[f]; ok {
			return v
		}
	}
	v := "text"
	if minLen, ok := number(s["minLength"]); ok && len(v) < int(minLen) {
		v += strings.Repeat("x", int(minLen)-len(v))
	}
	if maxLen, ok := number(s["maxLength"]); ok && len(v) > int(maxLen) {
		v = v[:max(int(maxLen), 0)]
	}
	return v
}

func numberValue(s map[string]any, integer bool) json.Number {
	v := 0.0
	if lo, ok := number(s["minimum"]); ok {
		v = lo
		if integer {
			v = math.Ceil(lo)
		}
	}
	if lo, ok := number(s["exclusiveMinimum"]); ok && v <= lo {
		v = math.Floor(lo) + 1
	}
	if hi, ok := number(s["maximum"]); ok && v > hi {
		v = hi
		if integer {
			v = math.Floor(hi)
		}
	}
	if hi, ok := number(s["exclusiveMaximum"]); ok && v >= hi {
		v = math.Ceil(hi) - 1
	}
	return json.Number(strconv.FormatFloat(v, 'f', -1, 64))
}

func number(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}

// resolve follows a local reference: "#" is the root, "#/a/b" a JSON pointer
// into it ("#/$defs/x", "#/definitions/x").
func (g schemaInstance) resolve(ref string) (any, error) {
	if ref == "#" {
		return g.root, nil
	}
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not a local reference (#/$defs/... or #/definitions/...)", ref)
	}
	var cur any = g.root
	for _, tok := range strings.Split(path, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q does not resolve: no %q", ref, tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("$ref %q does not resolve: no item %q", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
	}
	return cur, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}
