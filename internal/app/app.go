package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/tierq/tierq/internal/taskprotect"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
)

// Defaults of the settings that belong to no component: the others are the
// components' own (pipeline.Default*, worker.Default*, limiter.Default*),
// which both New and the tierq worker flags use.
const (
	DefaultLimiter                = "adaptive"
	DefaultLimiterMetricsInterval = time.Minute
)

// Settings are every knob of a tierq worker. Field comments give the defaults;
// zero values mean "default".
type Settings struct {
	// QueueURL and DeadLetterQueueURL: the job queue and where poison
	// messages go. Required.
	QueueURL           string
	DeadLetterQueueURL string
	// ResultsBucket receives results at {ResultsPrefix}{job_id}.json.
	// Required; ResultsPrefix defaults to "results/".
	ResultsBucket string
	ResultsPrefix string
	// InputBuckets may be referenced by jobs' document_uri; none by default.
	InputBuckets []string
	// MaxDocumentBytes bounds a document. Default 8 MiB.
	MaxDocumentBytes int64
	// TiersFile is the tier YAML; empty means tiering's shipped default.
	TiersFile string
	// Concurrency is the number of jobs a worker runs at once. Default 8.
	Concurrency int
	// Limiter is "adaptive" (default: AIMD per model with a learned token
	// budget) or "fixed" (ModelConcurrency calls per model, always).
	Limiter string
	// ModelConcurrency is the fixed limit per model, or the adaptive
	// limiter's starting limit. Default 4.
	ModelConcurrency int
	// MaxModelConcurrency caps the adaptive limit per model. Default 64.
	MaxModelConcurrency int
	// LimiterWindow is the quota window the adaptive limiter paces
	// reservations against: Bedrock's minute. Default 1m; only a simulator
	// with a compressed minute needs another value.
	LimiterWindow time.Duration
	// MaxSnooze is the longest a delivery waits out throttling before its
	// message is released. Default 5m.
	MaxSnooze time.Duration
	// LimiterMetricsInterval is how often each model's limiter state is
	// written as an EMF line. Default 1m.
	LimiterMetricsInterval time.Duration
	// WaitTime is the SQS long-poll wait (default 20s); VisibilityTimeout the
	// visibility each receive and heartbeat sets (default 30s: a killed
	// worker's jobs run again within about that long); ReleaseDelay
	// how long a transiently failed message stays invisible (default 30s);
	// DrainTimeout how long shutdown waits for running jobs (default 25s).
	WaitTime          time.Duration
	VisibilityTimeout time.Duration
	ReleaseDelay      time.Duration
	DrainTimeout      time.Duration
	// ClaimLease is how long a job's claim keeps other deliveries of the job
	// from calling the model; renewed while the job runs. Default: the
	// VisibilityTimeout. It may not be longer: a killed worker's message
	// comes back after the visibility timeout, and a longer claim would
	// defer it again until the claim ends.
	ClaimLease time.Duration
	// RetryMaxAttempts is the most failed model calls per tier per delivery,
	// throttles not counted (MaxSnooze bounds those). Default 4.
	RetryMaxAttempts int
	// CallTimeout bounds one Converse attempt. Default 10m.
	CallTimeout time.Duration
	// MetricsNamespace of the EMF lines (default "tierq"); WorkerID names this
	// worker in results (default: host name); Version is recorded in results.
	MetricsNamespace string
	WorkerID         string
	Version          string
	// SkipChecks tells the caller not to run Preflight (cmd/tierq honours
	// it; New ignores it). ModelCheck is how Preflight proves each model:
	// "converse" (default), "count-tokens" or "count-tokens-only" (see
	// ModelCheckConverse and the others).
	SkipChecks bool
	ModelCheck string
}

// Clients are the AWS API clients the worker calls.
type Clients struct {
	Queue     worker.Queue
	Store     pipeline.Store
	Converser pipeline.Converser
	// QueueInfo and Bedrock serve the start-up checks (Preflight), with
	// Converser; a nil one skips the checks that need it.
	QueueInfo QueueInfo
	Bedrock   BedrockChecks
	// Region and BedrockEndpoint say where the clients go, for the start-up
	// checks' messages; BedrockEndpoint is "" for the Region's own.
	Region, BedrockEndpoint string
	// TaskProtection is the ECS agent's task scale-in protection endpoint
	// (taskprotect.FromEnv); nil outside ECS. While the worker holds
	// messages the task is protected from scale-in.
	TaskProtection *taskprotect.Client
}

// Worker is an assembled worker and what it was built from.
type Worker struct {
	*worker.Worker
	Tiers    *tiering.Config
	Pipeline *pipeline.Pipeline
	// Limiter is the model limiter; Snapshot is nil for a fixed one.
	Limiter limiterStates
	every   time.Duration
	checks  checker
	// guard keeps the ECS task protected while it holds messages; nil
	// outside ECS.
	guard *taskprotect.Guard
}

// modelLimiter is what the pipeline and the receive loop need of a limiter.
type modelLimiter interface {
	pipeline.Limiter
	worker.Capacity
}

type limiterStates interface {
	Snapshot() []limiter.State
}

// LoadTiers reads the tier configuration file, or returns the default.
func LoadTiers(path string) (*tiering.Config, error) {
	if path == "" {
		return tiering.Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tiers file: %w", err)
	}
	cfg, err := tiering.Load(data)
	if err != nil {
		return nil, fmt.Errorf("tiers file %s: %w", path, err)
	}
	return cfg, nil
}

// New validates settings and builds a worker. Every configuration problem of
// every part is reported at once, each as a *SettingError naming the
// Settings field to change.
func New(s Settings, c Clients, metrics io.Writer, log *slog.Logger) (*Worker, error) {
	var errs []error
	tiers, err := LoadTiers(s.TiersFile)
	checkTiers := tiers
	if err != nil {
		errs = append(errs, &SettingError{Setting: "TiersFile", Problem: err.Error(), Err: err})
		// The other settings are still checked, against the default tiers,
		// so that one run reports every problem.
		checkTiers = tiering.Default()
	}
	lim, states, err := newLimiter(s, checkTiers, log)
	if err != nil {
		errs = append(errs, err)
	}
	switch s.ModelCheck {
	case "", ModelCheckConverse, ModelCheckCountTokens, ModelCheckCountTokensOnly:
	default:
		errs = append(errs, &SettingError{Setting: "ModelCheck", Problem: fmt.Sprintf("%q is not %s, %s or %s",
			s.ModelCheck, ModelCheckConverse, ModelCheckCountTokens, ModelCheckCountTokensOnly)})
	}

	wcfg := worker.Config{
		QueueURL: s.QueueURL, DeadLetterQueueURL: s.DeadLetterQueueURL, Concurrency: s.Concurrency,
		WaitTime: s.WaitTime, VisibilityTimeout: s.VisibilityTimeout, ReleaseDelay: s.ReleaseDelay,
		DrainTimeout: s.DrainTimeout,
	}
	wcfg.ApplyDefaults()
	lease := s.ClaimLease
	if lease == 0 {
		lease = wcfg.VisibilityTimeout
	}
	pcfg := pipeline.Config{
		ResultsBucket: s.ResultsBucket, ResultsPrefix: s.ResultsPrefix, InputBuckets: s.InputBuckets,
		MaxDocumentBytes: s.MaxDocumentBytes, MetricsNamespace: s.MetricsNamespace,
		WorkerID: s.WorkerID, Version: s.Version, Tiers: tiers, CallTimeout: s.CallTimeout, ClaimLease: lease,
		Retry: pipeline.RetryConfig{MaxAttempts: s.RetryMaxAttempts, MaxSnooze: s.MaxSnooze},
	}
	pcfg.ApplyDefaults()
	check := pcfg
	check.Tiers = checkTiers
	errs = append(errs, settingErrors(wcfg.Validate()), settingErrors(check.Validate()))
	// The two components' settings meet here. A killed worker's message is
	// visible again after the visibility timeout; a claim that outlives it
	// defers that delivery until the claim ends, so the slower of the two
	// bounds recovery.
	if lease > wcfg.VisibilityTimeout && wcfg.VisibilityTimeout > 0 {
		errs = append(errs, &SettingError{Setting: "ClaimLease", Problem: fmt.Sprintf(
			"%s is longer than the visibility timeout %s: a killed worker's job would wait out the claim after its message came back; use at most the visibility timeout (the default)",
			lease, wcfg.VisibilityTimeout)})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p, err := pipeline.New(pcfg, pipeline.Deps{Converser: c.Converser, Store: c.Store, Limiter: lim, Metrics: metrics, Logger: log})
	if err != nil {
		return nil, err
	}
	guard, err := taskprotect.NewGuard(c.TaskProtection, taskprotect.GuardConfig{}, log)
	if err != nil {
		return nil, err
	}
	w, err := worker.New(wcfg, c.Queue, p, worker.WithLogger(log), worker.WithCapacity(lim), worker.WithHeldHook(guard.Busy))
	if err != nil {
		guard.Close(context.Background())
		return nil, err
	}
	every := s.LimiterMetricsInterval
	if every == 0 {
		every = DefaultLimiterMetricsInterval
	}
	if log == nil {
		log = slog.Default()
	}
	checks := checker{settings: s, queues: c.QueueInfo, bedrock: c.Bedrock, converser: c.Converser,
		region: c.Region, endpoint: c.BedrockEndpoint, log: log}
	return &Worker{Worker: w, Tiers: tiers, Pipeline: p, Limiter: states, every: every, checks: checks, guard: guard}, nil
}

// newLimiter builds the model limiter the settings ask for. Every tier's
// model is listed up front so the receive loop can count on their capacity
// before the first call.
func newLimiter(s Settings, tiers *tiering.Config, log *slog.Logger) (modelLimiter, limiterStates, error) {
	perModel := s.ModelConcurrency
	if perModel == 0 {
		perModel = limiter.DefaultInitialLimit
	}
	if perModel < 0 {
		return nil, nil, &SettingError{Setting: "ModelConcurrency", Problem: fmt.Sprintf("must be 1 or more, got %d", perModel)}
	}
	var models []string
	limits := map[string]int{}
	for _, t := range tiers.Tiers {
		if _, ok := limits[t.ModelID]; !ok {
			models = append(models, t.ModelID)
		}
		limits[t.ModelID] = perModel
	}
	switch s.Limiter {
	case "fixed":
		return limiter.NewFixed(perModel, limits), nil, nil
	case "", DefaultLimiter:
		a, err := limiter.NewAdaptive(limiter.Config{
			InitialLimit: perModel, MaxLimit: s.MaxModelConcurrency, Models: models, Window: s.LimiterWindow,
			OnChange: func(model string, old, new limiter.State, reason string) {
				log.Info("model limit changed", "model_id", model, "reason", reason,
					"limit", new.Limit, "previous_limit", old.Limit,
					"token_budget", new.TokenBudget, "previous_token_budget", old.TokenBudget,
					"in_flight", new.InFlight, "waiting", new.Waiting)
			},
		})
		if err != nil {
			return nil, nil, limiterError(err)
		}
		return a, a, nil
	}
	return nil, nil, &SettingError{Setting: "Limiter", Problem: fmt.Sprintf("%q is not adaptive or fixed", s.Limiter)}
}

// Run runs the worker until ctx is cancelled and its drain completes, and
// meanwhile writes each model's limiter state to the metrics stream.
func (w *Worker) Run(ctx context.Context) error {
	// Protection comes off when the worker stops, whatever it held: a
	// stopped task has nothing left to protect.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.guard.Close(cctx)
	}()
	if w.Limiter == nil {
		return w.Worker.Run(ctx)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(w.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = w.Pipeline.EmitLimiterStates(w.Limiter.Snapshot()) // a lost line loses no job
			}
		}
	}()
	err := w.Worker.Run(ctx)
	close(done)
	<-stopped
	return err
}
