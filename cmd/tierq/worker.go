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
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/taskprotect"
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
	fs, config, metricsFile, pathStyle, _ := workerFlagSet(s, stderr)
	return fs, config, metricsFile, pathStyle
}

// workerFlagSet is workerFlags, and the record of the last bad value. Typed
// flags use the values below (durationValue, ...), whose errors say what a
// value must look like ("want a duration with a unit, such as 5s or 1m");
// the last such error of a parse is kept in the returned *badFlag, so the
// command can report it instead of the flag package's wording.
func workerFlagSet(s *app.Settings, stderr io.Writer) (*flag.FlagSet, *string, *string, *bool, *badFlag) {
	fs := flag.NewFlagSet("tierq worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bad := &badFlag{}
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		*p = def
		fs.Var(&durationValue{p: p, name: name, bad: bad, noDefault: def == 0}, name, usage)
	}
	num := func(p *int, name string, def int, usage string) {
		*p = def
		fs.Var(&intValue{p: p, name: name, bad: bad}, name, usage)
	}
	config := fs.String("config", "", "YAML file of settings (keys are flag names with _ for -)")
	metricsFile := fs.String("metrics-file", "", "append EMF metric lines to this file instead of stdout")
	pathStyle := new(bool)
	fs.Var(&boolValue{p: pathStyle, name: "s3-path-style", bad: bad}, "s3-path-style", "path-style S3 addressing (LocalStack, emulators)")
	fs.StringVar(&s.QueueURL, "queue-url", "", "SQS queue URL to receive jobs from (required)")
	fs.StringVar(&s.DeadLetterQueueURL, "dlq-url", "", "SQS dead-letter queue URL for messages that are not jobs (required)")
	fs.StringVar(&s.ResultsBucket, "results-bucket", "", "S3 bucket for results (required)")
	fs.StringVar(&s.ResultsPrefix, "results-prefix", pipeline.DefaultResultsPrefix, "key prefix of result objects")
	fs.Func("input-buckets", "comma-separated S3 `buckets` jobs may reference with document_uri (default none)", func(v string) error {
		s.InputBuckets = nil
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				s.InputBuckets = append(s.InputBuckets, b)
			}
		}
		return nil
	})
	s.MaxDocumentBytes = pipeline.DefaultMaxDocumentBytes
	fs.Var(&int64Value{p: &s.MaxDocumentBytes, name: "max-document-bytes", bad: bad}, "max-document-bytes", "largest document accepted, inline or by reference, in bytes")
	fs.StringVar(&s.TiersFile, "tiers-file", "", "tier YAML (models, prompts, guardrails, prices); default: the shipped tiering/default.yaml")
	num(&s.Concurrency, "concurrency", worker.DefaultConcurrency, "jobs run at once; never more messages are held")
	fs.StringVar(&s.Limiter, "limiter", app.DefaultLimiter, "model limiter: adaptive (AIMD on throttles, learned token budget) or fixed")
	num(&s.ModelConcurrency, "model-concurrency", limiter.DefaultInitialLimit, "calls in flight per model: the fixed limit, or the adaptive limiter's start")
	num(&s.MaxModelConcurrency, "max-model-concurrency", limiter.DefaultMaxLimit, "cap of the adaptive limit per model")
	dur(&s.MaxSnooze, "max-snooze", pipeline.DefaultRetryMaxSnooze, "longest a job waits out throttling before its message is released")
	dur(&s.LimiterMetricsInterval, "limiter-metrics-interval", app.DefaultLimiterMetricsInterval, "how often each model's limiter state is written as an EMF line")
	dur(&s.WaitTime, "wait-time", worker.DefaultWaitTime, "SQS long-poll wait, whole seconds up to 20s")
	dur(&s.VisibilityTimeout, "visibility-timeout", worker.DefaultVisibilityTimeout,
		"visibility set on receive and extended by the heartbeat (every quarter of it); a killed worker's jobs run again after about this long")
	dur(&s.ReleaseDelay, "release-delay", worker.DefaultReleaseDelay, "how long a transiently failed message stays invisible")
	// No default of its own: unset, the claim lease is the visibility
	// timeout, and it may not be longer (app.New).
	dur(&s.ClaimLease, "claim-lease", 0,
		"how long a job's claim keeps other deliveries of it from calling the model, renewed every third of it while the job runs; at most the visibility timeout (default: the visibility timeout)")
	dur(&s.DrainTimeout, "drain-timeout", worker.DefaultDrainTimeout, "on SIGTERM, how long running jobs may finish before they are released")
	num(&s.RetryMaxAttempts, "retry-max-attempts", pipeline.DefaultRetryMaxAttempts, "failed model calls (throttles not counted) per tier per delivery before the message is released")
	dur(&s.CallTimeout, "call-timeout", pipeline.DefaultCallTimeout, "bound on one Converse attempt; a timed-out attempt is retried")
	fs.StringVar(&s.MetricsNamespace, "metrics-namespace", pipeline.DefaultMetricsNamespace, "CloudWatch namespace of the EMF metrics")
	fs.StringVar(&s.WorkerID, "worker-id", "", "worker name in results (default: host name)")
	fs.Var(&boolValue{p: &s.SkipChecks, name: "skip-checks", bad: bad}, "skip-checks",
		"start without the start-up checks of the queues, the results bucket, each tier's model and guardrail")
	fs.StringVar(&s.ModelCheck, "model-check", app.DefaultModelCheck,
		"how the start-up checks prove each model: converse (a 1-token call with the tier's guardrail), count-tokens (free where the model supports it, else converse) or count-tokens-only (never spends a token; unsupported models are skipped with a WARN)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq worker [flags]

Receives job messages from SQS, runs each through tiering, a guardrailed
Bedrock Converse call and an exactly-once S3 result write, and emits one EMF
metrics line per job. Stops on SIGTERM or SIGINT after draining.

Before it receives anything it checks the queues, the results bucket, and
each tier's model and guardrail, and exits with every problem it found
(--skip-checks to start without).

Every flag can also be set in the environment as TIERQ_<FLAG> (for example
TIERQ_QUEUE_URL) or in the --config YAML file as <flag> (for example
queue_url). Precedence: flag, environment, file, default. Durations take a
unit: 30s, 1m, 1.5s. AWS credentials and Region come only from the SDK's
default chain (task role, AWS_REGION, ...); AWS_ENDPOINT_URL_SQS, _S3 and
_BEDROCK_RUNTIME point at emulators.

Logs are JSON lines on stderr; durations in them are strings such as "30s".

flags:
`)
		printFlags(fs, stderr)
	}
	return fs, config, metricsFile, pathStyle, bad
}

// settingFlags names the flag of each app.Settings field: the one mapping
// from a setting to what the user types. The environment variable is
// envName of the flag, and the file key the flag with _ for -. A
// configuration error from app.New names the setting; describeSetting turns
// it into "--queue-url / TIERQ_QUEUE_URL". TestSettingFlagsCoverSettings
// keeps it complete.
var settingFlags = map[string]string{
	"QueueURL": "queue-url", "DeadLetterQueueURL": "dlq-url", "ResultsBucket": "results-bucket",
	"ResultsPrefix": "results-prefix", "InputBuckets": "input-buckets", "MaxDocumentBytes": "max-document-bytes",
	"TiersFile": "tiers-file", "Concurrency": "concurrency", "Limiter": "limiter",
	"ModelConcurrency": "model-concurrency", "MaxModelConcurrency": "max-model-concurrency",
	"MaxSnooze": "max-snooze", "LimiterMetricsInterval": "limiter-metrics-interval", "WaitTime": "wait-time",
	"VisibilityTimeout": "visibility-timeout", "ReleaseDelay": "release-delay", "ClaimLease": "claim-lease",
	"DrainTimeout": "drain-timeout", "RetryMaxAttempts": "retry-max-attempts", "CallTimeout": "call-timeout",
	"MetricsNamespace": "metrics-namespace", "WorkerID": "worker-id", "SkipChecks": "skip-checks",
	"ModelCheck": "model-check",
}

// describeSetting names a setting as the user sets it.
func describeSetting(setting string) string {
	name, ok := settingFlags[setting]
	if !ok {
		return setting
	}
	return "--" + name + " / " + envName(name)
}

// configurationError lists New's problems one a line, each naming the flag
// and environment variable to change.
func configurationError(err error) error {
	var b strings.Builder
	b.WriteString("configuration:")
	for _, se := range app.SettingErrors(err) {
		b.WriteString("\n  ")
		if se.Setting != "" {
			b.WriteString(describeSetting(se.Setting) + ": ")
		}
		b.WriteString(se.Problem)
	}
	b.WriteString("\n(set with flags, TIERQ_* environment variables or the --config file: see tierq worker --help)")
	return errors.New(b.String())
}

// badFlag keeps the last value a typed flag refused, to report it in the
// user's terms.
type badFlag struct {
	name, value string
	err         error
}

func (b *badFlag) record(name, value string, err error) error {
	b.name, b.value, b.err = name, value, err
	return err
}

// printFlags is flag.PrintDefaults with the value types named ("duration",
// "int") for the typed values below, which PrintDefaults calls "value".
func printFlags(fs *flag.FlagSet, w io.Writer) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		if t, ok := f.Value.(interface{ kind() string }); ok {
			kind = t.kind()
		}
		line := "  -" + f.Name
		if kind != "" {
			line += " " + kind
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			line += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintln(w, line)
	})
}

// durationValue is a time.Duration flag whose error names the unit.
type durationValue struct {
	p    *time.Duration
	name string
	bad  *badFlag
	// noDefault: zero means "unset" (the default is another setting's
	// value), shown as no default at all.
	noDefault bool
}

func (v *durationValue) kind() string { return "duration" }

func (v *durationValue) String() string {
	if v.p == nil || *v.p == 0 && v.noDefault {
		return ""
	}
	return v.p.String()
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return v.bad.record(v.name, s, errors.New("want a duration with a unit, such as 5s or 1m"))
		}
		return v.bad.record(v.name, s, errors.New("want a duration such as 5s, 1m or 1.5s"))
	}
	*v.p = d
	return nil
}

// intValue is an int flag whose error says so.
type intValue struct {
	p    *int
	name string
	bad  *badFlag
}

func (v *intValue) kind() string { return "int" }

func (v *intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return v.bad.record(v.name, s, errors.New("want a whole number, such as 8"))
	}
	*v.p = n
	return nil
}

// int64Value is an int64 flag whose error says so.
type int64Value struct {
	p    *int64
	name string
	bad  *badFlag
}

func (v *int64Value) kind() string { return "bytes" }

func (v *int64Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}

func (v *int64Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return v.bad.record(v.name, s, errors.New("want a whole number of bytes, such as 8388608"))
	}
	*v.p = n
	return nil
}

// boolValue is a bool flag whose error says so.
type boolValue struct {
	p    *bool
	name string
	bad  *badFlag
}

func (v *boolValue) IsBoolFlag() bool { return true }
func (v *boolValue) kind() string     { return "" }

func (v *boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return v.bad.record(v.name, s, errors.New("want true or false"))
	}
	*v.p = b
	return nil
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
	"TIERQ_METRICS_NAMESPACE", "TIERQ_WORKER_ID", "TIERQ_SKIP_CHECKS", "TIERQ_MODEL_CHECK",
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
	fs, _, metricsFile, pathStyle, bad := workerFlagSet(&s, stderr)
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
				errs = append(errs, fmt.Errorf("config %s: %s: %v: %w", path, k, v, err))
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%s: %w", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return app.Settings{}, "", false, err
	}
	if err := parseFlags(fs, bad, args, stderr); err != nil {
		return app.Settings{}, "", false, err
	}
	if fs.NArg() > 0 {
		return app.Settings{}, "", false, fmt.Errorf("unexpected arguments %q%s", fs.Args(), flagsHint)
	}
	s.Version = version
	return s, *metricsFile, *pathStyle, nil
}

// flagsHint ends a flag error in place of the 60 lines of usage.
const flagsHint = "\nrun 'tierq worker --help' for the flags"

// parseFlags parses args and reports a bad flag in one line naming the flag,
// the value and what it must look like, then where the flags are listed;
// only --help prints the usage.
func parseFlags(fs *flag.FlagSet, bad *badFlag, args []string, stderr io.Writer) error {
	usage := fs.Usage
	*bad = badFlag{}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	fs.Usage = usage
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case bad.err != nil:
		return fmt.Errorf("--%s %s: %w%s", bad.name, bad.value, bad.err, flagsHint)
	}
	// The flag package's own: an unknown flag, a missing value.
	return fmt.Errorf("%s%s", strings.Replace(err.Error(), " -", " --", 1), flagsHint)
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, metricsFile, pathStyle, err := parseWorkerSettings(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	log := app.NewLogger(stderr, slog.LevelInfo)
	metrics := stdout
	if metricsFile != "" {
		f, err := os.OpenFile(metricsFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("open metrics file: %w", err)
		}
		defer f.Close()
		metrics = f
	}
	clients, err := newAWSClients(ctx, awsSettings{S3PathStyle: pathStyle, Log: log})
	if err != nil {
		return err
	}
	// On ECS the agent's task-protection endpoint keeps a busy task from
	// scale-in; outside ECS there is none. A malformed ECS_AGENT_URI costs
	// the protection, not the worker.
	protect, err := taskprotect.FromEnv(os.Getenv)
	if err != nil {
		log.Warn("task scale-in protection off", "error", err)
	}
	w, err := app.New(s, app.Clients{
		Queue: clients.SQS, Store: clients.S3, Converser: clients.Bedrock,
		QueueInfo: clients.SQS, Bedrock: clients.Bedrock, Region: clients.Region, BedrockEndpoint: clients.BedrockEndpoint,
		TaskProtection: protect,
	}, metrics, log)
	if err != nil {
		return configurationError(err)
	}
	// Refuse to start rather than run jobs that could never succeed: every
	// one would meet the same missing bucket, queue, model access or
	// guardrail, fail its attempts and be released, over and over.
	if s.SkipChecks {
		log.Warn("start-up checks skipped", "setting", describeSetting("SkipChecks"))
	} else if err := w.Preflight(ctx); err != nil {
		return fmt.Errorf("%w\n(fix the above, or start without the checks: %s)", err, describeSetting("SkipChecks"))
	}
	log.Info("worker starting", "queue_url", s.QueueURL, "concurrency", s.Concurrency,
		"tiers", len(w.Tiers.Tiers), "version", version)
	// The worker logs "worker stopped" with its counts when Run returns.
	return w.Run(ctx)
}
