package tiering_test

import (
	"math"
	"strings"
	"testing"

	"github.com/tierq/tierq/tiering"
)

func TestEstimateTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want int
	}{
		{"", 0},
		{"a", 1},
		{"abcd", 1},
		{"abcde", 2},
		{strings.Repeat("x", 4000), 1000},
		{strings.Repeat("x", 4001), 1001},
		{"日本語の文", 2}, // 5 runes, not 15 bytes
		{"héllo wörld", 3},
	}
	for _, tt := range tests {
		if got := tiering.EstimateTokens(tt.text); got != tt.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

func TestComputeSignals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want tiering.Signals
	}{
		{"empty", "", tiering.Signals{}},
		{"prose", "The board met on Tuesday. It agreed, after a long debate, to sell the mill.\n",
			tiering.Signals{}},
		{"markdown table", "Results:\n\n| region | sales |\n|--------|-------|\n| north  | ten   |\n",
			tiering.Signals{Tables: true}},
		{"two table rows are not a table", "| a | b |\n| c | d |\n\nprose", tiering.Signals{}},
		{"csv", "name,city,team\nann,oslo,red\nbob,rome,blue\n", tiering.Signals{Tables: true}},
		{"tsv", "name\tcity\nann\toslo\nbob\trome\n", tiering.Signals{Tables: true}},
		{"prose with a comma per line", "First, we met.\nThen, we ate.\nLater, we left.\n", tiering.Signals{}},
		{"rows with different column counts", "a,b,c\nd,e\nf,g,h,i\n", tiering.Signals{}},
		{"code fence", "Run this:\n```go\nfmt.Println(x)\n```\n", tiering.Signals{CodeBlocks: true}},
		{"tilde fence", "  ~~~\nx\n  ~~~\n", tiering.Signals{CodeBlocks: true}},
		// 8 digits of 10 non-space characters.
		{"figures", "12 34 56 78 ab", tiering.Signals{DigitShare: 0.8}},
		// 2 of 4 letters non-ASCII; the digit is not a letter.
		{"non-ASCII letters", "日本 ab 1", tiering.Signals{DigitShare: 0.2, NonASCIIShare: 0.5}},
		{"punctuation is not a letter", "“quoted” — dash", tiering.Signals{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tiering.ComputeSignals(tt.text)
			if got.Tables != tt.want.Tables || got.CodeBlocks != tt.want.CodeBlocks ||
				math.Abs(got.DigitShare-tt.want.DigitShare) > 1e-9 || math.Abs(got.NonASCIIShare-tt.want.NonASCIIShare) > 1e-9 {
				t.Errorf("ComputeSignals(%q)\n got %+v\nwant %+v", tt.text, got, tt.want)
			}
		})
	}
}
