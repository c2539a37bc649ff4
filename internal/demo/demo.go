package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/submit"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
)

// Options configure a demo run. Zero values take the defaults in brackets.
type Options struct {
	// Corpus is the folder with jobs.jsonl, docs.jsonl and malformed/
	// [testdata/corpus].
	Corpus string
	// Out is where results, dead letters, metrics and logs are written [demo-out].
	Out string
	// Workers is the number of worker processes simulated in-process [2],
	// each with Concurrency job slots [6].
	Workers     int
	Concurrency int
	// LatencyScale multiplies the simulator's model latencies [0.05].
	LatencyScale float64
	// FaultRate is the fraction of economy-model calls failing with 503, to
	// show retries [0.05]; negative for none.
	FaultRate float64
	// Timeout bounds the wait for the queue to drain [3m].
	Timeout time.Duration
	// Tiers is a tier configuration YAML file, loaded with tiering.Load,
	// that submit, the workers and the report all use [the shipped
	// default.yaml]. Its models must be ones the simulator serves.
	Tiers string
}

func (o *Options) defaults() {
	if o.Corpus == "" {
		o.Corpus = "testdata/corpus"
	}
	if o.Out == "" {
		o.Out = "demo-out"
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.Concurrency == 0 {
		o.Concurrency = 6
	}
	if o.LatencyScale == 0 {
		o.LatencyScale = 0.05
	}
	if o.FaultRate == 0 {
		o.FaultRate = 0.05
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
}

// names are one run's queue and buckets. kumo keeps one store per process,
// so each run in a process (tests run the demo more than once) gets its own.
type names struct {
	queue, results, inputs string
}

var runs atomic.Int64

func newNames() names {
	n := runs.Add(1)
	suffix := ""
	if n > 1 {
		suffix = fmt.Sprintf("-%d", n)
	}
	return names{queue: "tierq-demo-jobs" + suffix, results: "tierq-demo-results" + suffix, inputs: "tierq-demo-inputs" + suffix}
}

// Run is `make demo`: it starts the embedded stack, submits the corpus, runs
// workers until every job has a result or a dead letter, then writes what
// happened to opts.Out and prints a summary to w.
func Run(ctx context.Context, opts Options, w io.Writer) (*Report, error) {
	opts.defaults()
	started := time.Now()
	for _, dir := range []string{"results", "dead-letter"} {
		if err := os.RemoveAll(filepath.Join(opts.Out, dir)); err != nil {
			return nil, fmt.Errorf("clean output folder: %w", err)
		}
		if err := os.MkdirAll(filepath.Join(opts.Out, dir), 0o755); err != nil {
			return nil, fmt.Errorf("create output folder: %w", err)
		}
	}

	simCfg := bedrocksim.DefaultConfig()
	simCfg.LatencyScale = opts.LatencyScale
	simCfg.Minute = 2 * time.Second // a compressed minute, so throttles clear quickly
	tiers, err := app.LoadTiers(opts.Tiers)
	if err != nil {
		return nil, err
	}
	if err := simulated(tiers, simCfg); err != nil {
		return nil, err
	}
	acceptServiceTiers(tiers, simCfg)
	fmt.Fprintf(w, "tiers: %s\n", tiersSource(opts.Tiers))
	if opts.FaultRate > 0 {
		m := simCfg.Models[tiers.Tiers[0].ModelID]
		m.Faults.ServiceUnavailable = opts.FaultRate
		simCfg.Models[tiers.Tiers[0].ModelID] = m
	}
	// A small premium quota, so the run shows throttling and recovery.
	premium := tiers.Tiers[len(tiers.Tiers)-1].ModelID
	m := simCfg.Models[premium]
	m.RPM = 4
	simCfg.Models[premium] = m

	st, err := NewStack(simCfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	fmt.Fprintf(w, "embedded stack: SQS and S3 (kumo) and Bedrock (simulator) on loopback\n")
	nm := newNames()
	// A high redrive count: the queue's redrive is the last safety net, and
	// throttled jobs are released and redelivered while a model is at quota.
	qs, err := st.CreateQueues(ctx, nm.queue, 50)
	if err != nil {
		return nil, err
	}
	if err := st.CreateBuckets(ctx, nm.results, nm.inputs); err != nil {
		return nil, err
	}

	// Submit the corpus as upstream would, then the malformed messages raw.
	fmt.Fprintf(w, "submitting %s\n", opts.Corpus)
	deps := submit.Deps{Queue: st.SQS, Uploader: st.S3, Tiers: tiers}
	sent, err := submit.Run(ctx, submit.Options{
		Paths:    []string{filepath.Join(opts.Corpus, "jobs.jsonl"), filepath.Join(opts.Corpus, "docs.jsonl")},
		QueueURL: qs.URL, InputBucket: nm.inputs, InlineLimit: 64 << 10,
	}, deps, w, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("submit corpus: %w", err)
	}
	malformed, err := filepath.Glob(filepath.Join(opts.Corpus, "malformed", "*"))
	if err != nil {
		return nil, err
	}
	raw, err := submit.Run(ctx, submit.Options{Paths: malformed, QueueURL: qs.URL, Raw: true}, deps, io.Discard, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("submit malformed messages: %w", err)
	}
	fmt.Fprintf(w, "submitted %d jobs (%d uploaded to s3://%s) and %d malformed messages\n",
		sent.Sent, sent.Uploaded, nm.inputs, raw.Sent)

	logFile, err := os.Create(filepath.Join(opts.Out, "worker.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	metricsFile, err := os.Create(filepath.Join(opts.Out, "metrics.emf"))
	if err != nil {
		return nil, err
	}
	defer metricsFile.Close()
	log := slog.New(slog.NewJSONHandler(logFile, nil))
	metrics := &lockedWriter{w: metricsFile}

	workers := make([]*app.Worker, opts.Workers)
	for i := range workers {
		workers[i], err = app.New(app.Settings{
			QueueURL: qs.URL, DeadLetterQueueURL: qs.DLQURL, ResultsBucket: nm.results,
			InputBuckets: []string{nm.inputs}, TiersFile: opts.Tiers, Concurrency: opts.Concurrency, WaitTime: time.Second,
			VisibilityTimeout: 30 * time.Second, ReleaseDelay: time.Second, DrainTimeout: 5 * time.Second,
			WorkerID: fmt.Sprintf("demo-worker-%d", i+1), Version: "demo",
			// The run lasts seconds: write limiter states often enough to see them,
			// and pace against the simulator's compressed minute.
			LimiterMetricsInterval: 500 * time.Millisecond, LimiterWindow: simCfg.Minute,
		}, app.Clients{Queue: st.SQS, Store: st.S3, Converser: st.Bedrock}, metrics, log.With("worker", i+1))
		if err != nil {
			return nil, err
		}
		if err := workers[i].Pipeline.Preflight(ctx); err != nil {
			return nil, fmt.Errorf("preflight: %w", err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var g errgroup.Group
	for _, wk := range workers {
		g.Go(func() error { return wk.Run(runCtx) })
	}
	fmt.Fprintf(w, "running %d workers × %d slots until every job has a result\n", opts.Workers, opts.Concurrency)

	waitErr := waitDrained(ctx, st, qs, nm.results, sent.Sent, raw.Sent, opts.Timeout, w)
	stop()
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if waitErr != nil {
		return nil, waitErr
	}

	rep, err := collect(ctx, st, qs, nm.results, opts.Out, tiers)
	if err != nil {
		return nil, err
	}
	for i, wk := range workers {
		s := wk.Stats()
		rep.Released += s.Released
		if wk.Limiter != nil {
			for _, st := range wk.Limiter.Snapshot() {
				rep.Limits = append(rep.Limits, fmt.Sprintf("worker %d  %-46s limit %2d  token budget %7d  drops %d",
					i+1, st.Model, st.Limit, st.TokenBudget, st.Drops))
			}
		}
	}
	rep.Elapsed = time.Since(started)
	rep.Print(w, opts.Out)

	// The sizing report of this run, from the workers' own EMF lines.
	srep, err := sizing.Build(ctx, &sizing.EMFSource{Paths: []string{filepath.Join(opts.Out, "metrics.emf")}, Tiers: tiers},
		sizing.DefaultConfig(tiers))
	if err != nil {
		return nil, fmt.Errorf("sizing report: %w", err)
	}
	if err := srep.WriteFiles(filepath.Join(opts.Out, "sizing.json"), filepath.Join(opts.Out, "sizing.html")); err != nil {
		return nil, fmt.Errorf("sizing report: %w", err)
	}
	fmt.Fprintf(w, "sizing:       %s (open it in a browser; %s)\n", filepath.Join(opts.Out, "sizing.html"), strings.Join(srep.Warnings, "; "))
	return rep, nil
}

// simulated checks that the simulator serves every model the tiers call,
// so a tiers file naming another model fails here and not job by job.
func simulated(tiers *tiering.Config, sim bedrocksim.Config) error {
	var errs []error
	for i, t := range tiers.Tiers {
		for _, id := range t.Models() {
			if _, ok := sim.Models[id]; !ok {
				errs = append(errs, fmt.Errorf("tiers[%d] (%s): model %q is not one the Bedrock simulator serves (it serves %s)",
					i, t.Name, id, strings.Join(slices.Sorted(maps.Keys(sim.Models)), ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

// acceptServiceTiers makes the simulated account take the service tiers the
// tiers file asks for, on each tier's model and fallback: the demo shows
// what they cost, and a model that refuses one is the pipeline's tested
// fallback, not the demo's subject.
func acceptServiceTiers(tiers *tiering.Config, sim bedrocksim.Config) {
	for _, t := range tiers.Tiers {
		st := t.RequestedServiceTier()
		if st == "" {
			continue
		}
		for _, id := range t.Models() {
			m, ok := sim.Models[id]
			if !ok || slices.Contains(m.ServiceTiers, st) {
				continue
			}
			m.ServiceTiers = slices.Concat(m.ServiceTiers, []string{st})
			sim.Models[id] = m
		}
	}
}

func tiersSource(path string) string {
	if path == "" {
		return "shipped default (tiering/default.yaml)"
	}
	return path
}

// waitDrained polls until the job queue is empty twice in a row (every
// message deleted: done, failed with a result, or dead-lettered), printing
// progress.
func waitDrained(ctx context.Context, st *Stack, qs Queues, resultsBucket string, jobs, malformed int, timeout time.Duration, w io.Writer) error {
	last := ""
	err := emulator.WaitDrained(ctx, st.SQS, qs.URL, timeout, func(left int) error {
		done, err := countObjects(ctx, st, resultsBucket)
		if err != nil {
			return err
		}
		dl, err := emulator.QueueDepth(ctx, st.SQS, qs.DLQURL)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("  %d results, %d dead-lettered, %d messages left of %d jobs and %d malformed messages",
			done, dl, left, jobs, malformed)
		if line != last {
			fmt.Fprintln(w, line)
			last = line
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w (see worker.log)", err)
	}
	return nil
}

func countObjects(ctx context.Context, st *Stack, bucket string) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(st.S3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("list results: %w", err)
		}
		for _, obj := range page.Contents {
			if jobv1.IsResultKey(aws.ToString(obj.Key)) {
				n++
			}
		}
	}
	return n, nil
}

// collect reads every result and dead letter, writes them under out and
// builds the report.
func collect(ctx context.Context, st *Stack, qs Queues, resultsBucket, out string, tiers *tiering.Config) (*Report, error) {
	rep := newReport(tiers)
	p := s3.NewListObjectsV2Paginator(st.S3, &s3.ListObjectsV2Input{Bucket: aws.String(resultsBucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list results: %w", err)
		}
		for _, obj := range page.Contents {
			if !jobv1.IsResultKey(aws.ToString(obj.Key)) {
				continue // a job's claim
			}
			got, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(resultsBucket), Key: obj.Key})
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", *obj.Key, err)
			}
			body, err := io.ReadAll(got.Body)
			got.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", *obj.Key, err)
			}
			var r jobv1.Result
			if err := json.Unmarshal(body, &r); err != nil {
				return nil, fmt.Errorf("result %s is not valid JSON: %w", *obj.Key, err)
			}
			if err := os.WriteFile(filepath.Join(out, "results", filepath.Base(*obj.Key)), body, 0o644); err != nil {
				return nil, err
			}
			rep.add(r)
		}
	}
	var werr error
	err := emulator.ReadAll(ctx, st.SQS, qs.DLQURL, 30*time.Second, func(m sqstypes.Message) {
		reason := ""
		if a, ok := m.MessageAttributes[worker.AttrDeadLetterReason]; ok && a.StringValue != nil {
			reason = *a.StringValue
		}
		dl := DeadLetter{MessageID: aws.ToString(m.MessageId), Reason: reason, Body: aws.ToString(m.Body)}
		rep.DeadLetters = append(rep.DeadLetters, dl)
		b, _ := json.MarshalIndent(dl, "", "  ")
		if err := os.WriteFile(filepath.Join(out, "dead-letter", dl.MessageID+".json"), b, 0o644); err != nil && werr == nil {
			werr = err
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read dead-letter queue: %w", err)
	}
	if werr != nil {
		return nil, werr
	}
	rep.Sim = st.Sim.Stats()
	return rep, nil
}

// lockedWriter serialises the workers' metric lines into one file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
