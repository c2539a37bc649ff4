package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/awserr"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

// The overhead benchmark (issue 6): tierq's worker against a plain SDK loop
// doing the same work on the same emulators, at zero model latency, so what
// is left is each side's own cost per job.
const (
	// defaultOverheadJobs is a trial's size. The issue measured 20,000 jobs
	// a trial; 3,000 keep the 18 trials of `make bench` to about two
	// minutes on two cores, and a trial still runs for about as long as the
	// issue's did per concurrency. TIERQ_BENCH_JOBS overrides it.
	defaultOverheadJobs = 3_000
	// defaultOverheadRounds: each round runs every variant at every
	// concurrency once, in a rotated order. TIERQ_BENCH_ROUNDS overrides it.
	defaultOverheadRounds = 2
	// stallAfter ends a trial's measured window: no job finished for this
	// long while some are left means the rest are invisible in the queue
	// (a receive whose response was lost, see overheadReport.Stuck), and
	// come back only when their visibility timeout ends.
	stallAfter = 2 * time.Second
	// overheadTargetDefault and overheadTargetBest are the targets:
	// tierq's jobs/s as a share of the plain loop's at concurrency 8 (the
	// worker's default) and at the concurrency where tierq does best.
	overheadTargetDefault = 0.80
	overheadTargetBest    = 0.90
)

var overheadConcurrency = []int{8, 32, 64}

// The three variants of a trial.
const (
	variantLoop     = "loop"
	variantLoopHead = "loop+head"
	variantTierq    = "tierq"
)

var overheadVariants = []string{variantLoop, variantLoopHead, variantTierq}

// overheadTrial is one variant at one concurrency, once.
type overheadTrial struct {
	Variant     string `json:"variant"`
	Concurrency int    `json:"concurrency"`
	Round       int    `json:"round"`
	// Jobs finished (message deleted) within the measured window.
	Jobs    int     `json:"jobs"`
	Seconds float64 `json:"seconds"`
	// CPUSeconds is this process's user+system CPU time over the window.
	CPUSeconds float64 `json:"cpu_seconds"`
	JobsPerSec float64 `json:"jobs_per_second"`
	// CPUMsPer1000 is CPU milliseconds per 1,000 jobs.
	CPUMsPer1000 float64 `json:"cpu_ms_per_1000_jobs"`
	// Stuck jobs had not finished when the window closed: their messages
	// were invisible, most likely received by a ReceiveMessage whose
	// response was cut off and retried by the SDK.
	Stuck int `json:"stuck"`
	// ModelCalls the simulator answered during the trial; for tierq,
	// Results the pipeline wrote (the exactly-once check: calls = results).
	ModelCalls int64 `json:"model_calls"`
	Results    int64 `json:"results_written,omitempty"`
	// Receives are the ReceiveMessage calls that returned messages, and
	// PerReceive the messages each returned on average.
	Receives   int64   `json:"receives"`
	PerReceive float64 `json:"messages_per_receive"`
}

// overheadRow is one variant at one concurrency over every round.
type overheadRow struct {
	Variant      string  `json:"variant"`
	Concurrency  int     `json:"concurrency"`
	JobsPerSec   float64 `json:"jobs_per_second"`
	CPUMsPer1000 float64 `json:"cpu_ms_per_1000_jobs"`
	// OfLoop is jobs/s as a share of the plain loop's at the same
	// concurrency.
	OfLoop float64 `json:"share_of_loop"`
	Stuck  int     `json:"stuck"`
}

// overheadReport is results/overhead.json.
type overheadReport struct {
	Benchmark string    `json:"benchmark"`
	Date      time.Time `json:"date"`
	GoVersion string    `json:"go_version"`
	Platform  string    `json:"platform"`
	CPUs      int       `json:"cpus"`
	Commit    string    `json:"commit,omitempty"`
	Method    string    `json:"method"`
	JobsPerTr int       `json:"jobs_per_trial"`
	Rounds    int       `json:"rounds"`
	Tier      string    `json:"tier"`
	Model     string    `json:"model"`
	Guardrail string    `json:"guardrail"`
	Trials    []overheadTrial
	Rows      []overheadRow `json:"rows"`
	// AtDefault is tierq's share of the loop at concurrency 8; Best its
	// best share, at BestConcurrency.
	AtDefault       float64 `json:"share_at_default_concurrency"`
	Best            float64 `json:"best_share"`
	BestConcurrency int     `json:"best_concurrency"`
	TargetDefault   float64 `json:"target_share_at_default"`
	TargetBest      float64 `json:"target_best_share"`
	Met             bool    `json:"met"`
}

const overheadMethod = "Each trial enqueues its jobs into a fresh queue and bucket, then starts one variant and measures from " +
	"the start until the last job that finished before the queue went quiet: wall time, jobs deleted, and this process's " +
	"CPU time (getrusage RUSAGE_SELF, user+system). The emulators (kumo SQS and S3, the Bedrock simulator at zero latency, " +
	"no quota) run in a child process, so the CPU figure holds only the client side: the loop's or tierq's goroutines, the " +
	"SDK, and this benchmark's 10ms progress poll, which is the same for every variant. Trials alternate variants in a " +
	"rotated order each round; figures are the sum over rounds (jobs/s = jobs / seconds, CPU per 1,000 jobs = CPU / jobs)."

// BenchmarkOverhead runs, in alternating trials on the same emulators and the
// same job set, (a) a plain SDK loop: N goroutines each receive up to 10
// messages, call Converse with the tier's guardrail, write a small result with
// PutObject If-None-Match: * and delete the batch with DeleteMessageBatch; (b)
// the same loop with one HeadObject per job first; (c) tierq's worker built
// as `tierq worker` builds it (internal/app, default settings but the
// long-poll wait and the drain). It reports jobs/s and CPU per 1,000 jobs,
// side by side, and tierq as a share of the loop; results/overhead.json.
//
// The CPU profile of a run (go test -cpuprofile) carries pprof labels
// variant and concurrency, so one variant's profile is
// `go tool pprof -tagfocus=variant=tierq`.
func BenchmarkOverhead(b *testing.B) {
	if testing.Short() {
		b.Skip("the overhead benchmark runs 18 trials of thousands of jobs; not under -short")
	}
	n, err := envInt("TIERQ_BENCH_JOBS", defaultOverheadJobs)
	if err != nil {
		b.Fatal(err)
	}
	rounds, err := envInt("TIERQ_BENCH_ROUNDS", defaultOverheadRounds)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	emuBin, err := goBuild(ctx, b.TempDir(), "./bench/internal/emu", "emu")
	if err != nil {
		b.Fatal(err)
	}

	bodies, tier, err := overheadJobs(n)
	if err != nil {
		b.Fatal(err)
	}
	rep := overheadReport{Benchmark: "BenchmarkOverhead", Date: time.Now().UTC().Truncate(time.Second),
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
		Commit: commit(), Method: overheadMethod, JobsPerTr: n, Rounds: rounds,
		Tier: tier.Name, Model: tier.ModelID, Guardrail: tier.Guardrail.ID + ":" + tier.Guardrail.Version,
		TargetDefault: overheadTargetDefault, TargetBest: overheadTargetBest}
	variants, concs, err := overheadSelection()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for round := range rounds {
		for ci, conc := range concs {
			for k := range variants {
				v := variants[(k+round+ci)%len(variants)]
				tr, err := trial(ctx, emuBin, v, conc, bodies, tier)
				if err != nil {
					b.Fatalf("%s at %d: %v", v, conc, err)
				}
				tr.Round = round + 1
				b.Logf("round %d %-9s N=%-2d %5d jobs %6.2fs %6.0f jobs/s %5.0f ms CPU/1000 jobs, %d stuck, %d model calls, %.1f messages a receive",
					tr.Round, v, conc, tr.Jobs, tr.Seconds, tr.JobsPerSec, tr.CPUMsPer1000, tr.Stuck, tr.ModelCalls, tr.PerReceive)
				if v == variantTierq && tr.ModelCalls != tr.Results {
					b.Errorf("tierq at %d: %d model calls for %d results: a job paid twice", conc, tr.ModelCalls, tr.Results)
				}
				rep.Trials = append(rep.Trials, tr)
			}
		}
	}
	b.StopTimer()
	rep.summarise()
	printOverhead(os.Stdout, &rep)
	if err := writeJSON(filepath.Join("results", "overhead.json"), rep); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rep.AtDefault*100, "%loop@8")
	b.ReportMetric(rep.Best*100, "%loop-best")
}

// summarise sums the trials per variant and concurrency and compares tierq
// with the loop.
func (rep *overheadReport) summarise() {
	type sum struct {
		jobs        int
		secs, cpu   float64
		stuck       int
		variant     string
		concurrency int
	}
	sums := map[string]*sum{}
	var order []string
	for _, t := range rep.Trials {
		k := t.Variant + "@" + strconv.Itoa(t.Concurrency)
		s, ok := sums[k]
		if !ok {
			s = &sum{variant: t.Variant, concurrency: t.Concurrency}
			sums[k] = s
			order = append(order, k)
		}
		s.jobs += t.Jobs
		s.secs += t.Seconds
		s.cpu += t.CPUSeconds
		s.stuck += t.Stuck
	}
	rep.Rows = nil
	loop := map[int]float64{}
	for _, k := range order {
		s := sums[k]
		row := overheadRow{Variant: s.variant, Concurrency: s.concurrency, Stuck: s.stuck}
		if s.secs > 0 {
			row.JobsPerSec = float64(s.jobs) / s.secs
		}
		if s.jobs > 0 {
			row.CPUMsPer1000 = s.cpu * 1000 / float64(s.jobs) * 1000
		}
		if s.variant == variantLoop {
			loop[s.concurrency] = row.JobsPerSec
		}
		rep.Rows = append(rep.Rows, row)
	}
	slices.SortStableFunc(rep.Rows, func(a, b overheadRow) int {
		if a.Concurrency != b.Concurrency {
			return a.Concurrency - b.Concurrency
		}
		return slices.Index(overheadVariants, a.Variant) - slices.Index(overheadVariants, b.Variant)
	})
	rep.AtDefault, rep.Best, rep.BestConcurrency = 0, 0, 0
	for i := range rep.Rows {
		r := &rep.Rows[i]
		if l := loop[r.Concurrency]; l > 0 {
			r.OfLoop = r.JobsPerSec / l
		}
		if r.Variant != variantTierq {
			continue
		}
		if r.Concurrency == overheadConcurrency[0] {
			rep.AtDefault = r.OfLoop
		}
		if r.OfLoop > rep.Best {
			rep.Best, rep.BestConcurrency = r.OfLoop, r.Concurrency
		}
	}
	rep.Met = rep.AtDefault >= rep.TargetDefault && rep.Best >= rep.TargetBest
}

func printOverhead(w io.Writer, rep *overheadReport) {
	fmt.Fprintf(w, "\npipeline overhead: %d jobs a trial, %d rounds, tier %s (%s, guardrail %s), zero model latency\n\n",
		rep.JobsPerTr, rep.Rounds, rep.Tier, rep.Model, rep.Guardrail)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "N\tvariant\tjobs/s\tCPU ms / 1,000 jobs\t%% of loop\tstuck\t\n")
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\t%.1f%%\t%d\t\n", r.Concurrency, r.Variant, r.JobsPerSec, r.CPUMsPer1000, r.OfLoop*100, r.Stuck)
	}
	tw.Flush()
	mark := map[bool]string{true: "MET", false: "MISSED"}
	fmt.Fprintf(w, "\ntierq at N=8: %.1f%% of the loop (target %.0f%%: %s); best %.1f%% at N=%d (target %.0f%%: %s)\n\n",
		rep.AtDefault*100, rep.TargetDefault*100, mark[rep.AtDefault >= rep.TargetDefault],
		rep.Best*100, rep.BestConcurrency, rep.TargetBest*100, mark[rep.Best >= rep.TargetBest])
}

// overheadSelection is the variants and concurrencies to run: all of them,
// or those TIERQ_BENCH_VARIANTS (e.g. "tierq") and TIERQ_BENCH_CONCURRENCY
// (e.g. "8,64") name, to profile one of them alone.
func overheadSelection() ([]string, []int, error) {
	variants, concs := overheadVariants, overheadConcurrency
	if v := os.Getenv("TIERQ_BENCH_VARIANTS"); v != "" {
		variants = nil
		for _, name := range strings.Split(v, ",") {
			if !slices.Contains(overheadVariants, name) {
				return nil, nil, fmt.Errorf("TIERQ_BENCH_VARIANTS: %q is not one of %s", name, strings.Join(overheadVariants, ", "))
			}
			variants = append(variants, name)
		}
	}
	if v := os.Getenv("TIERQ_BENCH_CONCURRENCY"); v != "" {
		concs = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				return nil, nil, fmt.Errorf("TIERQ_BENCH_CONCURRENCY: %q is not a positive integer", f)
			}
			concs = append(concs, n)
		}
	}
	return variants, concs, nil
}

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}

// overheadText is the short document of every overhead job: a few
// sentences, nothing a guardrail masks or blocks.
const overheadText = "The regional team planned shipments across three warehouses and moved the spring schedule by a week. " +
	"Customers asked for clearer invoices; suppliers proposed longer contracts. The board approved a modest training budget. "

// overheadJobs returns n short summarize jobs and the tier tierq gives
// them, which the loop calls too.
func overheadJobs(n int) ([][]byte, tiering.Tier, error) {
	tiers := tiering.Default()
	d, err := tiers.Classify(tiering.NewFacts(tiering.TaskSummarize, overheadText))
	if err != nil {
		return nil, tiering.Tier{}, err
	}
	tier, _ := tiers.Tier(d.Tier)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i], err = json.Marshal(jobv1.Job{Version: jobv1.JobVersion, JobID: fmt.Sprintf("ovh-%06d", i),
			Task: tiering.TaskSummarize, Text: overheadText, Metadata: map[string]string{"tenant": "bench"}})
		if err != nil {
			return nil, tiering.Tier{}, err
		}
	}
	return bodies, tier, nil
}

// emulators is the child process serving kumo and the simulator, and
// clients for it.
type emulators struct {
	cmd     *exec.Cmd
	stdin   io.Closer
	simURL  string
	sqs     *sqs.Client
	s3      *s3.Client
	bedrock *bedrockruntime.Client
}

// startEmulators starts bin (bench/internal/emu) and waits for its
// endpoints.
func startEmulators(ctx context.Context, bin string) (*emulators, error) {
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start emulators: %w", err)
	}
	e := &emulators{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		e.stop()
		return nil, fmt.Errorf("read the emulators' endpoints: %w", err)
	}
	var urls struct{ Kumo, Sim string }
	if err := json.Unmarshal(line, &urls); err != nil || urls.Kumo == "" || urls.Sim == "" {
		e.stop()
		return nil, fmt.Errorf("emulators printed %q, want {\"kumo\":URL,\"sim\":URL}", line)
	}
	e.simURL = urls.Sim
	e.sqs, e.s3, e.bedrock = emulator.SQS(urls.Kumo), emulator.S3(urls.Kumo), emulator.Bedrock(urls.Sim)
	return e, nil
}

func (e *emulators) stop() {
	_ = e.stdin.Close()
	_ = e.cmd.Wait()
}

// goBuild builds the package pkg (relative to the module root) into
// dir/name.
func goBuild(ctx context.Context, dir, pkg, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("find the module root: not inside a module")
	}
	bin := filepath.Join(dir, name)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	build.Dir = filepath.Dir(gomod)
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return bin, nil
}

// modelCalls is the simulator's count of answered calls so far.
func (e *emulators) modelCalls(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.simURL+"/_sim/stats", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read simulator stats: %w", err)
	}
	defer resp.Body.Close()
	var st bedrocksim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("decode simulator stats: %w", err)
	}
	var n int64
	for _, m := range st.Models {
		n += m.Accepted
	}
	return n, nil
}

// progress is a variant's count of finished jobs.
type progress func() int64

// trial runs one variant at concurrency conc over bodies and measures it,
// on emulators of its own (started from emuBin), so no trial finds kumo
// holding the queues and objects of the ones before it.
func trial(ctx context.Context, emuBin, variant string, conc int, bodies [][]byte, tier tiering.Tier) (overheadTrial, error) {
	tr := overheadTrial{Variant: variant, Concurrency: conc}
	e, err := startEmulators(ctx, emuBin)
	if err != nil {
		return tr, err
	}
	defer e.stop()
	name := fmt.Sprintf("ovh-%s-%d", strings.ReplaceAll(variant, "+", "-"), conc)
	queue, bucket := runNames(name)
	qout, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queue),
		Attributes: map[string]string{"VisibilityTimeout": "60"}})
	if err != nil {
		return tr, fmt.Errorf("create queue: %w", err)
	}
	dlq, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queue + "-dlq")})
	if err != nil {
		return tr, fmt.Errorf("create dead-letter queue: %w", err)
	}
	url := aws.ToString(qout.QueueUrl)
	if _, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return tr, fmt.Errorf("create bucket: %w", err)
	}
	if err := enqueue(ctx, e.sqs, url, bodies, 8); err != nil {
		return tr, err
	}
	calls0, err := e.modelCalls(ctx)
	if err != nil {
		return tr, err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	q := &countingQueue{Client: e.sqs}
	var done progress
	var finished sync.WaitGroup
	var runErr error
	var tq *app.Worker
	switch variant {
	case variantLoop, variantLoopHead:
		l := &plainLoop{e: e, q: q, queue: url, bucket: bucket, tier: tier, head: variant == variantLoopHead}
		done = l.done.Load
		runtime.GC()
		finished.Go(func() {
			pprof.Do(runCtx, pprof.Labels("variant", variant, "concurrency", strconv.Itoa(conc)), func(ctx context.Context) {
				l.run(ctx, conc)
			})
		})
	case variantTierq:
		tq, err = app.New(app.Settings{
			QueueURL: url, DeadLetterQueueURL: aws.ToString(dlq.QueueUrl), ResultsBucket: bucket,
			Concurrency: conc, WorkerID: "bench-overhead", Version: "bench",
			// As in the other benchmarks: a short long-poll (kumo's waiter
			// does not wake for expired messages) and a short drain.
			WaitTime: time.Second, DrainTimeout: 3 * time.Second,
		}, app.Clients{Queue: q, Store: e.s3, Converser: e.bedrock}, io.Discard,
			// The JSON logs `tierq worker` writes, formatted and dropped.
			slog.New(slog.NewJSONHandler(io.Discard, nil)))
		if err != nil {
			return tr, err
		}
		if err := tq.Pipeline.Preflight(ctx); err != nil {
			return tr, err
		}
		done = func() int64 { return tq.Stats().Deleted }
		runtime.GC()
		finished.Go(func() {
			pprof.Do(runCtx, pprof.Labels("variant", variant, "concurrency", strconv.Itoa(conc)), func(ctx context.Context) {
				runErr = tq.Run(ctx)
			})
		})
	default:
		return tr, fmt.Errorf("unknown variant %q", variant)
	}
	w := measure(ctx, done, int64(len(bodies)), stallAfter, 10*time.Millisecond)
	stop()
	finished.Wait()
	if runErr != nil {
		return tr, runErr
	}
	tr.Jobs, tr.Seconds, tr.CPUSeconds = int(w.jobs), w.wall.Seconds(), w.cpu.Seconds()
	tr.Stuck = len(bodies) - int(done())
	if tr.Seconds > 0 {
		tr.JobsPerSec = float64(tr.Jobs) / tr.Seconds
	}
	if tr.Jobs > 0 {
		tr.CPUMsPer1000 = tr.CPUSeconds * 1000 / float64(tr.Jobs) * 1000
	}
	calls1, err := e.modelCalls(ctx)
	if err != nil {
		return tr, err
	}
	tr.ModelCalls = calls1 - calls0
	tr.Receives = q.receives.Load()
	if tr.Receives > 0 {
		tr.PerReceive = float64(q.messages.Load()) / float64(tr.Receives)
	}
	if tq != nil {
		s := tq.Pipeline.Stats()
		tr.Results = s.Succeeded + s.Failed + s.Blocked
		if s.Failed+s.Blocked > 0 {
			return tr, fmt.Errorf("tierq wrote %d failed and %d blocked results; the bench jobs all succeed", s.Failed, s.Blocked)
		}
	}
	return tr, nil
}

// window is a trial's measured span: from the start to the last job that
// finished before the stall (or the end).
type window struct {
	jobs int64
	wall time.Duration
	cpu  time.Duration
}

// measure polls done every poll until it reaches total or stays put for
// stall after the first job finished (10 stalls before it), and returns the
// span up to the last poll that saw it grow.
func measure(ctx context.Context, done progress, total int64, stall, poll time.Duration) window {
	t0, c0 := time.Now(), cpuTime()
	var w window
	last := time.Now()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return w
		case <-tick.C:
		}
		now, n := time.Now(), done()
		if n > w.jobs {
			w = window{jobs: n, wall: now.Sub(t0), cpu: cpuTime() - c0}
			last = now
		}
		quiet := stall
		if w.jobs == 0 {
			quiet = 10 * stall
		}
		if n >= total || now.Sub(last) >= quiet {
			return w
		}
	}
}

// countingQueue counts the receives that returned messages, and the
// messages.
type countingQueue struct {
	*sqs.Client
	receives, messages atomic.Int64
}

func (c *countingQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out, err := c.Client.ReceiveMessage(ctx, in, o...)
	if err == nil && len(out.Messages) > 0 {
		c.receives.Add(1)
		c.messages.Add(int64(len(out.Messages)))
	}
	return out, err
}

// plainLoop is the loop tierq is compared with: what a team would write
// with the SDK alone.
type plainLoop struct {
	e      *emulators
	q      *countingQueue
	queue  string
	bucket string
	tier   tiering.Tier
	head   bool
	done   atomic.Int64
}

// loopJob is what the loop reads of a message.
type loopJob struct {
	JobID string `json:"job_id"`
	Task  string `json:"task"`
	Text  string `json:"text"`
}

// loopResult is the loop's small result.
type loopResult struct {
	JobID        string `json:"job_id"`
	Status       string `json:"status"`
	Output       string `json:"output"`
	InputTokens  int32  `json:"input_tokens"`
	OutputTokens int32  `json:"output_tokens"`
}

func (l *plainLoop) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				l.batch(ctx)
			}
		})
	}
	wg.Wait()
}

// batch receives up to 10 messages, runs each and deletes the ones done.
func (l *plainLoop) batch(ctx context.Context) {
	out, err := l.q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(l.queue),
		MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60})
	if err != nil || len(out.Messages) == 0 {
		return
	}
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, 0, len(out.Messages))
	for i, m := range out.Messages {
		if l.one(ctx, m) {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(entries) == 0 {
		return
	}
	del, err := l.e.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(l.queue), Entries: entries})
	if err == nil {
		l.done.Add(int64(len(del.Successful)))
	}
}

// one runs a message; false leaves it to come back.
func (l *plainLoop) one(ctx context.Context, m sqstypes.Message) bool {
	var job loopJob
	if json.Unmarshal([]byte(aws.ToString(m.Body)), &job) != nil || job.JobID == "" {
		return false
	}
	key := jobv1.ResultKey("results/", job.JobID)
	if l.head {
		_, err := l.e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(l.bucket), Key: aws.String(key)})
		if err == nil {
			return true // done already
		}
		if !awserr.NotFound(err) {
			return false
		}
	}
	t := l.tier
	parts := jobv1.Job{Task: job.Task, Text: job.Text}.PromptParts(job.Text)
	content := []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: jobv1.UserIntro}}
	for _, p := range parts {
		content = append(content, &brtypes.ContentBlockMemberGuardContent{Value: &brtypes.GuardrailConverseContentBlockMemberText{
			Value: brtypes.GuardrailConverseTextBlock{Text: aws.String(p)}}})
	}
	conv, err := l.e.bedrock.Converse(ctx, &bedrockruntime.ConverseInput{
		ModelId:  aws.String(t.ModelID),
		System:   []brtypes.SystemContentBlock{&brtypes.SystemContentBlockMemberText{Value: t.SystemPrompt(job.Task)}},
		Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser, Content: content}},
		GuardrailConfig: &brtypes.GuardrailConfiguration{GuardrailIdentifier: aws.String(t.Guardrail.ID),
			GuardrailVersion: aws.String(t.Guardrail.Version), Trace: brtypes.GuardrailTraceEnabled},
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(int32(t.MaxOutputTokens)),
			Temperature: aws.Float32(float32(t.Temperature))},
	})
	if err != nil {
		return false
	}
	res := loopResult{JobID: job.JobID, Status: "succeeded"}
	if msg, ok := conv.Output.(*brtypes.ConverseOutputMemberMessage); ok {
		for _, c := range msg.Value.Content {
			if t, ok := c.(*brtypes.ContentBlockMemberText); ok {
				res.Output += t.Value
			}
		}
	}
	if u := conv.Usage; u != nil {
		res.InputTokens, res.OutputTokens = aws.ToInt32(u.InputTokens), aws.ToInt32(u.OutputTokens)
	}
	body, err := json.Marshal(res)
	if err != nil {
		return false
	}
	_, err = l.e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(l.bucket), Key: aws.String(key),
		IfNoneMatch: aws.String("*"), Body: strings.NewReader(string(body)), ContentType: aws.String("application/json")})
	return err == nil || awserr.PreconditionFailed(err)
}
