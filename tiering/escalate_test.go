package tiering_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tierq/tierq/tiering"
)

func TestNext(t *testing.T) {
	t.Parallel()
	c := tiering.Default()
	tests := []struct {
		tier, want string
		ok         bool
	}{
		{"economy", "standard", true},
		{"standard", "premium", true},
		{"premium", "", false},
		{"gold", "", false},
	}
	for _, tt := range tests {
		got, ok := c.Next(tt.tier)
		if got.Name != tt.want || ok != tt.ok {
			t.Errorf("Next(%q) = %q, %v; want %q, %v", tt.tier, got.Name, ok, tt.want, tt.ok)
		}
	}
}

func TestShouldEscalate(t *testing.T) {
	t.Parallel()
	def := tiering.Default()
	off := tiering.Default()
	off.Escalation.Enabled = false
	noJSON := tiering.Default()
	noJSON.Escalation.OnInvalidJSON = false
	noMax := tiering.Default()
	noMax.Escalation.OnMaxTokens = false

	tests := []struct {
		name                     string
		cfg                      *tiering.Config
		tier, stop, task, output string
		step                     int
		want                     bool
		reason                   string
	}{
		{"complete answer", def, "economy", "end_turn", "summarize", "A summary.", 0, false, "no escalation condition met"},
		{"max_tokens", def, "economy", "max_tokens", "summarize", "A summ", 0, true, "stopped at max_tokens on tier economy; retrying on standard"},
		{"max_tokens on the last tier", def, "premium", "max_tokens", "summarize", "A summ", 0, false, "no next tier"},
		{"max_tokens after the last allowed step", def, "standard", "max_tokens", "summarize", "A summ", 1, false, "escalation.max_steps 1"},
		{"max_tokens, escalation disabled", off, "economy", "max_tokens", "summarize", "A summ", 0, false, "escalation is disabled"},
		{"max_tokens, on_max_tokens off", noMax, "economy", "max_tokens", "summarize", "A summ", 0, false, "no escalation condition met"},
		{"extract valid JSON", def, "economy", "end_turn", "extract", `{"total": 12.5}`, 0, false, "no escalation condition met"},
		{"extract object with space", def, "economy", "end_turn", "extract", "\n  {\"a\": [1, 2]}\n", 0, false, "no escalation condition met"},
		{"extract array is not an object", def, "economy", "end_turn", "extract", "\n  [1, 2]\n", 0, true, "not valid JSON on tier economy"},
		{"extract JSON string is not an object", def, "economy", "end_turn", "extract", `"n/a"`, 0, true, "not valid JSON"},
		{"extract JSON null is not an object", def, "economy", "end_turn", "extract", "null", 0, true, "not valid JSON"},
		{"extract two objects", def, "economy", "end_turn", "extract", `{"a": 1} {"b": 2}`, 0, true, "not valid JSON"},
		{"extract JSON in a json fence", def, "economy", "end_turn", "extract", "```json\n{\"a\": 1}\n```", 0, false, "no escalation condition met"},
		{"extract JSON in a bare fence", def, "economy", "end_turn", "extract", "```\n{\"a\": 1}\n```\n", 0, false, "no escalation condition met"},
		{"extract prose", def, "economy", "end_turn", "extract", "The total is 12.5.", 0, true, "not valid JSON on tier economy; retrying on standard"},
		{"extract JSON after prose", def, "economy", "end_turn", "extract", "Here it is: {\"a\": 1}", 0, true, "not valid JSON"},
		{"extract unclosed fence", def, "economy", "end_turn", "extract", "```json\n{\"a\": 1}", 0, true, "not valid JSON"},
		{"extract fence of another language", def, "economy", "end_turn", "extract", "```yaml\na: 1\n```", 0, true, "not valid JSON"},
		{"extract empty", def, "economy", "end_turn", "extract", "  ", 0, true, "not valid JSON"},
		{"extract invalid, on_invalid_json off", noJSON, "economy", "end_turn", "extract", "nope", 0, false, "no escalation condition met"},
		{"summary need not be JSON", def, "economy", "end_turn", "summarize", "nope", 0, false, "no escalation condition met"},
		{"unknown tier", def, "gold", "max_tokens", "summarize", "x", 0, false, "no next tier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, reason := tt.cfg.ShouldEscalate(tt.tier, tt.stop, tt.task, tt.output, tt.step)
			if got != tt.want || !strings.Contains(reason, tt.reason) {
				t.Errorf("ShouldEscalate(%s, %s, %s, %q, %d) = %v, %q; want %v, reason containing %q",
					tt.tier, tt.stop, tt.task, tt.output, tt.step, got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestExtractJSONObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     string // compact object; "" when it is not one
	}{
		{"object", `{"a":1}`, `{"a":1}`},
		{"empty object", `{}`, `{}`},
		{"object with space around and inside", "  {\n \"a\": [1, 2]\n}\n", `{"a":[1,2]}`},
		{"json fence", "```json\n{\"a\": 1}\n```", `{"a":1}`},
		{"bare fence with trailing space", "```\n{\"a\": 1}\n```  ", `{"a":1}`},
		{"JSON fence in capitals", "```JSON\n{\"a\": 1}\n```", `{"a":1}`},
		{"fence closed on the object's line", "```json\n{\"a\": 1}```", `{"a":1}`},
		{"fence of another language", "```yaml\na: 1\n```", ""},
		{"unclosed fence", "```json\n{\"a\": 1}", ""},
		{"fence on one line", "```{\"a\": 1}```", ""},
		{"array", `[1,2]`, ""},
		{"array in a fence", "```json\n[{\"a\": 1}]\n```", ""},
		{"string", `"n/a"`, ""},
		{"number", `42`, ""},
		{"null", `null`, ""},
		{"truncated object", `{"a":`, ""},
		{"object after prose", `Here is the JSON: {"a":1}`, ""},
		{"object then prose", `{"a":1} Hope this helps.`, ""},
		{"two objects", `{"a":1}{"b":2}`, ""},
		{"empty", ``, ""},
		{"blank", " \n\t", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tiering.ExtractJSONObject(tt.in)
			if ok != (tt.want != "") || string(got) != tt.want || (!ok && got != nil) {
				t.Errorf("ExtractJSONObject(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.want != "")
			}
		})
	}
}

// ShouldEscalate and ExtractJSONObject agree: an extract answer escalates
// exactly when it is not a JSON object.
func TestShouldEscalateAgreesWithExtractJSONObject(t *testing.T) {
	t.Parallel()
	c := tiering.Default()
	for _, out := range []string{`{"a":1}`, "```json\n{}\n```", `[1]`, `"n/a"`, `true`, "prose", "```\n[]\n```", ""} {
		_, isObject := tiering.ExtractJSONObject(out)
		if esc, reason := c.ShouldEscalate("economy", "end_turn", tiering.TaskExtract, out, 0); esc == isObject {
			t.Errorf("answer %q: object %v but escalate %v (%s)", out, isObject, esc, reason)
		}
	}
}

func ExampleExtractJSONObject() {
	for _, answer := range []string{
		"```json\n{\"customer\": \"Acme\", \"total\": 12.5}\n```",
		`["Acme", 12.5]`,
		`"n/a"`,
	} {
		if obj, ok := tiering.ExtractJSONObject(answer); ok {
			fmt.Println("object:", string(obj))
		} else {
			fmt.Println("not an object:", answer)
		}
	}
	// Output:
	// object: {"customer":"Acme","total":12.5}
	// not an object: ["Acme", 12.5]
	// not an object: "n/a"
}

func TestShouldEscalateMismatch(t *testing.T) {
	t.Parallel()
	def := tiering.Default()
	noJSON := tiering.Default()
	noJSON.Escalation.OnInvalidJSON = false
	off := tiering.Default()
	off.Escalation.Enabled = false
	tests := []struct {
		name string
		cfg  *tiering.Config
		tier string
		step int
		want bool
	}{
		{"first answer on economy", def, "economy", 0, true},
		{"already escalated once", def, "standard", 1, false},
		{"last tier", def, "premium", 0, false},
		{"escalation on invalid JSON off", noJSON, "economy", 0, false},
		{"escalation off", off, "economy", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, reason := tt.cfg.ShouldEscalateMismatch(tt.tier, tt.step)
			if got != tt.want || !strings.Contains(reason, "does not match the job's schema") {
				t.Errorf("ShouldEscalateMismatch(%s, %d) = %v, %q; want %v and a reason naming the schema", tt.tier, tt.step, got, reason, tt.want)
			}
		})
	}
}
