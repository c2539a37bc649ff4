package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/iampolicy"
)

// iamPolicyFlags registers the flags of tierq iam-policy. A flag that means
// what a worker flag means has the worker flag's name and default.
func iamPolicyFlags(c *iampolicy.Config, tiersFile *string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tierq iam-policy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(tiersFile, "tiers-file", "", "tier YAML `file` whose models, fallback models and guardrails are granted, as the worker's; default: the shipped tiering/default.yaml")
	fs.StringVar(&c.QueueARN, "queue-arn", "", "`ARN` of the job queue, arn:aws:sqs:REGION:ACCOUNT:NAME (required; the queue of the worker's --queue-url)")
	fs.StringVar(&c.DeadLetterQueueARN, "dlq-arn", "", "`ARN` of the dead-letter queue (the worker's --dlq-url); default: the job queue's ARN with -dlq added to its name (jobs -> jobs-dlq, jobs.fifo -> jobs-dlq.fifo)")
	fs.StringVar(&c.ResultsBucket, "results-bucket", "", "S3 `bucket` for results, as the worker's (required)")
	fs.StringVar(&c.ResultsPrefix, "results-prefix", iampolicy.DefaultResultsPrefix, "key `prefix` of result and claim objects, as the worker's")
	fs.Var((*listFlag)(&c.InputBuckets), "input-buckets", "S3 `buckets` jobs may reference with document_uri, comma-separated or repeated, as the worker's (default none); bucket/prefix grants only keys under prefix")
	fs.BoolVar(&c.ListInputBuckets, "list-input-buckets", false, "also grant s3:ListBucket on the input buckets, so a missing document fails as document_not_found, not document_access_denied; it lets the role enumerate them")
	fs.StringVar(&c.Region, "region", "", "`Region` of the worker's Bedrock calls, for inference profiles, models and guardrails given by ID (default: the queue ARN's)")
	fs.StringVar(&c.AccountID, "account-id", "", "`account` of those inference profiles and guardrails (default: the queue ARN's)")
	fs.BoolVar(&c.AllowUnguarded, "allow-unguarded", false, "grant the models of a tier without a guardrail without requiring one, instead of refusing")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq iam-policy --queue-arn ARN --results-bucket NAME [flags] > policy.json

Prints the worker task role's least-privilege IAM policy for a tier
configuration: the SQS and S3 calls the worker makes on the named queues and
buckets only; bedrock:InvokeModel on each tier's model_id and
fallback_model_id only, and only with the tier's guardrail
(bedrock:GuardrailIdentifier), which a deny statement keeps required whatever
else the role is given; ApplyGuardrail on those guardrails; and a deny of
Bedrock API keys (bearer tokens), so only the role's own credentials work.
Output is deterministic JSON.

A tier without a guardrail is refused unless --allow-unguarded is given. A
DRAFT guardrail version is refused: publish a version. Model IDs may be
foundation model IDs, system-defined inference profile IDs (us., eu., apac.,
global., ...) or the ARN of either. Placeholders such as ACCOUNT_ID and
REGION are accepted wherever an account or Region goes.

deploy/iam-task-policy.json is this command's output for the default tiers:
  go run ./cmd/tierq iam-policy --queue-arn arn:aws:sqs:us-east-1:ACCOUNT_ID:tierq-jobs \
    --results-bucket tierq-results-ACCOUNT_ID --input-buckets tierq-inputs-ACCOUNT_ID

flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

func runIAMPolicy(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg iampolicy.Config
	var tiersFile string
	fs := iamPolicyFlags(&cfg, &tiersFile, stderr)
	if err := parseArgs(fs, args, ""); err != nil {
		return err
	}
	tiers, err := app.LoadTiers(tiersFile)
	if err != nil {
		return err
	}
	cfg.Tiers = tiers
	policy, err := iampolicy.Generate(cfg)
	if err != nil {
		return fmt.Errorf("configuration:\n%w\n(see tierq iam-policy --help)", err)
	}
	if n := policy.Size(); n > iampolicy.ManagedPolicyMaxChars {
		fmt.Fprintf(stderr, "tierq iam-policy: the policy has %d characters, more than a managed policy takes (%d); attach it as an inline role policy (up to 10,240)\n",
			n, iampolicy.ManagedPolicyMaxChars)
	}
	_, err = stdout.Write(policy.Encode())
	return err
}
