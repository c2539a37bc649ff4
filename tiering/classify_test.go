package tiering_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/tiering"
)

type classifyCase struct {
	Name  string        `yaml:"name"`
	Facts tiering.Facts `yaml:"facts"`
	Want  struct {
		Tier   string `yaml:"tier"`
		Rule   string `yaml:"rule"`
		Reason string `yaml:"reason"`
		Error  string `yaml:"error"`
	} `yaml:"want"`
}

var sentinels = map[string]error{
	"unknown_tier": tiering.ErrUnknownTier,
	"unknown_task": tiering.ErrUnknownTask,
	"too_large":    tiering.ErrTooLarge,
}

func loadCases(t *testing.T) []classifyCase {
	t.Helper()
	data, err := os.ReadFile("../testdata/tiering/cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a typo in the corpus must not silently pass
	var cases []classifyCase
	if err := dec.Decode(&cases); err != nil {
		t.Fatalf("decode cases.yaml: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("cases.yaml has no cases")
	}
	return cases
}

func TestClassifyCorpus(t *testing.T) {
	t.Parallel()
	c := tiering.Default()
	for _, tt := range loadCases(t) {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			got, err := c.Classify(tt.Facts)
			if tt.Want.Error != "" {
				want, ok := sentinels[tt.Want.Error]
				if !ok {
					t.Fatalf("cases.yaml: unknown want.error %q", tt.Want.Error)
				}
				if !errors.Is(err, want) {
					t.Fatalf("Classify(%+v) error = %v, want %v (decision %+v)", tt.Facts, err, want, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Classify(%+v) error = %v, want tier %s", tt.Facts, err, tt.Want.Tier)
			}
			if got.Tier != tt.Want.Tier || got.Rule != tt.Want.Rule {
				t.Errorf("Classify(%+v) = tier %s rule %s, want tier %s rule %s\nreason: %s",
					tt.Facts, got.Tier, got.Rule, tt.Want.Tier, tt.Want.Rule, got.Reason)
			}
			if tier, _ := c.Tier(got.Tier); got.ModelID != tier.ModelID {
				t.Errorf("ModelID = %q, want %q of tier %s", got.ModelID, tier.ModelID, got.Tier)
			}
			if !strings.Contains(got.Reason, tt.Want.Reason) {
				t.Errorf("Reason = %q, want it to contain %q", got.Reason, tt.Want.Reason)
			}
		})
	}
}

func TestClassifyErrorMessages(t *testing.T) {
	t.Parallel()
	c := tiering.Default()
	tests := []struct {
		name  string
		facts tiering.Facts
		want  []string
	}{
		{"too large names tokens and window", tiering.Facts{Task: "summarize", EstimatedTokens: 250000},
			[]string{"~250,000 estimated tokens", "largest context window is 200,000 tokens"}},
		{"unknown override lists tiers", tiering.Facts{Task: "summarize", Override: "gold"},
			[]string{`unknown tier "gold"`, "economy, standard, premium"}},
		{"unknown task lists tasks", tiering.Facts{Task: "translate"},
			[]string{`unknown task "translate"`, "summarize, classify, extract, custom"}},
		{"negative tokens", tiering.Facts{Task: "summarize", EstimatedTokens: -1},
			[]string{"must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Classify(tt.facts)
			if err == nil {
				t.Fatalf("Classify(%+v) = nil error", tt.facts)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// With a single tier every rule lands on it, and only size can fail.
func TestClassifyOneTier(t *testing.T) {
	t.Parallel()
	c, err := tiering.Load([]byte(oneTier))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []tiering.Facts{
		{Task: "summarize", EstimatedTokens: 10},
		{Task: "summarize", EstimatedTokens: 900},
		{Task: "extract", EstimatedTokens: 10, Signals: tiering.Signals{Tables: true}},
		{Task: "classify", EstimatedTokens: 900},
	} {
		if d, err := c.Classify(f); err != nil || d.Tier != "only" {
			t.Errorf("Classify(%+v) = %+v, %v; want tier only", f, d, err)
		}
	}
	if _, err := c.Classify(tiering.Facts{Task: "summarize", EstimatedTokens: 901}); !errors.Is(err, tiering.ErrTooLarge) {
		t.Errorf("901 tokens + 100 output in a 1,000 window: error = %v, want ErrTooLarge", err)
	}
}

func TestNewFacts(t *testing.T) {
	t.Parallel()
	text := "| a | b |\n|---|---|\n| 1 | 2 |\n"
	f := tiering.NewFacts("extract", text)
	if f.Task != "extract" || f.EstimatedTokens != tiering.EstimateTokens(text) || !f.Signals.Tables {
		t.Errorf("NewFacts = %+v, want task extract, %d tokens, tables", f, tiering.EstimateTokens(text))
	}
}

// Every rule, with every tier it can choose, has a case in cases.yaml, so a
// rule added to the table without cases fails here.
func TestCasesCoverEveryRule(t *testing.T) {
	t.Parallel()
	want := []string{
		"override premium", "override standard", "hint economy", "hint standard", "hint premium",
		"task-classify economy", "task-classify standard",
		"task-custom standard", "task-custom premium",
		"task-extract standard", "task-extract premium",
		"non-ascii standard", "size economy", "size standard",
		"error unknown_tier", "error unknown_task", "error too_large",
	}
	seen := map[string]bool{}
	for _, c := range loadCases(t) {
		if c.Want.Error != "" {
			seen["error "+c.Want.Error] = true
			continue
		}
		seen[c.Want.Rule+" "+c.Want.Tier] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("cases.yaml has no case for %q", w)
		}
	}
}

// Length alone never buys premium: without an override or a hint, a
// summary, a classification or an extraction from plain text is never sent
// to the last tier, whatever its size, script or (for summaries and
// classification) structure.
func TestLengthAloneNeverChoosesPremium(t *testing.T) {
	t.Parallel()
	c := tiering.Default()
	structured := tiering.Signals{Tables: true, CodeBlocks: true, DigitShare: 0.5}
	for tokens := 0; tokens <= 191808; tokens += 997 {
		for _, f := range []tiering.Facts{
			{Task: "summarize", EstimatedTokens: tokens},
			{Task: "summarize", EstimatedTokens: tokens, Signals: structured},
			{Task: "summarize", EstimatedTokens: tokens, Signals: tiering.Signals{NonASCIIShare: 1}},
			{Task: "classify", EstimatedTokens: tokens, Signals: structured},
			{Task: "extract", EstimatedTokens: tokens},
			{Task: "extract", EstimatedTokens: tokens, Signals: tiering.Signals{NonASCIIShare: 1}},
		} {
			d, err := c.Classify(f)
			if err != nil {
				t.Fatalf("Classify(%+v): %v", f, err)
			}
			if d.Tier == "premium" {
				t.Errorf("Classify(%+v) = premium by %s (%s), want a cheaper tier", f, d.Rule, d.Reason)
			}
		}
	}
}

// A user's file that sets standard_max_tokens keeps loading; the threshold
// now decides only custom and structured extract jobs.
func TestStandardMaxTokensFromFile(t *testing.T) {
	t.Parallel()
	data := bytes.Replace(tiering.DefaultYAML(), []byte("standard_max_tokens: 20000"), []byte("standard_max_tokens: 5000"), 1)
	if bytes.Equal(data, tiering.DefaultYAML()) {
		t.Fatal("default.yaml has no standard_max_tokens: 20000 line to replace")
	}
	c, err := tiering.Load(data)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tables := tiering.Signals{Tables: true}
	for _, tt := range []struct {
		facts      tiering.Facts
		tier, rule string
	}{
		{tiering.Facts{Task: "custom", EstimatedTokens: 5000}, "standard", "size"},
		{tiering.Facts{Task: "custom", EstimatedTokens: 5001}, "premium", "task-custom"},
		{tiering.Facts{Task: "extract", EstimatedTokens: 5000, Signals: tables}, "standard", "task-extract"},
		{tiering.Facts{Task: "extract", EstimatedTokens: 5001, Signals: tables}, "premium", "task-extract"},
		{tiering.Facts{Task: "summarize", EstimatedTokens: 5001, Signals: tables}, "standard", "size"},
		{tiering.Facts{Task: "extract", EstimatedTokens: 5001}, "standard", "size"},
	} {
		d, err := c.Classify(tt.facts)
		if err != nil || d.Tier != tt.tier || d.Rule != tt.rule {
			t.Errorf("standard_max_tokens 5000: Classify(%+v) = %s by %s (%v), want %s by %s", tt.facts, d.Tier, d.Rule, err, tt.tier, tt.rule)
		}
		if tt.tier == "premium" && !strings.Contains(d.Reason, "standard limit 5,000") {
			t.Errorf("Reason = %q, want it to name standard limit 5,000", d.Reason)
		}
	}
}

// With two tiers, standard and premium are the same tier: a long summary
// lands on it without a note that it was not moved there.
func TestClassifyTwoTiers(t *testing.T) {
	t.Parallel()
	c, err := tiering.Load([]byte(smallLargeTiers))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		facts tiering.Facts
		tier  string
	}{
		{tiering.Facts{Task: "summarize", EstimatedTokens: 100}, "small"},
		{tiering.Facts{Task: "summarize", EstimatedTokens: 30000}, "large"},
		{tiering.Facts{Task: "custom", EstimatedTokens: 30000}, "large"},
		{tiering.Facts{Task: "extract", EstimatedTokens: 100, Signals: tiering.Signals{Tables: true}}, "large"},
	} {
		d, err := c.Classify(tt.facts)
		if err != nil || d.Tier != tt.tier {
			t.Errorf("Classify(%+v) = %+v, %v; want tier %s", tt.facts, d, err, tt.tier)
		}
		if strings.Contains(d.Reason, "length alone") {
			t.Errorf("Reason = %q: with two tiers nothing was held back", d.Reason)
		}
	}
}

const smallLargeTiers = `
tiers:
  - name: small
    model_id: s
    context_window: 100000
    max_output_tokens: 1000
    system_prompts: {default: "Do the task."}
    prices: {input_per_mtok: 1, output_per_mtok: 2}
  - name: large
    model_id: l
    context_window: 100000
    max_output_tokens: 1000
    system_prompts: {default: "Do the task."}
    prices: {input_per_mtok: 3, output_per_mtok: 6}
`
