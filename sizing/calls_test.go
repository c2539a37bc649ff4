package sizing_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
)

// callsTiers prices the per-call tests' models with round figures: economy
// $1 in / $2 out per million, premium $3 / $15, and the premium tier's
// spillover model $0.50 / $1.50.
const callsTiers = `
tiers:
  - name: economy
    model_id: m-eco
    context_window: 100000
    max_output_tokens: 8192
    system_prompts: {default: "Do the task."}
    prices: {input_per_mtok: 1, output_per_mtok: 2}
  - name: premium
    model_id: m-prem
    context_window: 100000
    max_output_tokens: 16384
    system_prompts: {default: "Do the task."}
    prices: {input_per_mtok: 3, output_per_mtok: 15}
provisioned:
  m-fb:
    on_demand: {input_per_mtok: 0.5, output_per_mtok: 1.5}
`

// testCall and testJob describe the per-call workload once, for both the
// EMF lines and the result objects written from it.
type testCall struct {
	at                  time.Duration // after callsT0
	tier, model, served string
	in, out, cw         int
	throttles           int
}

type testJob struct {
	id    string
	at    time.Duration // when the job finished
	tier  string        // the tier it finished on
	model string
	calls []testCall
}

var callsT0 = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

// callsWorkload: one escalated job (an economy call that used its 8,192
// output tokens, then premium), one spilled-over job (throttled three times
// on premium's model, answered by its fallback m-fb) and 19 plain economy
// jobs, one a minute.
func callsWorkload() []testJob {
	jobs := []testJob{
		{id: "esc", at: 81 * time.Second, tier: "premium", model: "m-prem", calls: []testCall{
			{at: 10 * time.Second, tier: "economy", model: "m-eco", served: "default", in: 1000, out: 8192},
			{at: 80 * time.Second, tier: "premium", model: "m-prem", served: "default", in: 1000, out: 500},
		}},
		{id: "sp", at: 5*time.Minute + 41*time.Second, tier: "premium", model: "m-fb", calls: []testCall{
			{at: 5*time.Minute + 20*time.Second, tier: "premium", model: "m-prem", throttles: 3},
			{at: 5*time.Minute + 40*time.Second, tier: "premium", model: "m-fb", served: "default", in: 200, out: 100},
		}},
	}
	for k := 1; k <= 19; k++ {
		at := time.Duration(k)*time.Minute + 30*time.Second
		jobs = append(jobs, testJob{id: fmt.Sprintf("j%d", k), at: at, tier: "economy", model: "m-eco", calls: []testCall{
			{at: at, tier: "economy", model: "m-eco", served: "default", in: 100, out: 50},
		}})
	}
	return jobs
}

// writeCallsEMF writes the workload as the worker's call and job lines.
func writeCallsEMF(t *testing.T, path string, jobs []testJob) {
	t.Helper()
	var b strings.Builder
	for _, j := range jobs {
		var in, out int
		for _, c := range j.calls {
			in, out = in+c.in, out+c.out
			fmt.Fprintf(&b, `{"_aws":{"Timestamp":%d},"Kind":"call","Tier":%q,"ModelId":%q,"ServiceTier":%q,"InputTokens":%d,"OutputTokens":%d,"CacheReadInputTokens":0,"CacheWriteInputTokens":%d,"CostUSD":0.01,"Throttles":%d,"JobId":%q,"Tenant":"acme"}`+"\n",
				callsT0.Add(c.at).UnixMilli(), c.tier, c.model, c.served, c.in, c.out, c.cw, c.throttles, j.id)
		}
		fmt.Fprintf(&b, `{"_aws":{"Timestamp":%d},"Kind":"job","Tier":%q,"ModelId":%q,"InputTokens":%d,"OutputTokens":%d,"CostUSD":0.02,"Throttles":0,"JobId":%q,"Status":"succeeded","Tenant":"acme"}`+"\n",
			callsT0.Add(j.at).UnixMilli(), j.tier, j.model, in, out, j.id)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeCallsResults writes the workload as result objects with calls.
func writeCallsResults(t *testing.T, dir string, jobs []testJob) {
	t.Helper()
	usage := func(in, out, cw int) string {
		return fmt.Sprintf(`{"input_tokens":%d,"output_tokens":%d,"cache_read_tokens":0,"cache_write_tokens":%d,"guardrail_units":{"content":0,"topics":0,"sensitive_info":0,"word":0}}`, in, out, cw)
	}
	const cost = `{"input_usd":0,"output_usd":0,"cache_read_usd":0,"cache_write_usd":0,"guardrail_usd":0,"total_usd":0.01}`
	for _, j := range jobs {
		var calls []string
		var in, out int
		for _, c := range j.calls {
			in, out = in+c.in, out+c.out
			calls = append(calls, fmt.Sprintf(`{"at":%q,"tier":%q,"model_id":%q,"service_tier":%q,"throttles":%d,"usage":%s,"cost":%s}`,
				callsT0.Add(c.at).Format(time.RFC3339Nano), c.tier, c.model, c.served, c.throttles, usage(c.in, c.out, c.cw), cost))
		}
		body := fmt.Sprintf(`{"version":"1","job_id":%q,"status":"succeeded","tier":%q,"model_id":%q,"usage":%s,"cost":%s,"calls":[%s],"attempts":%d,"timings":{"finished_at":%q},"metadata":{"tenant":"acme"}}`,
			j.id, j.tier, j.model, usage(in, out, 0), cost, strings.Join(calls, ","), len(j.calls), callsT0.Add(j.at).Format(time.RFC3339Nano))
		if err := os.WriteFile(filepath.Join(dir, j.id+".json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func loadCallsTiers(t *testing.T) *tiering.Config {
	t.Helper()
	c, err := tiering.Load([]byte(callsTiers))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPerCallAttribution reads the same workload from EMF call lines and
// from results with calls, and checks each call landed on its own model in
// the minute it ended, with the hand-computed figures.
func TestPerCallAttribution(t *testing.T) {
	t.Parallel()
	tiers := loadCallsTiers(t)
	dir := t.TempDir()
	emf := filepath.Join(dir, "metrics.emf")
	writeCallsEMF(t, emf, callsWorkload())
	results := filepath.Join(dir, "results")
	if err := os.Mkdir(results, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCallsResults(t, results, callsWorkload())

	for name, src := range map[string]sizing.Source{
		"emf":     &sizing.EMFSource{Paths: []string{emf}, Tiers: tiers},
		"results": &sizing.DirResults{Dir: results, Tiers: tiers},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := src.Series(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			// First record: the economy call at 12:00:10; last: j19 at
			// 12:19:30. So 20 minutes.
			if !d.Start.Equal(callsT0) || d.Minutes() != 20 {
				t.Fatalf("window %s + %d minutes, want %s + 20", d.Start, d.Minutes(), callsT0)
			}
			if !strings.Contains(d.CostBasis, "attributed to the model that made it") {
				t.Errorf("cost basis %q, want per-call attribution named", d.CostBasis)
			}
			rep, err := sizing.Analyze(d, sizing.DefaultConfig(tiers))
			if err != nil {
				t.Fatal(err)
			}
			byID := map[string]sizing.ModelReport{}
			for _, m := range rep.Models {
				byID[m.ModelID] = m
			}
			for _, c := range []struct {
				model                    string
				in, out, reqs            float64
				outP95, outMax           float64
				cost                     float64
				throttledMinutes         int
				firstMinuteIn, minute1In float64
			}{
				// m-eco: the escalated job's first call (1,000 in, 8,192 out,
				// minute 0) and j1..j19 (100 in, 50 out, minutes 1-19):
				// in 1,000 + 19 × 100 = 2,900; out 8,192 + 19 × 50 = 9,142;
				// 20 requests. Output per minute: nineteen 50s and one
				// 8,192, so P95 = rank ceil(0.95 × 20) = 19 = 50.
				// Cost 2,900 × $1/M + 9,142 × $2/M = 0.0029 + 0.018284.
				{"m-eco", 2900, 9142, 20, 50, 8192, 0.021184, 0, 1000, 100},
				// m-prem: only the escalated job's second call (1,000 in, 500
				// out, minute 1) and the spilled job's throttled call
				// (minute 5: 3 throttles, no tokens, no request). Output
				// P95 = rank 19 of nineteen 0s and one 500 = 0.
				// Cost 1,000 × $3/M + 500 × $15/M = 0.003 + 0.0075.
				{"m-prem", 1000, 500, 1, 0, 500, 0.0105, 1, 0, 1000},
				// m-fb: the spilled job's answer, 200 in / 100 out:
				// 200 × $0.5/M + 100 × $1.5/M = 0.0001 + 0.00015.
				{"m-fb", 200, 100, 1, 0, 100, 0.00025, 0, 0, 0},
			} {
				m, ok := byID[c.model]
				if !ok {
					t.Errorf("no model %s in %v", c.model, rep.Models)
					continue
				}
				if m.InputTokens != c.in || m.OutputTokens != c.out || m.Requests != c.reqs {
					t.Errorf("%s: %v in, %v out, %v requests; want %v, %v, %v", c.model, m.InputTokens, m.OutputTokens, m.Requests, c.in, c.out, c.reqs)
				}
				if m.OutputTPM.P95 != c.outP95 || m.OutputTPM.Max != c.outMax {
					t.Errorf("%s: output P95 %v, max %v; want %v, %v", c.model, m.OutputTPM.P95, m.OutputTPM.Max, c.outP95, c.outMax)
				}
				if !near(m.OnDemand.TotalUSD, c.cost) {
					t.Errorf("%s: on-demand %v, want %v", c.model, m.OnDemand.TotalUSD, c.cost)
				}
				if m.ThrottledMinutes != c.throttledMinutes || !m.ThrottlesKnown {
					t.Errorf("%s: %d throttled minutes (known %v), want %d, known", c.model, m.ThrottledMinutes, m.ThrottlesKnown, c.throttledMinutes)
				}
				if q := m.Quota; q == nil || q.RequestsAre != "answered calls" {
					t.Errorf("%s: quota figures %+v, want requests counted as answered calls", c.model, q)
				}
			}
			// The tier table counts jobs where they finished (premium: esc
			// and sp; economy: j1..j19) and tokens where each call ran
			// (economy: 2,900 in / 9,142 out; premium: 1,000 + 200 in, 500
			// + 100 out).
			want := map[string][3]int64{"economy": {19, 2900, 9142}, "premium": {2, 1200, 600}}
			for _, row := range rep.Tiers {
				w := want[row.Name]
				if int64(row.Jobs) != w[0] || row.InputTokens != w[1] || row.OutputTokens != w[2] {
					t.Errorf("tier %s: %d jobs, %d in, %d out; want %v", row.Name, row.Jobs, row.InputTokens, row.OutputTokens, w)
				}
			}
		})
	}
}

// TestCallLineDedupe reads two overlapping exports: each call and job line
// counts once, and both kinds of duplicate are named.
func TestCallLineDedupe(t *testing.T) {
	t.Parallel()
	tiers := loadCallsTiers(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.emf"), filepath.Join(dir, "b.emf")
	writeCallsEMF(t, a, callsWorkload())
	writeCallsEMF(t, b, callsWorkload())
	d, err := (&sizing.EMFSource{Paths: []string{a, b}, Tiers: tiers}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var in float64
	for _, m := range d.Models {
		for _, x := range m.Minutes {
			in += x.InputTokens
		}
	}
	// 2,900 + 1,000 + 200 input tokens, once.
	if in != 4100 {
		t.Errorf("input tokens %v, want 4,100 (each call once)", in)
	}
	// 23 call lines (2 + 2 + 19) and 21 job lines, each read twice.
	for _, w := range []string{
		"23 duplicate call lines (same JobId, ModelId and Timestamp) dropped",
		"21 duplicate job lines (same JobId and Timestamp) dropped",
	} {
		if !strings.Contains(strings.Join(d.Warnings, "\n"), w) {
			t.Errorf("warnings %q lack %q", d.Warnings, w)
		}
	}
}

// TestMixedEMFFiles: a file of an older worker (no Kind) keeps the old
// attribution beside a file with call lines, and the cost basis says so.
func TestMixedEMFFiles(t *testing.T) {
	t.Parallel()
	tiers := loadCallsTiers(t)
	dir := t.TempDir()
	calls := filepath.Join(dir, "new.emf")
	writeCallsEMF(t, calls, callsWorkload())
	old := filepath.Join(dir, "old.emf")
	// An escalated job from an older worker: all 9,192 tokens on premium.
	line := fmt.Sprintf(`{"_aws":{"Timestamp":%d},"Tier":"premium","ModelId":"m-prem","InputTokens":2000,"OutputTokens":8692,"CostUSD":0.1,"Throttles":0,"JobId":"old-1","Status":"succeeded","Tenant":"acme"}`+"\n",
		callsT0.Add(3*time.Minute).UnixMilli())
	if err := os.WriteFile(old, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := (&sizing.EMFSource{Paths: []string{calls, old}, Tiers: tiers}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.CostBasis, "1 of 2 files have call lines") {
		t.Errorf("cost basis %q, want the mix named", d.CostBasis)
	}
	for _, m := range d.Models {
		if m.ModelID != "m-prem" {
			continue
		}
		// Minute 3: the old job's 8,692 output tokens, on its final model.
		if got := m.Minutes[3].OutputTokens; got != 8692 {
			t.Errorf("m-prem minute 3 output %v, want 8,692 from the old job line", got)
		}
		if !m.CallRecords || !m.JobRecords {
			t.Errorf("m-prem call records %v, job records %v; want both", m.CallRecords, m.JobRecords)
		}
	}
}

// TestUnknownKindSkipped: a tierq line of a kind sizing does not know is
// skipped and counted, not read as a job.
func TestUnknownKindSkipped(t *testing.T) {
	t.Parallel()
	tiers := loadCallsTiers(t)
	p := filepath.Join(t.TempDir(), "m.emf")
	writeCallsEMF(t, p, callsWorkload()[:1])
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `{"_aws":{"Timestamp":%d},"Kind":"batch","ModelId":"m-eco","InputTokens":5,"JobId":"b"}`+"\n", callsT0.UnixMilli())
	f.Close()
	d, err := (&sizing.EMFSource{Paths: []string{p}, Tiers: tiers}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(d.Warnings, "\n"); !strings.Contains(w, `unknown Kind "batch"`) {
		t.Errorf("warnings %q, want the unknown kind named", d.Warnings)
	}
}

// A result's call stamped far outside the others (a corrupt or hostile
// result) is refused like any stray timestamp, and --end leaves it out: a
// call is kept by its own time, as EMF call lines are.
func TestResultCallOutsideTheWindow(t *testing.T) {
	t.Parallel()
	jobs := callsWorkload()
	jobs[0].calls[0].at = 9000 * 24 * time.Hour // about 25 years after the job
	dir := t.TempDir()
	writeCallsResults(t, dir, jobs)
	src := &sizing.DirResults{Dir: dir, Tiers: loadCallsTiers(t)}
	if _, err := src.Series(t.Context()); err == nil || !strings.Contains(err.Error(), "--start and --end") {
		t.Fatalf("Series() = %v, want the span refused, naming --start and --end", err)
	}
	src.End = callsT0.Add(time.Hour)
	d, err := src.Series(t.Context())
	if err != nil {
		t.Fatalf("with --end: %v", err)
	}
	if d.End.After(callsT0.Add(time.Hour)) {
		t.Errorf("window ends %s, want no later than --end", d.End)
	}
}
