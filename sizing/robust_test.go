package sizing_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
)

// emfJob is a tierq EMF job line for job id at ms.
func emfJob(id string, ms int64) string {
	return fmt.Sprintf(`{"_aws":{"Timestamp":%d},"Tier":"economy","ModelId":"%s","InputTokens":1000,"OutputTokens":100,"CostUSD":0.1,"Throttles":0,"JobId":"%s","Status":"succeeded","Tenant":"t"}`, ms, nova, id)
}

const limiterLine = `{"_aws":{"Timestamp":1795567466292},"ModelId":"` + nova + `","InFlight":0}`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func jobCount(d *sizing.Data) int {
	n := 0
	for _, tot := range d.Totals {
		n += tot.Jobs
	}
	return n
}

func hasWarning(ws []string, want string) bool {
	for _, w := range ws {
		if strings.Contains(w, want) {
			return true
		}
	}
	return false
}

// TestEMFSourceRobustness covers input that must warn and go on, never
// abort nor count silently: files without job lines in a glob, lines over
// the 1 MiB EMF limit, duplicated job lines and the --start/--end filter.
func TestEMFSourceRobustness(t *testing.T) {
	t.Parallel()
	const t0 = 1795521600000 // ms
	long := strings.Repeat("x", 1<<20+10)
	exact := strings.Repeat("x", 1<<20) // at the limit: read, then skipped as not JSON
	a, b, c := emfJob("a", t0), emfJob("b", t0+60_000), emfJob("c", t0+120_000)
	for name, tc := range map[string]struct {
		files        map[string]string
		start, end   time.Time
		wantJobs     int
		wantWarnings []string // each must appear, with {dir} for the folder
	}{
		"empty file in glob": {
			files:        map[string]string{"1.emf": a + "\n", "2.emf": ""},
			wantJobs:     1,
			wantWarnings: []string{"file {dir}/2.emf has no job lines; skipped"},
		},
		"limiter-only file in glob": {
			files:        map[string]string{"1.emf": a + "\n", "2.emf": limiterLine + "\n" + limiterLine + "\n"},
			wantJobs:     1,
			wantWarnings: []string{"file {dir}/2.emf has no job lines; skipped"},
		},
		"line over the limit": {
			files:        map[string]string{"1.emf": a + "\n" + long + "\n" + b + "\n"},
			wantJobs:     2,
			wantWarnings: []string{"{dir}/1.emf:2: line longer than 1048576 bytes (the EMF limit); skipped"},
		},
		"line over the limit, last without newline": {
			files:        map[string]string{"1.emf": a + "\n" + b + "\n" + long},
			wantJobs:     2,
			wantWarnings: []string{"{dir}/1.emf:3: line longer than 1048576 bytes (the EMF limit); skipped"},
		},
		"line at the limit is read": {
			files:        map[string]string{"1.emf": a + "\r\n" + exact + "\r\n" + b + "\r\n"},
			wantJobs:     2,
			wantWarnings: []string{"1 line skipped as not tierq EMF job lines, e.g. {dir}/1.emf:2: not a JSON object"},
		},
		"overlapping exports": {
			files:        map[string]string{"1.emf": a + "\n" + b + "\n", "2.emf": b + "\n" + c + "\n" + c + "\n"},
			wantJobs:     3,
			wantWarnings: []string{"2 duplicate job lines (same JobId and Timestamp) dropped: each job is counted once"},
		},
		"same job, another time, is another line": {
			files:    map[string]string{"1.emf": a + "\n" + emfJob("a", t0+1) + "\n"},
			wantJobs: 2,
		},
		"start and end": {
			files:        map[string]string{"1.emf": a + "\n" + b + "\n" + c + "\n"},
			start:        time.UnixMilli(t0 + 60_000),
			end:          time.UnixMilli(t0 + 120_000),
			wantJobs:     1,
			wantWarnings: []string{"2 job lines outside --start 2026-11-24T12:01:00Z / --end 2026-11-24T12:02:00Z left out"},
		},
		"start only": {
			files:        map[string]string{"1.emf": a + "\n" + b + "\n" + c + "\n"},
			start:        time.UnixMilli(t0 + 60_000),
			wantJobs:     2,
			wantWarnings: []string{"1 job line outside --start 2026-11-24T12:01:00Z / --end open left out"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tc.files)
			d, err := (&sizing.EMFSource{Paths: []string{filepath.Join(dir, "*.emf")}, Tiers: tiering.Default(), Start: tc.start, End: tc.end}).Series(t.Context())
			if err != nil {
				t.Fatalf("Series() error %v, want warnings and a report", err)
			}
			if got := jobCount(d); got != tc.wantJobs {
				t.Errorf("%d jobs, want %d", got, tc.wantJobs)
			}
			for _, w := range tc.wantWarnings {
				w = strings.ReplaceAll(w, "{dir}", dir)
				if !hasWarning(d.Warnings, w) {
					t.Errorf("warnings %q lack %q", d.Warnings, w)
				}
			}
			if len(tc.wantWarnings) == 0 && len(d.Warnings) != 0 {
				t.Errorf("warnings %q, want none", d.Warnings)
			}
		})
	}
}

func TestEMFSourceNoJobLinesAnywhere(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"1.emf": "", "2.emf": limiterLine + "\n"})
	_, err := (&sizing.EMFSource{Paths: []string{filepath.Join(dir, "*.emf")}, Tiers: tiering.Default()}).Series(t.Context())
	if err == nil || !contains(err.Error(), "no tierq EMF job lines in any file") {
		t.Errorf("Series() = %v, want an error: there is nothing to size", err)
	}
}

func TestDirResultsRobustness(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../testdata/results/result-escalated.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{"a.json": string(raw), "copy.json": string(raw), "empty.json": ""})
	d, err := (&sizing.DirResults{Dir: dir}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := jobCount(d); got != 1 {
		t.Errorf("%d jobs, want 1: the copy is the same job", got)
	}
	for _, w := range []string{
		"file " + filepath.Join(dir, "empty.json") + " is empty, no result in it; skipped",
		"1 duplicate result (same job_id and finished_at) dropped: each job is counted once",
	} {
		if !hasWarning(d.Warnings, w) {
			t.Errorf("warnings %q lack %q", d.Warnings, w)
		}
	}
	d, err = (&sizing.DirResults{Dir: dir, Start: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if jobCount(d) != 0 || !hasWarning(d.Warnings, "outside --start 2100-01-01T00:00:00Z / --end open left out") {
		t.Errorf("%d jobs, warnings %q; want none kept and the filter named", jobCount(d), d.Warnings)
	}
}

// steady is a model's data over minutes, with tokens and cost per minute
// in every minute, or only every spikeEvery-th minute when it is above 1.
func steady(minutes int, tokens, cost float64, spikeEvery int) *sizing.Data {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := &sizing.ModelSeries{ModelID: haiku, Minutes: make([]sizing.Minute, minutes), Priced: true, ThrottlesKnown: true}
	for i := range s.Minutes {
		if spikeEvery <= 1 || i%spikeEvery == 0 {
			s.Minutes[i] = sizing.Minute{InputTokens: tokens, Requests: 1, Throttles: 1, CostUSD: cost}
		}
	}
	return &sizing.Data{Source: "emf", Start: start, End: start.Add(time.Duration(minutes) * time.Minute), Models: []*sizing.ModelSeries{s}}
}

// The days printed and the 30-day rule must agree: 29.96 days is short.
func TestDaysAgreeWithThirtyDayRule(t *testing.T) {
	t.Parallel()
	tiers := tiering.Default()
	tiers.Provisioned = map[string]tiering.Provisioned{haiku: {TokensPerMinutePerUnit: 1000, HourlyPricePerUnit: tiering.ProvisionedPrices{OneMonth: 0.001}}}
	for name, tc := range map[string]struct {
		minutes     int
		wantDays    string
		wantVerdict string
	}{
		"29.96 days": {43142, "29.9 days", sizing.VerdictInsufficientData},
		"30.0 days":  {43200, "30 days", sizing.VerdictProvisioned},
		"30.08 days": {43320, "30.1 days", sizing.VerdictProvisioned},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep, err := sizing.Analyze(steady(tc.minutes, 1000, 0.01, 1), sizing.DefaultConfig(tiers))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := rep.WriteText(&out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "("+tc.wantDays+")") {
				t.Errorf("text lacks (%s):\n%s", tc.wantDays, out.String())
			}
			if strings.Contains(out.String(), "(30 days)") && strings.Contains(out.String(), "fewer than 30") {
				t.Errorf("text says 30 days and fewer than 30:\n%s", out.String())
			}
			if got := rep.Models[0].Recommendation.Verdict; got != tc.wantVerdict {
				t.Errorf("verdict %s, want %s", got, tc.wantVerdict)
			}
		})
	}
}

// A break-even above 100% utilisation is said in every format and the term
// is never recommended, even when its monthly cost is below on-demand.
func TestBreakEvenAboveFullUtilisation(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		data     *sizing.Data
		hourly   float64
		wantUtil string
	}{
		// 1,000 tokens/min, 2 units of 1,000 → 50% busy; $219 a month
		// against $43.80 on-demand is 500% of today's traffic: 250% busy.
		"costs more than on-demand": {steady(31*1440, 1000, 0.001, 1), 0.15, "250%"},
		// Spikes 4% of minutes: P95 is 0, so 1 unit; its mean load is 40
		// times its capacity. $730 a month is below on-demand, but only
		// at more than 100% busy.
		"cheaper but beyond capacity": {steady(31*1440, 1_000_000, 1, 25), 1, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tiers := tiering.Default()
			tiers.Provisioned = map[string]tiering.Provisioned{haiku: {TokensPerMinutePerUnit: 1000, HourlyPricePerUnit: tiering.ProvisionedPrices{OneMonth: tc.hourly}}}
			rep, err := sizing.Analyze(tc.data, sizing.DefaultConfig(tiers))
			if err != nil {
				t.Fatal(err)
			}
			m := rep.Models[0]
			if m.Recommendation.Verdict != sizing.VerdictOnDemand || !contains(m.Recommendation.Summary, "cannot pay at this traffic") {
				t.Errorf("recommendation %+v, want on-demand saying the term cannot pay", m.Recommendation)
			}
			var term *sizing.TermCost
			for i := range m.Sizing.Terms {
				if m.Sizing.Terms[i].Priced {
					term = &m.Sizing.Terms[i]
				}
			}
			if term == nil || !term.CannotPay {
				t.Fatalf("terms %+v, want the priced one marked cannot pay", m.Sizing.Terms)
			}
			var text, js, html bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			if err := rep.WriteHTML(&html); err != nil {
				t.Fatal(err)
			}
			if !contains(text.String(), tc.wantUtil+" (cannot pay at this traffic)") {
				t.Errorf("text table lacks %q:\n%s", tc.wantUtil+" (cannot pay at this traffic)", text.String())
			}
			if !contains(js.String(), `"cannot_pay": true`) {
				t.Errorf("JSON lacks cannot_pay:\n%s", js.String())
			}
			if !contains(html.String(), "<b>(cannot pay at this traffic)</b>") {
				t.Error("HTML terms table does not say the term cannot pay")
			}
		})
	}
}

// One stray timestamp (1970, or decades ahead) must not make the series a
// minute per minute of the years between: the span is refused, with the way
// out, and --start/--end keep the real window.
func TestStrayTimestampSpanIsRefused(t *testing.T) {
	t.Parallel()
	// A year-9999 stamp: a span that would overflow a time.Duration.
	far := writeFiles(t, map[string]string{"a.emf": emfJob("real", 1795567466292) + "\n" + emfJob("stray", 253402300799000) + "\n"})
	if _, err := (&sizing.EMFSource{Paths: []string{filepath.Join(far, "*.emf")}, Tiers: tiering.Default()}).Series(t.Context()); err == nil ||
		!contains(err.Error(), "--start and --end") {
		t.Fatalf("Series() with a year-9999 line = %v, want the span refused", err)
	}
	dir := writeFiles(t, map[string]string{"a.emf": emfJob("real", 1795567466292) + "\n" + emfJob("stray", 1000) + "\n"})
	src := &sizing.EMFSource{Paths: []string{filepath.Join(dir, "*.emf")}, Tiers: tiering.Default()}
	if _, err := src.Series(t.Context()); err == nil || !contains(err.Error(), "--start and --end") {
		t.Fatalf("Series() = %v, want the span refused, naming --start and --end", err)
	}
	src.Start = time.UnixMilli(1795567466292).Add(-time.Hour)
	d, err := src.Series(t.Context())
	if err != nil || jobCount(d) != 1 {
		t.Errorf("with --start: %v, %d jobs; want the real job only", err, jobCount(d))
	}
}
