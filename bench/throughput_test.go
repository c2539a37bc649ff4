package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/demo"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/worker"
)

// strategy is one way of calling the model, set through the worker's own
// settings; nothing else differs between strategies.
type strategy struct {
	Name                string `json:"name"`
	Description         string `json:"description"`
	Limiter             string `json:"limiter"`
	ModelConcurrency    int    `json:"model_concurrency"`
	MaxModelConcurrency int    `json:"max_model_concurrency,omitempty"`
	Concurrency         int    `json:"concurrency"`
	// SDKRetry is "" when the SDK tries each call once and the pipeline
	// snoozes throttles itself (tierq's normal setting), else the retry mode
	// of the SDK client: "standard" (3 attempts) or "adaptive".
	SDKRetry string `json:"sdk_retry,omitempty"`
}

var strategies = []strategy{
	{Name: "fixed-4", Limiter: "fixed", ModelConcurrency: 4, Concurrency: 8,
		Description: "fixed limit of 4 calls per model, 8 jobs per worker; SDK tries once, the pipeline snoozes throttles with its own backoff"},
	{Name: "fixed-64+sdk-standard", Limiter: "fixed", ModelConcurrency: 64, Concurrency: 64, SDKRetry: "standard",
		Description: "fixed limit of 64, 64 jobs per worker; the SDK's standard retryer (3 attempts) retries throttles, then the pipeline snoozes"},
	{Name: "fixed-64+sdk-adaptive", Limiter: "fixed", ModelConcurrency: 64, Concurrency: 64, SDKRetry: "adaptive",
		Description: "fixed limit of 64, 64 jobs per worker; the SDK's adaptive retry mode (client-side CUBIC rate limit, 3 attempts), then the pipeline snoozes"},
	{Name: "tierq-adaptive", Limiter: "adaptive", ModelConcurrency: 4, MaxModelConcurrency: 64, Concurrency: 64,
		Description: "tierq's adaptive limiter (AIMD on throttles with a learned token budget), starting at 4, at most 64; SDK tries once"},
}

// scenario is one load pattern, counted in quota minutes.
type scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Workers     int    `json:"workers"`
	Minutes     int    `json:"minutes"`
	// WarmUp minutes are left out of goodput, throttle and latency figures.
	WarmUp int `json:"warm_up_minutes"`
	// HalveAt is the minute at whose start the quota is halved; 0 never.
	HalveAt int `json:"halve_at_minute,omitempty"`
}

var scenarios = []scenario{
	{Name: "steady", Workers: 1, Minutes: 12, WarmUp: 3,
		Description: "one worker, a backlog that never runs dry, a constant quota"},
	{Name: "quota-halved", Workers: 1, Minutes: 18, WarmUp: 3, HalveAt: 6,
		Description: "as steady, then RPM and TPM halve at the start of minute 6 (simulator SetQuota factor 0.5)"},
	{Name: "three-workers", Workers: 3, Minutes: 12, WarmUp: 3,
		Description: "three workers (each its own clients and limiter, as separate processes) share the queue and one quota"},
}

// Targets issue 4 sets for tierq's adaptive limiter.
const (
	targetSteadyGoodput  = 0.95
	targetSteadyThrottle = 0.03
	targetReconvergeMin  = 10
	targetReconvergeTol  = 0.05
	targetSharedGoodput  = 0.90
	targetMinShare       = 0.20
	// A throttle storm: more than this share of attempts throttled in the
	// stormMinutes after the quota change.
	stormThreshold = 0.10
	stormMinutes   = 3
)

// defaultMinute is the compressed quota minute. Latency scales with it, so
// calls take the same share of a minute as on Bedrock; what does not scale
// is every wait measured in real time (the limiter's backoff and drop
// half-life, the pipeline's backoff, the SDK's retry delays and adaptive
// token bucket), which therefore weighs more here than on Bedrock. It
// matters: with a 2s minute the SDK's adaptive mode reached about half of
// the bound and fixed-4 about 72%, against about 100% and 88% with 10s.
// 10s keeps the distortion to 6× while the matrix takes about three
// minutes, because every run goes at once: each has its own simulator, so
// they share no quota, and together they use about 15% of two cores.
// TIERQ_BENCH_MINUTE overrides it (a Go duration).
const defaultMinute = 10 * time.Second

func benchMinute() (time.Duration, error) {
	v := os.Getenv("TIERQ_BENCH_MINUTE")
	if v == "" {
		return defaultMinute, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("TIERQ_BENCH_MINUTE=%q: want a duration of at least 1s", v)
	}
	return d, nil
}

// run is one strategy in one scenario: its own simulator (so its own
// quota), queue and bucket, and its workers.
type run struct {
	strategy strategy
	scenario scenario
	minute   time.Duration

	st      *demo.Stack
	queues  demo.Queues
	bucket  string
	workers []*app.Worker
	ids     []string

	// Filled while and after it runs.
	t0          time.Time
	samples     []simSample // cumulative counters near the end of each minute
	limits      []limitSample
	results     []jobv1.Result
	workerStats []worker.Stats
	queueLeft   int
}

// simSample is the simulator's view of the bench model near the end of a
// quota minute: cumulative counters and the minute's quota use.
type simSample struct {
	Requests     int64 `json:"requests"`
	Accepted     int64 `json:"accepted"`
	Throttled    int64 `json:"throttled"`
	WindowTokens int   `json:"window_tokens"`
	TPM          int   `json:"tpm"`
	RPM          int   `json:"rpm"`
}

// limitSample is one worker's adaptive limiter state at a moment.
type limitSample struct {
	Minute      float64 `json:"minute"`
	Worker      string  `json:"worker"`
	Limit       int     `json:"limit"`
	TokenBudget int     `json:"token_budget"`
	InFlight    int     `json:"in_flight"`
	Waiting     int     `json:"waiting"`
	Drops       int64   `json:"drops"`
}

func newRun(ctx context.Context, sc scenario, s strategy, minute time.Duration, jobs [][]byte, tiers string) (*run, error) {
	st, err := demo.NewStack(simConfig(minute))
	if err != nil {
		return nil, err
	}
	r := &run{strategy: s, scenario: sc, minute: minute, st: st}
	queue, bucket := runNames("bench-" + sc.Name + "-" + s.Name[:min(len(s.Name), 8)])
	queue = strings.NewReplacer("+", "-").Replace(queue)
	bucket = strings.NewReplacer("+", "-").Replace(bucket)
	if r.queues, err = st.CreateQueues(ctx, queue, 50); err != nil {
		return r, err
	}
	r.bucket = bucket
	if err := st.CreateBuckets(ctx, bucket); err != nil {
		return r, err
	}
	if err := enqueue(ctx, st.SQS, r.queues.URL, jobs, 8); err != nil {
		return r, err
	}
	for i := range sc.Workers {
		id := fmt.Sprintf("w%d", i+1)
		w, err := newWorker(ctx, st, s, id, r.queues, bucket, tiers, minute)
		if err != nil {
			return r, err
		}
		r.workers = append(r.workers, w)
		r.ids = append(r.ids, id)
	}
	return r, nil
}

func (r *run) close() {
	if r.st != nil {
		r.st.Close()
	}
}

// execute starts the workers at t0 (a quota-minute boundary), samples the
// simulator and limiters, halves the quota when the scenario says so, stops
// the workers after the scenario's minutes and collects the results.
func (r *run) execute(ctx context.Context, t0 time.Time) error {
	r.t0 = t0
	if !sleepUntil(ctx, t0) {
		return ctx.Err()
	}
	end := t0.Add(time.Duration(r.scenario.Minutes) * r.minute)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg errgroup.Group
	for _, w := range r.workers {
		wg.Go(func() error { return w.Run(wctx) })
	}

	var side sync.WaitGroup
	side.Go(func() { r.sampleSim(wctx) })
	if r.workers[0].Limiter != nil {
		side.Go(func() { r.sampleLimits(wctx) })
	}
	var quotaErr error
	if h := r.scenario.HalveAt; h > 0 {
		side.Go(func() {
			if sleepUntil(wctx, t0.Add(time.Duration(h)*r.minute)) {
				_, quotaErr = r.st.Sim.SetQuota(bedrocksim.QuotaChange{ModelID: benchModel, Factor: ptr(0.5)})
			}
		})
	}
	sleepUntil(ctx, end)
	stop()
	werr := wg.Wait()
	side.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("%s/%s worker: %w", r.scenario.Name, r.strategy.Name, werr)
	}
	if quotaErr != nil {
		return fmt.Errorf("halve the quota: %w", quotaErr)
	}
	for _, w := range r.workers {
		r.workerStats = append(r.workerStats, w.Stats())
	}
	var err error
	if r.queueLeft, err = queueDepth(ctx, r.st.SQS, r.queues.URL); err != nil {
		return err
	}
	if r.results, err = readResults(ctx, r.st.S3, r.bucket); err != nil {
		return err
	}
	return nil
}

// sampleSim records the simulator's counters 50ms before each minute ends,
// when the minute's quota use is nearly final.
func (r *run) sampleSim(ctx context.Context) {
	for k := 1; k <= r.scenario.Minutes; k++ {
		if !sleepUntil(ctx, r.t0.Add(time.Duration(k)*r.minute-50*time.Millisecond)) {
			return
		}
		m := r.st.Sim.Stats().Models[benchModel]
		var throttled int64
		for _, n := range m.Throttled {
			throttled += n
		}
		r.samples = append(r.samples, simSample{Requests: m.Requests, Accepted: m.Accepted, Throttled: throttled,
			WindowTokens: m.Window.Tokens, TPM: m.Quota.TPM, RPM: m.Quota.RPM})
	}
}

// sampleLimits records every worker's adaptive limiter ten times a minute.
func (r *run) sampleLimits(ctx context.Context) {
	tick := time.NewTicker(r.minute / 10)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			at := float64(now.Sub(r.t0)) / float64(r.minute)
			for i, w := range r.workers {
				for _, s := range w.Limiter.Snapshot() {
					if s.Model != benchModel {
						continue
					}
					r.limits = append(r.limits, limitSample{Minute: math.Round(at*100) / 100, Worker: r.ids[i],
						Limit: s.Limit, TokenBudget: s.TokenBudget, InFlight: s.InFlight, Waiting: s.Waiting, Drops: s.Drops})
				}
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

// minuteFigures are one quota minute of a run.
type minuteFigures struct {
	Minute      int     `json:"minute"`
	Jobs        int     `json:"jobs"`
	QuotaTokens int     `json:"quota_tokens"`
	TPM         int     `json:"tpm"`
	Goodput     float64 `json:"goodput"`
	Requests    int64   `json:"requests"`
	Throttled   int64   `json:"throttled"`
	// WindowFill is the simulator's count of the minute's quota use
	// (settled and reserved tokens) 50ms before it ended, over TPM.
	WindowFill float64 `json:"window_fill"`
	// PeakLimit is the highest adaptive limit any worker had in the minute
	// (tierq-adaptive only).
	PeakLimit int `json:"peak_limit,omitempty"`
}

// figures are a run's results, the table's row and the JSON's record.
type figures struct {
	Strategy string `json:"strategy"`
	Scenario string `json:"scenario"`
	// Window is the quota minutes [from, to) the figures cover: after the
	// warm-up, or after the quota change in quota-halved.
	Window [2]int `json:"window_minutes"`
	// Jobs completed (result written, status succeeded) in the window.
	Jobs          int     `json:"jobs"`
	Failed        int     `json:"failed_jobs"`
	JobsPerMinute float64 `json:"jobs_per_quota_minute"`
	// BoundJobsPerMinute is min(RPM, TPM / mean settled tokens) in the window.
	BoundJobsPerMinute float64 `json:"bound_jobs_per_quota_minute"`
	GoodputJobs        float64 `json:"goodput_jobs"`
	// TokensPerMinute counts input + output tokens; QuotaTokensPerMinute
	// input + output × burndown, what the quota counts.
	TokensPerMinute      float64 `json:"tokens_per_quota_minute"`
	QuotaTokensPerMinute float64 `json:"quota_tokens_per_quota_minute"`
	GoodputTokens        float64 `json:"goodput_tokens"`
	// Attempts and Throttled are the simulator's counts in the window: every
	// Converse call, SDK-internal retries included.
	Attempts          int64   `json:"attempts"`
	Throttled         int64   `json:"throttled"`
	ThrottledFraction float64 `json:"throttled_fraction"`
	// Job latency: receive to result written (timings.total_ms), of jobs
	// completed in the window. Time waiting in the queue is left out: every
	// job is queued at the start, so it measures the backlog, not the strategy.
	P50Ms float64 `json:"latency_p50_ms"`
	P99Ms float64 `json:"latency_p99_ms"`
	// MeanModelMs is the mean time a completed job spent in Converse
	// calls; for the SDK strategies it includes the SDK's own retries and
	// the sleeps between them.
	MeanModelMs float64 `json:"mean_model_ms"`

	// quota-halved only.
	GoodputBefore       *float64 `json:"goodput_before_change,omitempty"`
	ThrottledBefore     *float64 `json:"throttled_fraction_before_change,omitempty"`
	ReconvergeMinutes   *int     `json:"reconverge_quota_minutes,omitempty"`
	ReconvergeSeconds   *float64 `json:"reconverge_quota_seconds,omitempty"`
	Converged           *bool    `json:"reconverged,omitempty"`
	ThrottledAfter      *float64 `json:"throttled_fraction_first_minutes_after_change,omitempty"`
	PeakMinuteThrottled *float64 `json:"peak_minute_throttled_fraction_after_change,omitempty"`

	// three-workers only: each worker's share of the window's jobs.
	Shares   map[string]float64 `json:"worker_shares,omitempty"`
	MinShare *float64           `json:"min_worker_share,omitempty"`

	Minutes     []minuteFigures `json:"minutes"`
	QueueLeft   int             `json:"queue_left_at_end"`
	WorkerStats []worker.Stats  `json:"worker_stats"`
	Limits      []limitSample   `json:"limiter_samples,omitempty"`
}

// compute turns a run's samples and results into figures against the bound
// for the mix (mean settled tokens per job).
func (r *run) compute(meanSettled, meanReserve float64) figures {
	sc := r.scenario
	f := figures{Strategy: r.strategy.Name, Scenario: sc.Name, QueueLeft: r.queueLeft, WorkerStats: r.workerStats}
	mins := make([]minuteFigures, sc.Minutes)
	tokens := make([]int, sc.Minutes) // input + output of completed jobs
	failed := make([]int, sc.Minutes)
	latencies := make([][]float64, sc.Minutes)
	modelMs := make([]float64, sc.Minutes)
	byWorker := make([]map[string]int, sc.Minutes)
	for k := range mins {
		mins[k].Minute = k
		byWorker[k] = map[string]int{}
	}
	for _, res := range r.results {
		at := res.Timings.FinishedAt
		k := int(at.Sub(r.t0) / r.minute)
		if at.Before(r.t0) || k >= sc.Minutes {
			continue // finished after the run's end, while draining
		}
		if res.Status != jobv1.StatusSucceeded {
			failed[k]++
			continue
		}
		u := res.Usage
		mins[k].Jobs++
		mins[k].QuotaTokens += u.InputTokens + u.CacheWriteTokens + u.OutputTokens*quotaBurndown
		tokens[k] += u.InputTokens + u.OutputTokens
		latencies[k] = append(latencies[k], float64(res.Timings.TotalMs))
		modelMs[k] += float64(res.Timings.ModelMs)
		byWorker[k][res.Worker.ID]++
	}
	quotaAt := func(k int) (rpm, tpm int) {
		if sc.HalveAt > 0 && k >= sc.HalveAt {
			return quotaRPM / 2, quotaTPM / 2
		}
		return quotaRPM, quotaTPM
	}
	var prev simSample
	for k := range mins {
		_, mins[k].TPM = quotaAt(k)
		mins[k].Goodput = ratio(float64(mins[k].QuotaTokens), float64(mins[k].TPM))
		if k < len(r.samples) {
			s := r.samples[k]
			mins[k].Requests, mins[k].Throttled = s.Requests-prev.Requests, s.Throttled-prev.Throttled
			mins[k].WindowFill = ratio(float64(s.WindowTokens), float64(s.TPM))
			prev = s
		}
	}
	for _, l := range r.limits {
		if k := int(l.Minute); k >= 0 && k < sc.Minutes {
			mins[k].PeakLimit = max(mins[k].PeakLimit, l.Limit)
		}
	}
	f.Minutes = mins

	// window sets the figures for minutes [a, b).
	window := func(a, b int) {
		var jobs, qtok, tok, tpm, fails int
		var bound float64
		var req, thr int64
		var lat []float64
		var model float64
		for k := a; k < b; k++ {
			m := mins[k]
			jobs += m.Jobs
			qtok += m.QuotaTokens
			tok += tokens[k]
			tpm += m.TPM
			rpm, _ := quotaAt(k)
			bound += boundFor(rpm, m.TPM, meanSettled, meanReserve).JobsPerMinute
			req += m.Requests
			thr += m.Throttled
			lat = append(lat, latencies[k]...)
			model += modelMs[k]
			fails += failed[k]
		}
		n := float64(b - a)
		f.Window = [2]int{a, b}
		f.Jobs, f.Failed = jobs, fails
		f.JobsPerMinute = float64(jobs) / n
		f.BoundJobsPerMinute = bound / n
		f.GoodputJobs = ratio(float64(jobs), bound)
		f.TokensPerMinute = float64(tok) / n
		f.QuotaTokensPerMinute = float64(qtok) / n
		f.GoodputTokens = ratio(float64(qtok), float64(tpm))
		f.Attempts, f.Throttled = req, thr
		f.ThrottledFraction = ratio(float64(thr), float64(req))
		s := sortedCopy(lat)
		f.P50Ms, f.P99Ms = percentile(s, 50), percentile(s, 99)
		f.MeanModelMs = math.Round(ratio(model, float64(jobs)))
	}

	if h := sc.HalveAt; h > 0 {
		window(sc.WarmUp, h)
		f.GoodputBefore, f.ThrottledBefore = ptr(f.GoodputTokens), ptr(f.ThrottledFraction)
		g := make([]float64, len(mins))
		for k, m := range mins {
			g[k] = m.Goodput
		}
		m, ok := reconverge(g, h, targetReconvergeTol, 2)
		f.Converged = ptr(ok)
		if ok {
			f.ReconvergeMinutes = ptr(m)
			f.ReconvergeSeconds = ptr(float64(m) * 60)
		}
		var req, thr int64
		peak := 0.0
		for k := h; k < sc.Minutes; k++ {
			if k < h+stormMinutes {
				req += mins[k].Requests
				thr += mins[k].Throttled
			}
			peak = max(peak, ratio(float64(mins[k].Throttled), float64(mins[k].Requests)))
		}
		f.ThrottledAfter, f.PeakMinuteThrottled = ptr(ratio(float64(thr), float64(req))), ptr(peak)
		window(h, sc.Minutes)
	} else {
		window(sc.WarmUp, sc.Minutes)
	}

	if sc.Workers > 1 {
		counts := map[string]int{}
		total := 0
		for k := f.Window[0]; k < f.Window[1]; k++ {
			for id, n := range byWorker[k] {
				counts[id] += n
				total += n
			}
		}
		f.Shares = map[string]float64{}
		lowest := 1.0
		for _, id := range r.ids {
			share := ratio(float64(counts[id]), float64(total))
			f.Shares[id] = math.Round(share*1000) / 1000
			lowest = min(lowest, share)
		}
		f.MinShare = ptr(lowest)
	}
	f.Limits = r.limits
	return f
}

// target is one of issue 4's targets, measured.
type target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// throughputReport is results/throughput.json.
type throughputReport struct {
	Benchmark    string     `json:"benchmark"`
	Date         time.Time  `json:"date"`
	GoVersion    string     `json:"go_version"`
	Platform     string     `json:"platform"`
	CPUs         int        `json:"cpus"`
	Commit       string     `json:"commit,omitempty"`
	QuotaMinute  string     `json:"quota_minute"`
	LatencyScale float64    `json:"latency_scale"`
	ClockNote    string     `json:"clock_note"`
	Quota        quotaBound `json:"quota"`
	Model        string     `json:"model"`
	Burndown     int        `json:"output_burndown"`
	BoundFormula string     `json:"bound_formula"`
	JobMix       jobMix     `json:"job_mix"`
	// TokenMismatches counts completed jobs whose input or output tokens,
	// as the simulator counted them, differ from what the job set predicts:
	// a check that the bound is computed from the tokens really used.
	TokenMismatches int `json:"token_model_mismatches"`
	// NeededConcurrency is the calls in flight that carry the bound at the
	// model's own latency (Little's law: bound per minute × mean call time /
	// quota minute), from the steady runs that make one attempt per call.
	NeededConcurrency float64           `json:"needed_concurrency"`
	Definitions       map[string]string `json:"definitions"`
	Scenarios         []scenario        `json:"scenarios"`
	Strategies        []strategy        `json:"strategies"`
	WallSeconds       float64           `json:"wall_seconds"`
	// CPUUtilisation is the benchmark process's CPU time over wall time and
	// cores during the runs; near 1 the machine, not the strategies, limits.
	CPUUtilisation float64   `json:"cpu_utilisation"`
	Runs           []figures `json:"runs"`
	Targets        []target  `json:"targets"`
}

const boundFormula = "jobs per quota minute <= min(RPM, TPM / mean(input + output x burndown)); " +
	"goodput_tokens = quota tokens settled by completed jobs (input + output x burndown) / TPM, summed over the window's minutes; " +
	"goodput_jobs = completed jobs / bound jobs over the same minutes. Bedrock reserves input + maxTokens at admission and " +
	"settles to input + output x burndown; reservations only lower the bound (a call running across a minute is held at its " +
	"reservation in the next until it settles), and with this mix reservation and settlement are nearly equal."

// BenchmarkThroughput runs every strategy in every scenario once, all at the
// same time, each against its own simulator (its own quota), and reports
// them. b.N is ignored: one pass is the measurement; run it with
// -benchtime=1x.
func BenchmarkThroughput(b *testing.B) {
	if testing.Short() {
		b.Skip("the throughput benchmark runs for about four minutes; not under -short")
	}
	minute, err := benchMinute()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	longest := 0
	for _, sc := range scenarios {
		longest = max(longest, sc.Minutes)
	}
	// Enough jobs that no run's queue runs dry: the bound for the longest
	// run, a third more, plus what three workers of 64 slots can hold.
	probe, err := jobSet(200, jobSeed)
	if err != nil {
		b.Fatal(err)
	}
	perMinute := boundFor(quotaRPM, quotaTPM, mixOf(probe).MeanSettled, 0).JobsPerMinute
	n := int(perMinute*float64(longest)*4/3) + 3*64
	jobs, err := jobSet(n, jobSeed)
	if err != nil {
		b.Fatal(err)
	}
	mix := mixOf(jobs)
	bound := boundFor(quotaRPM, quotaTPM, mix.MeanSettled, mix.MeanReserve)
	bodies := make([][]byte, len(jobs))
	for i, j := range jobs {
		bodies[i] = j.body
	}
	tiers, err := tiersFile(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}

	var runs []*run
	defer func() {
		for _, r := range runs {
			r.close()
		}
	}()
	for _, sc := range scenarios {
		for _, s := range strategies {
			r, err := newRun(ctx, sc, s, minute, bodies, tiers)
			if r != nil {
				runs = append(runs, r)
			}
			if err != nil {
				b.Fatalf("set up %s/%s: %v", sc.Name, s.Name, err)
			}
		}
	}

	// Every run starts on the same quota-minute boundary, at least a second
	// away, so the simulator's windows and the harness's minutes coincide.
	t0 := time.Now().Add(time.Second).Truncate(minute).Add(minute)
	fmt.Fprintf(os.Stdout, "%d runs (%d scenarios × %d strategies) start %s, quota minute %s, longest %d minutes (%s)\n",
		len(runs), len(scenarios), len(strategies), t0.Format(time.TimeOnly), minute, longest,
		time.Duration(longest)*minute)
	cpu0 := cpuTime()
	b.ResetTimer()
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range runs {
		g.Go(func() error { return r.execute(gctx, t0) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	wall := time.Since(t0)
	cpu := cpuTime() - cpu0

	rep := throughputReport{
		Benchmark: "BenchmarkThroughput", Date: time.Now().UTC().Truncate(time.Second),
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
		Commit: commit(), QuotaMinute: minute.String(), LatencyScale: float64(minute) / float64(time.Minute),
		ClockNote: "quota minutes are compressed to " + minute.String() + " and model latency with them; " +
			"backoffs (limiter, pipeline, SDK) run in real time, so they weigh " +
			fmt.Sprintf("%.0f", float64(time.Minute)/float64(minute)) + "x more than against Bedrock; " +
			"'quota seconds' are quota minutes x 60",
		Quota: bound, Model: benchModel, Burndown: quotaBurndown, BoundFormula: boundFormula, JobMix: mix,
		Definitions: map[string]string{
			"goodput":        "fraction of what the quota allows in the window (see bound_formula); the table shows goodput_tokens",
			"throttled":      "throttled Converse attempts / all attempts, counted by the simulator (SDK-internal retries included)",
			"latency":        "receive to result written (result timings.total_ms) of jobs completed in the window",
			"reconverge":     fmt.Sprintf("quota minutes after the change until every later minute's goodput is within %.0f%% of the new bound (at least 2 such minutes observed); x60 in quota seconds", targetReconvergeTol*100),
			"throttle storm": fmt.Sprintf("more than %.0f%% of attempts throttled in the %d quota minutes after the change", stormThreshold*100, stormMinutes),
			"worker share":   "a worker's completed jobs / all completed jobs in the window",
		},
		Scenarios: scenarios, Strategies: strategies, WallSeconds: math.Round(wall.Seconds()*10) / 10,
		CPUUtilisation: math.Round(cpu.Seconds()/wall.Seconds()/float64(runtime.NumCPU())*100) / 100,
	}
	byID := map[string]benchJob{}
	for _, j := range jobs {
		byID[j.id] = j
	}
	var callMs, calls float64
	for _, r := range runs {
		f := r.compute(mix.MeanSettled, mix.MeanReserve)
		rep.Runs = append(rep.Runs, f)
		if r.scenario.Name == "steady" && r.strategy.SDKRetry == "" {
			callMs += f.MeanModelMs * float64(f.Jobs)
			calls += float64(f.Jobs)
		}
		for _, res := range r.results {
			j, ok := byID[res.JobID]
			if res.Status == jobv1.StatusSucceeded && (!ok || res.Usage.InputTokens != j.input || res.Usage.OutputTokens != j.output) {
				rep.TokenMismatches++
			}
		}
	}
	rep.NeededConcurrency = math.Round(bound.JobsPerMinute*ratio(callMs, calls)/float64(minute.Milliseconds())*10) / 10
	rep.Targets = evaluate(rep.Runs)

	printTable(os.Stdout, rep)
	if err := writeJSON(filepath.Join("results", "throughput.json"), rep); err != nil {
		b.Fatal(err)
	}
	report := func(sc, st string) *figures {
		for i := range rep.Runs {
			if rep.Runs[i].Scenario == sc && rep.Runs[i].Strategy == st {
				return &rep.Runs[i]
			}
		}
		return nil
	}
	b.ReportMetric(0, "ns/op")
	if f := report("steady", "tierq-adaptive"); f != nil {
		b.ReportMetric(f.GoodputTokens*100, "tierq-steady-goodput-pct")
		b.ReportMetric(f.ThrottledFraction*100, "tierq-steady-throttled-pct")
	}
	if f := report("quota-halved", "tierq-adaptive"); f != nil && f.ReconvergeSeconds != nil {
		b.ReportMetric(*f.ReconvergeSeconds, "tierq-reconverge-quota-s")
	}
	if f := report("three-workers", "tierq-adaptive"); f != nil {
		b.ReportMetric(f.GoodputTokens*100, "tierq-3w-goodput-pct")
		b.ReportMetric(*f.MinShare*100, "tierq-3w-min-share-pct")
	}
	if rep.TokenMismatches > 0 {
		b.Errorf("%d completed jobs used other token counts than the job set predicts: the bound is off", rep.TokenMismatches)
	}
	for _, r := range rep.Runs {
		if r.QueueLeft == 0 {
			b.Errorf("%s/%s: the queue ran dry; goodput is bounded by the job count, not the quota", r.Scenario, r.Strategy)
		}
	}
}

// evaluate checks tierq's adaptive limiter against issue 4's targets.
func evaluate(runs []figures) []target {
	get := func(sc, st string) *figures {
		for i := range runs {
			if runs[i].Scenario == sc && runs[i].Strategy == st {
				return &runs[i]
			}
		}
		return nil
	}
	pct := func(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }
	var out []target
	if f := get("steady", "tierq-adaptive"); f != nil {
		out = append(out,
			target{"steady goodput", "≥ " + pct(targetSteadyGoodput), pct(f.GoodputTokens), f.GoodputTokens >= targetSteadyGoodput},
			target{"steady throttled attempts", "≤ " + pct(targetSteadyThrottle), pct(f.ThrottledFraction), f.ThrottledFraction <= targetSteadyThrottle})
	}
	for _, sc := range scenarios {
		t := get(sc.Name, "tierq-adaptive")
		if t == nil {
			continue
		}
		best, bestName := -1.0, ""
		for _, s := range strategies {
			if o := get(sc.Name, s.Name); o != nil && s.Name != "tierq-adaptive" && o.GoodputTokens > best {
				best, bestName = o.GoodputTokens, s.Name
			}
		}
		out = append(out, target{sc.Name + ": goodput above every other strategy",
			"> " + pct(best) + " (" + bestName + ")",
			fmt.Sprintf("%s (%+.1f points)", pct(t.GoodputTokens), (t.GoodputTokens-best)*100), t.GoodputTokens > best})
	}
	if f := get("quota-halved", "tierq-adaptive"); f != nil {
		got := "never"
		if f.ReconvergeMinutes != nil {
			got = fmt.Sprintf("%d quota minutes (%.0f quota s)", *f.ReconvergeMinutes, *f.ReconvergeSeconds)
		}
		out = append(out,
			target{"re-converge within 5% of the halved bound", fmt.Sprintf("< %d quota minutes", targetReconvergeMin), got,
				f.ReconvergeMinutes != nil && *f.ReconvergeMinutes < targetReconvergeMin},
			target{"no throttle storm after the change", fmt.Sprintf("≤ %s throttled in the first %d minutes", pct(stormThreshold), stormMinutes),
				fmt.Sprintf("%s (peak minute %s)", pct(*f.ThrottledAfter), pct(*f.PeakMinuteThrottled)), *f.ThrottledAfter <= stormThreshold})
	}
	if f := get("three-workers", "tierq-adaptive"); f != nil {
		out = append(out,
			target{"three workers: aggregate goodput", "≥ " + pct(targetSharedGoodput), pct(f.GoodputTokens), f.GoodputTokens >= targetSharedGoodput},
			target{"three workers: smallest share", "≥ " + pct(targetMinShare), pct(*f.MinShare), *f.MinShare >= targetMinShare})
	}
	return out
}

func printTable(w io.Writer, rep throughputReport) {
	fmt.Fprintf(w, "\nquota %d RPM, %d TPM on %s (burndown %d); quota minute %s; bound %.1f jobs per quota minute (%s binds, %.0f quota tokens a job)\n",
		rep.Quota.RPM, rep.Quota.TPM, rep.Model, rep.Burndown, rep.QuotaMinute, rep.Quota.JobsPerMinute, rep.Quota.Binding, rep.Quota.MeanSettled)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tstrategy\twindow\tjobs/qmin\tbound\tgoodput\ttokens/qmin\tthrottled\tp50 ms\tp99 ms\tre-converge\tshares\t")
	for _, f := range rep.Runs {
		reconv, shares := "", ""
		if f.Converged != nil {
			reconv = "never"
			if f.ReconvergeSeconds != nil {
				reconv = fmt.Sprintf("%.0f qs", *f.ReconvergeSeconds)
			}
			reconv += fmt.Sprintf(" (storm %.0f%%)", *f.ThrottledAfter*100)
		}
		if f.Shares != nil {
			var parts []string
			for _, id := range slices.Sorted(maps.Keys(f.Shares)) {
				parts = append(parts, fmt.Sprintf("%.0f%%", f.Shares[id]*100))
			}
			shares = strings.Join(parts, "/")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d-%d\t%.1f\t%.1f\t%.1f%%\t%.0f\t%.1f%%\t%.0f\t%.0f\t%s\t%s\t\n",
			f.Scenario, f.Strategy, f.Window[0], f.Window[1], f.JobsPerMinute, f.BoundJobsPerMinute, f.GoodputTokens*100,
			f.TokensPerMinute, f.ThrottledFraction*100, f.P50Ms, f.P99Ms, reconv, shares)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntargets (tierq-adaptive):\n")
	for _, t := range rep.Targets {
		mark := "MET   "
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s %s: want %s, measured %s\n", mark, t.Name, t.Want, t.Measured)
	}
	fmt.Fprintf(w, "calls in flight that carry the bound at the model's latency (Little's law): %.1f\n", rep.NeededConcurrency)
	fmt.Fprintf(w, "wall %.0fs, CPU %.0f%% of %d cores\n\n", rep.WallSeconds, rep.CPUUtilisation*100, rep.CPUs)
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// commit is the checked-out commit, with "+dirty" when the tree has
// changes; empty when git is not there. Read-only git commands.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "+dirty"
	}
	return c
}
