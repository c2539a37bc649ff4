package sizing_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/sizing"
)

// hourly returns job lines every hour for n hours from start.
func hourly(start time.Time, n int, prefix string) []string {
	var lines []string
	for i := range n {
		ts := start.Add(time.Duration(i) * time.Hour)
		lines = append(lines, fmt.Sprintf(`{"_aws":{"Timestamp":%d},"Tier":"standard","ModelId":%q,"InputTokens":100,"OutputTokens":10,"CostUSD":0.0002,"Throttles":0,"JobId":"%s-%d","Tenant":"acme"}`,
			ts.UnixMilli(), haiku, prefix, i))
	}
	return lines
}

func TestEdgeWarnings(t *testing.T) {
	t.Parallel()
	day := func(s string) time.Time {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	for _, tc := range []struct {
		name  string
		lines []string
		cfg   func(*sizing.Config)
		want  []string // substrings of one warning each; nil: no edge warning
		start time.Time
	}{
		{
			// One stray line, then 31 days hourly from 2026-09-21. The gap
			// from 2025-11-02 12:00 to 2026-09-21 00:00 is 322.5 days.
			name:  "isolated line before",
			lines: append(hourly(day("2025-11-02").Add(12*time.Hour), 1, "stray"), hourly(day("2026-09-21"), 31*24, "j")...),
			want:  []string{"1 job line on 2025-11-02 is 322.5 days before the next; the window runs from the first job line — pass --start 2026-09-21 to leave it out"},
			start: day("2025-11-02").Add(12 * time.Hour),
		},
		{
			// 31 days hourly from 2026-09-01 (last 2026-10-01 23:00), then
			// 48 lines from 2026-10-20: 18 days and 1 hour later, more
			// than 10 lines, so a late stretch rather than outliers.
			name:  "long stretch after",
			lines: append(hourly(day("2026-09-01"), 31*24, "j"), hourly(day("2026-10-20"), 48, "late")...),
			want:  []string{"48 job lines from 2026-10-20 to 2026-10-21 are 18 days after the one before, with none in between: the window runs to the last job line, so the empty 18 days count as quiet minutes in every percentile and per-day cost — pass --end 2026-10-02 to leave them out"},
			start: day("2026-09-01"),
		},
		{
			// Two stray lines on different days, both before one gap.
			name:  "isolated lines before, two days",
			lines: append(append(hourly(day("2026-01-01"), 1, "a"), hourly(day("2026-01-02"), 1, "b")...), hourly(day("2026-03-01"), 31*24, "j")...),
			want:  []string{"2 job lines from 2026-01-01 to 2026-01-02 are 58 days before the next; the window runs from the first job line — pass --start 2026-03-01 to leave them out"},
			start: day("2026-01-01"),
		},
		{
			// A 6-day pause is shorter than the 7-day default...
			name:  "short gap",
			lines: append(hourly(day("2026-09-01"), 1, "stray"), hourly(day("2026-09-07"), 31*24, "j")...),
			start: day("2026-09-01"),
		},
		{
			// ...but not than a 5-day edge gap.
			name:  "short gap, smaller setting",
			lines: append(hourly(day("2026-09-01"), 1, "stray"), hourly(day("2026-09-07"), 31*24, "j")...),
			cfg:   func(c *sizing.Config) { c.EdgeGap = 5 * 24 * time.Hour },
			want:  []string{"1 job line on 2026-09-01 is 6 days before the next"},
			start: day("2026-09-01"),
		},
		{
			// With --isolated 0 a single line is a stretch, not an outlier.
			name:  "isolated 0",
			lines: append(hourly(day("2025-11-02"), 1, "stray"), hourly(day("2026-09-21"), 31*24, "j")...),
			cfg:   func(c *sizing.Config) { c.IsolatedRecords = 0 },
			want:  []string{"1 job line on 2025-11-02 is 323 days before the next, with none in between"},
			start: day("2025-11-02"),
		},
		{
			// A gap in the middle, with as many lines on each side, is not
			// an edge.
			name:  "middle gap",
			lines: append(hourly(day("2026-09-01"), 15*24, "a"), hourly(day("2026-10-01"), 15*24, "b")...),
			start: day("2026-09-01"),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "m.emf")
			if err := os.WriteFile(p, []byte(strings.Join(tc.lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			tiers := pinnedTiers()
			rep, err := sizing.Build(t.Context(), &sizing.EMFSource{Paths: []string{p}, Tiers: tiers}, func() sizing.Config {
				c := sizing.DefaultConfig(tiers)
				if tc.cfg != nil {
					tc.cfg(&c)
				}
				return c
			}())
			if err != nil {
				t.Fatal(err)
			}
			// The window runs from the first kept line: the warning, not a
			// silent cut, is what leaves the choice to the user.
			if !rep.Start.Equal(tc.start) {
				t.Errorf("window starts %s, want %s", rep.Start, tc.start)
			}
			var edge []string
			for _, w := range rep.Warnings {
				if strings.Contains(w, "job line") && (strings.Contains(w, "--start") || strings.Contains(w, "--end")) {
					edge = append(edge, w)
				}
			}
			if len(edge) != len(tc.want) {
				t.Fatalf("edge warnings %q, want %d", edge, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(edge[i], w) {
					t.Errorf("warning %q lacks %q", edge[i], w)
				}
			}
		})
	}
}

func TestConfigValidateDataChecks(t *testing.T) {
	t.Parallel()
	c := sizing.DefaultConfig(pinnedTiers())
	c.EdgeGap, c.IsolatedRecords, c.BurstRatio = time.Minute, -1, 0.5
	err := c.Validate()
	for _, w := range []string{"edge gap: must be at least 1h (got 1m0s)", "isolated records: must be >= 0 (got -1)", "burst ratio: must be a finite number >= 1 (got 0.5)"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %v, want %q", err, w)
		}
	}
}
