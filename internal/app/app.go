package app

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
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
	// ModelConcurrency is the most calls in flight to one model. Default 4.
	ModelConcurrency int
	// WaitTime is the SQS long-poll wait (default 20s); VisibilityTimeout the
	// visibility each receive and heartbeat sets (default 60s); ReleaseDelay
	// how long a transiently failed message stays invisible (default 30s);
	// DrainTimeout how long shutdown waits for running jobs (default 25s).
	WaitTime          time.Duration
	VisibilityTimeout time.Duration
	ReleaseDelay      time.Duration
	DrainTimeout      time.Duration
	// RetryMaxAttempts is the most model calls per tier per delivery. Default 4.
	RetryMaxAttempts int
	// CallTimeout bounds one Converse attempt. Default 10m.
	CallTimeout time.Duration
	// MetricsNamespace of the EMF lines (default "tierq"); WorkerID names this
	// worker in results (default: host name); Version is recorded in results.
	MetricsNamespace string
	WorkerID         string
	Version          string
}

// Clients are the AWS API clients the worker calls.
type Clients struct {
	Queue     worker.Queue
	Store     pipeline.Store
	Converser pipeline.Converser
}

// Worker is an assembled worker and what it was built from.
type Worker struct {
	*worker.Worker
	Tiers    *tiering.Config
	Pipeline *pipeline.Pipeline
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
// every part is reported at once.
func New(s Settings, c Clients, metrics io.Writer, log *slog.Logger) (*Worker, error) {
	tiers, err := LoadTiers(s.TiersFile)
	if err != nil {
		return nil, err
	}
	perModel := s.ModelConcurrency
	if perModel == 0 {
		perModel = 4
	}
	limits := map[string]int{}
	for _, t := range tiers.Tiers {
		limits[t.ModelID] = perModel
	}
	lim := limiter.NewFixed(perModel, limits)

	pcfg := pipeline.Config{
		ResultsBucket: s.ResultsBucket, ResultsPrefix: s.ResultsPrefix, InputBuckets: s.InputBuckets,
		MaxDocumentBytes: s.MaxDocumentBytes, MetricsNamespace: s.MetricsNamespace,
		WorkerID: s.WorkerID, Version: s.Version, Tiers: tiers, CallTimeout: s.CallTimeout,
		Retry: pipeline.RetryConfig{MaxAttempts: s.RetryMaxAttempts, ReleaseDelay: s.ReleaseDelay},
	}
	wcfg := worker.Config{
		QueueURL: s.QueueURL, DeadLetterQueueURL: s.DeadLetterQueueURL, Concurrency: s.Concurrency,
		WaitTime: s.WaitTime, VisibilityTimeout: s.VisibilityTimeout, ReleaseDelay: s.ReleaseDelay,
		DrainTimeout: s.DrainTimeout,
	}
	var errs []error
	if s.ModelConcurrency < 0 {
		errs = append(errs, fmt.Errorf("model concurrency: must be 1 or more, got %d", s.ModelConcurrency))
	}
	pcfg.ApplyDefaults()
	wcfg.ApplyDefaults()
	errs = append(errs, pcfg.Validate(), wcfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p, err := pipeline.New(pcfg, pipeline.Deps{Converser: c.Converser, Store: c.Store, Limiter: lim, Metrics: metrics, Logger: log})
	if err != nil {
		return nil, err
	}
	w, err := worker.New(wcfg, c.Queue, p, worker.WithLogger(log), worker.WithCapacity(lim))
	if err != nil {
		return nil, err
	}
	return &Worker{Worker: w, Tiers: tiers, Pipeline: p}, nil
}
