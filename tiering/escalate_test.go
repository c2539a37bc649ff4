package tiering_test

import (
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
		{"extract JSON with space", def, "economy", "end_turn", "extract", "\n  [1, 2]\n", 0, false, "no escalation condition met"},
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
