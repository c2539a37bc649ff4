package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/worker"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// workerFlags registers every worker setting as a flag, with its component's
// default (pipeline, worker, limiter, app: each default lives there, once;
// TestReadmeDocumentsEveryWorkerSetting keeps README's table equal). Each
// flag NAME can
// also come from the environment as TIERQ_NAME (upper case, - as _) and from
// the YAML file given by --config as name (- as _). Precedence: flag,
// environment, file, default.
func workerFlags(s *app.Settings, stderr io.Writer) (*flag.FlagSet, *string, *string, *bool) {
	fs := flag.NewFlagSet("tierq worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "YAML file of settings (keys are flag names with _ for -)")
	metricsFile := fs.String("metrics-file", "", "append EMF metric lines to this file instead of stdout")
	pathStyle := fs.Bool("s3-path-style", false, "path-style S3 addressing (LocalStack, emulators)")
	fs.StringVar(&s.QueueURL, "queue-url", "", "SQS queue URL to receive jobs from (required)")
	fs.StringVar(&s.DeadLetterQueueURL, "dlq-url", "", "SQS dead-letter queue URL for messages that are not jobs (required)")
	fs.StringVar(&s.ResultsBucket, "results-bucket", "", "S3 bucket for results (required)")
	fs.StringVar(&s.ResultsPrefix, "results-prefix", pipeline.DefaultResultsPrefix, "key prefix of result objects")
	fs.Func("input-buckets", "comma-separated S3 buckets jobs may reference with document_uri (default none)", func(v string) error {
		s.InputBuckets = nil
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				s.InputBuckets = append(s.InputBuckets, b)
			}
		}
		return nil
	})
	fs.Int64Var(&s.MaxDocumentBytes, "max-document-bytes", pipeline.DefaultMaxDocumentBytes, "largest document accepted, inline or by reference")
	fs.StringVar(&s.TiersFile, "tiers-file", "", "tier YAML (models, prompts, guardrails, prices); default: the shipped tiering/default.yaml")
	fs.IntVar(&s.Concurrency, "concurrency", worker.DefaultConcurrency, "jobs run at once; never more messages are held")
	fs.StringVar(&s.Limiter, "limiter", app.DefaultLimiter, "model limiter: adaptive (AIMD on throttles, learned token budget) or fixed")
	fs.IntVar(&s.ModelConcurrency, "model-concurrency", limiter.DefaultInitialLimit, "calls in flight per model: the fixed limit, or the adaptive limiter's start")
	fs.IntVar(&s.MaxModelConcurrency, "max-model-concurrency", limiter.DefaultMaxLimit, "cap of the adaptive limit per model")
	fs.DurationVar(&s.MaxSnooze, "max-snooze", pipeline.DefaultRetryMaxSnooze, "longest a job waits out throttling before its message is released")
	fs.DurationVar(&s.LimiterMetricsInterval, "limiter-metrics-interval", app.DefaultLimiterMetricsInterval, "how often each model's limiter state is written as an EMF line")
	fs.DurationVar(&s.WaitTime, "wait-time", worker.DefaultWaitTime, "SQS long-poll wait, up to 20s")
	fs.DurationVar(&s.VisibilityTimeout, "visibility-timeout", worker.DefaultVisibilityTimeout, "visibility set on receive and extended by the heartbeat")
	fs.DurationVar(&s.ReleaseDelay, "release-delay", worker.DefaultReleaseDelay, "how long a transiently failed message stays invisible")
	fs.DurationVar(&s.ClaimLease, "claim-lease", pipeline.DefaultClaimLease, "how long a job's claim keeps other deliveries of it from calling the model; renewed while the job runs")
	fs.DurationVar(&s.DrainTimeout, "drain-timeout", worker.DefaultDrainTimeout, "on SIGTERM, how long running jobs may finish before they are released")
	fs.IntVar(&s.RetryMaxAttempts, "retry-max-attempts", pipeline.DefaultRetryMaxAttempts, "model calls per tier per delivery before the message is released")
	fs.DurationVar(&s.CallTimeout, "call-timeout", pipeline.DefaultCallTimeout, "bound on one Converse attempt; a timed-out attempt is retried")
	fs.StringVar(&s.MetricsNamespace, "metrics-namespace", pipeline.DefaultMetricsNamespace, "CloudWatch namespace of the EMF metrics")
	fs.StringVar(&s.WorkerID, "worker-id", "", "worker name in results (default: host name)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq worker [flags]

Receives job messages from SQS, runs each through tiering, a guardrailed
Bedrock Converse call and an exactly-once S3 result write, and emits one EMF
metrics line per job. Stops on SIGTERM or SIGINT after draining.

Every flag can also be set in the environment as TIERQ_<FLAG> (for example
TIERQ_QUEUE_URL) or in the --config YAML file as <flag> (for example
queue_url). Precedence: flag, environment, file, default. AWS credentials and
Region come only from the SDK's default chain (task role, AWS_REGION, ...);
AWS_ENDPOINT_URL_SQS, _S3 and _BEDROCK_RUNTIME point at emulators.

flags:
`)
		fs.PrintDefaults()
	}
	return fs, config, metricsFile, pathStyle
}

func envName(flagName string) string {
	return "TIERQ_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// workerEnv spells out the environment variables the worker reads (envName
// of each flag), so they can be found by name in the source; a test keeps it
// equal to the flags, and deploy/deploy_test.go checks deployment files
// against it.
var workerEnv = []string{
	"TIERQ_CONFIG", "TIERQ_METRICS_FILE", "TIERQ_S3_PATH_STYLE", "TIERQ_QUEUE_URL", "TIERQ_DLQ_URL",
	"TIERQ_RESULTS_BUCKET", "TIERQ_RESULTS_PREFIX", "TIERQ_INPUT_BUCKETS", "TIERQ_MAX_DOCUMENT_BYTES",
	"TIERQ_TIERS_FILE", "TIERQ_CONCURRENCY", "TIERQ_LIMITER", "TIERQ_MODEL_CONCURRENCY",
	"TIERQ_MAX_MODEL_CONCURRENCY", "TIERQ_MAX_SNOOZE", "TIERQ_LIMITER_METRICS_INTERVAL", "TIERQ_WAIT_TIME",
	"TIERQ_VISIBILITY_TIMEOUT", "TIERQ_RELEASE_DELAY", "TIERQ_CLAIM_LEASE", "TIERQ_DRAIN_TIMEOUT", "TIERQ_RETRY_MAX_ATTEMPTS", "TIERQ_CALL_TIMEOUT",
	"TIERQ_METRICS_NAMESPACE", "TIERQ_WORKER_ID",
}

// parseWorkerSettings applies defaults, the YAML file, the environment and
// the flags, in that order of increasing precedence.
func parseWorkerSettings(args []string, getenv func(string) string, stderr io.Writer) (app.Settings, string, bool, error) {
	// First pass, silent: only to find --config. Errors and --help surface in
	// the second pass, which parses the same arguments.
	var probe app.Settings
	fs, config, _, _ := workerFlags(&probe, io.Discard)
	fs.Usage = func() {}
	_ = fs.Parse(args)
	path := *config
	if path == "" {
		path = getenv("TIERQ_CONFIG")
	}

	var s app.Settings
	fs, _, metricsFile, pathStyle := workerFlags(&s, stderr)
	var errs []error
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return app.Settings{}, "", false, fmt.Errorf("read config: %w", err)
		}
		var file map[string]any
		dec := yaml.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
			return app.Settings{}, "", false, fmt.Errorf("parse config %s: %w", path, err)
		}
		for k, v := range file {
			name := strings.ReplaceAll(k, "_", "-")
			if name == "config" || fs.Lookup(name) == nil {
				errs = append(errs, fmt.Errorf("config %s: unknown setting %q", path, k))
				continue
			}
			if list, ok := v.([]any); ok {
				parts := make([]string, len(list))
				for i, p := range list {
					parts[i] = fmt.Sprint(p)
				}
				v = strings.Join(parts, ",")
			}
			if err := fs.Set(name, fmt.Sprint(v)); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %s: %w", path, k, err))
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return app.Settings{}, "", false, err
	}
	if err := fs.Parse(args); err != nil {
		return app.Settings{}, "", false, err
	}
	if fs.NArg() > 0 {
		return app.Settings{}, "", false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	s.Version = version
	return s, *metricsFile, *pathStyle, nil
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, metricsFile, pathStyle, err := parseWorkerSettings(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	metrics := stdout
	if metricsFile != "" {
		f, err := os.OpenFile(metricsFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("open metrics file: %w", err)
		}
		defer f.Close()
		metrics = f
	}
	clients, err := newAWSClients(ctx, awsSettings{S3PathStyle: pathStyle})
	if err != nil {
		return err
	}
	w, err := app.New(s, app.Clients{Queue: clients.SQS, Store: clients.S3, Converser: clients.Bedrock}, metrics, log)
	if err != nil {
		return fmt.Errorf("configuration:\n%w\n(set with flags, TIERQ_* environment variables or the --config file: see tierq worker --help)", err)
	}
	// Refuse to start rather than run jobs that could never record a result
	// (a missing bucket, or no s3:ListBucket, which makes every job look unfinished).
	if err := w.Pipeline.Preflight(ctx); err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	log.Info("worker starting", "queue_url", s.QueueURL, "concurrency", s.Concurrency,
		"tiers", len(w.Tiers.Tiers), "version", version)
	if err := w.Run(ctx); err != nil {
		return err
	}
	st := w.Stats()
	log.Info("worker stopped", "received", st.Received, "succeeded", st.Succeeded, "released", st.Released,
		"dead_lettered", st.DeadLettered)
	return nil
}
