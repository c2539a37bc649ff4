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
