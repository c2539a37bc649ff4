package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/tierq/tierq/internal/ops"
	"github.com/tierq/tierq/pipeline"
)

// opsNow is the clock of the operator commands; tests replace it.
var opsNow = time.Now

// opsSettings are the deployment settings tierq status, redrive and result
// share with the worker: the same flag names and TIERQ_ variables, so the
// worker's environment (an ECS task definition, a .env file) serves them
// too. Flags that only shape one run (--json, --max, --dry-run) have no
// variable: a TIERQ_MAX or TIERQ_DRY_RUN left in an environment would
// change what a command does without anyone seeing it on the command line.
type opsSettings struct {
	queueURL, dlqURL, bucket, prefix string
	pathStyle                        bool
}

func (s *opsSettings) queueFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.queueURL, "queue-url", os.Getenv("TIERQ_QUEUE_URL"), "job queue URL (env TIERQ_QUEUE_URL)")
	fs.StringVar(&s.dlqURL, "dlq-url", os.Getenv("TIERQ_DLQ_URL"), "dead-letter queue URL (env TIERQ_DLQ_URL)")
}

func (s *opsSettings) resultFlags(fs *flag.FlagSet) error {
	fs.StringVar(&s.bucket, "results-bucket", os.Getenv("TIERQ_RESULTS_BUCKET"), "bucket of result objects (env TIERQ_RESULTS_BUCKET)")
	prefix := os.Getenv("TIERQ_RESULTS_PREFIX")
	if prefix == "" {
		prefix = pipeline.DefaultResultsPrefix
	}
	fs.StringVar(&s.prefix, "results-prefix", prefix, "key prefix of result objects (env TIERQ_RESULTS_PREFIX)")
	pathStyle, err := envBool("TIERQ_S3_PATH_STYLE")
	if err != nil {
		return err
	}
	fs.BoolVar(&s.pathStyle, "s3-path-style", pathStyle, "address S3 as http://host/bucket (env TIERQ_S3_PATH_STYLE; for LocalStack and emulators)")
	return nil
}

// required reports an empty setting by its flag and its variable.
func required(value, flagName, env string) error {
	if value == "" {
		return fmt.Errorf("--%s / %s is required", flagName, env)
	}
	return nil
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tierq status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s opsSettings
	s.queueFlags(fs)
	if err := s.resultFlags(fs); err != nil {
		return err
	}
	useCW := fs.Bool("cloudwatch", false, "read each queue's oldest message age from CloudWatch (AWS/SQS ApproximateAgeOfOldestMessage); needs cloudwatch:GetMetricStatistics")
	scan := fs.Int("dlq-scan", ops.DefaultDLQScan, "read at most `N` dead letters to count them by reason (0: counts only, receive nothing)")
	concurrency := fs.Int("concurrency", ops.DefaultConcurrency, "result objects read at once")
	jsonOut := fs.Bool("json", false, "print JSON for scripts instead of text")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq status [flags]

Shows where the work is: the job queue's depth (visible, in flight, delayed),
the dead-letter queue's depth and its messages counted by reason, and the
results counted by status and tier, with their recorded cost and the jobs
finished per minute.

What it costs: 2 GetQueueAttributes; per 10 dead letters read, one
ReceiveMessage and one ChangeMessageVisibilityBatch; per 1,000 objects under
the results prefix, one ListObjectsV2; one GetObject per result (a million
results are about USD 0.40 of GET requests and some minutes at
--concurrency 16); with --cloudwatch, 2 GetMetricStatistics.

SQS cannot show a message without receiving it. Dead letters are received,
hidden for a few seconds so each is read once, and made visible again, never
deleted: each read adds one to a dead letter's ApproximateReceiveCount.
--dlq-scan 0 skips that. A dead-letter queue with a redrive policy of its own
is not read.

The job queue's oldest message age is not an SQS attribute: it is "unknown"
unless --cloudwatch reads AWS/SQS ApproximateAgeOfOldestMessage (emulators
have no such metric). The oldest dead letter's age comes from the dead
letters read.

Environment: TIERQ_QUEUE_URL, TIERQ_DLQ_URL, TIERQ_RESULTS_BUCKET,
TIERQ_RESULTS_PREFIX, TIERQ_S3_PATH_STYLE (flags override them); AWS
credentials, AWS_REGION and AWS_ENDPOINT_URL* come from the AWS SDK's usual
sources.

flags:
`)
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args, ""); err != nil {
		return err
	}
	errs := []error{
		required(s.queueURL, "queue-url", "TIERQ_QUEUE_URL"),
		required(s.dlqURL, "dlq-url", "TIERQ_DLQ_URL"),
		required(s.bucket, "results-bucket", "TIERQ_RESULTS_BUCKET"),
	}
	if *scan < 0 {
		errs = append(errs, fmt.Errorf("--dlq-scan %d: want 0 or more", *scan))
	}
	if *concurrency < 1 || *concurrency > 256 {
		errs = append(errs, fmt.Errorf("--concurrency %d: want 1 to 256", *concurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid options:\n%w", err)
	}
	clients, err := newAWSClients(ctx, awsSettings{S3PathStyle: s.pathStyle})
	if err != nil {
		return err
	}
	c := ops.StatusConfig{
		Queue: clients.SQS, QueueURL: s.queueURL, DLQURL: s.dlqURL,
		Store: clients.S3, Bucket: s.bucket, Prefix: s.prefix,
		DLQScan: *scan, Concurrency: *concurrency, Progress: stderr, Now: opsNow,
	}
	if *useCW {
		c.Metrics = cloudwatch.NewFromConfig(clients.Config)
	}
	st, err := ops.Collect(ctx, c)
	if err != nil {
		return err
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return ops.WriteStatus(stdout, st)
}
