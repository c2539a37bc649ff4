package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tierq/tierq/internal/ops"
)

func runResult(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tierq result", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s opsSettings
	if err := s.resultFlags(fs); err != nil {
		return err
	}
	full := fs.Bool("full", false, fmt.Sprintf("print the whole output text (default: its first %d characters)", ops.DefaultOutputChars))
	jsonOut := fs.Bool("json", false, "print the result object exactly as stored")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq result [flags] JOB_ID

Prints one job's result, s3://{results bucket}/{prefix}{JOB_ID}.json: status,
tier and why, model, error code and message, cost, usage, each model call,
escalations, timings, and the output text (cut unless --full). --json prints
the object as stored. Control characters in the result are shown escaped.

The job ID is checked with the worker's rules before any S3 call. A missing
result says whether a worker holds the job's claim (one more GetObject);
otherwise the job is still queued or was dead-lettered: tierq status counts
both, tierq redrive --dry-run lists dead letters with their job IDs.

What it costs: one GetObject (two when there is no result).

Environment: TIERQ_RESULTS_BUCKET, TIERQ_RESULTS_PREFIX, TIERQ_S3_PATH_STYLE
(flags override them); AWS credentials, AWS_REGION and AWS_ENDPOINT_URL* come
from the AWS SDK's usual sources.

flags:
`)
		fs.PrintDefaults()
	}
	// Flags may come before or after the job ID.
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ids []string
	for fs.NArg() > 0 {
		ids = append(ids, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	var errs []error
	switch len(ids) {
	case 0:
		errs = append(errs, errors.New("give the JOB_ID whose result to print"))
	case 1:
		if err := ops.ValidateJobID(ids[0]); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf("give one JOB_ID, got %d: %q", len(ids), ids))
	}
	errs = append(errs, required(s.bucket, "results-bucket", "TIERQ_RESULTS_BUCKET"))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid options:\n%w", err)
	}
	clients, err := newAWSClients(ctx, awsSettings{S3PathStyle: s.pathStyle})
	if err != nil {
		return err
	}
	f, err := ops.FetchResult(ctx, clients.S3, s.bucket, s.prefix, ids[0], opsNow())
	if *jsonOut && f.Raw != nil {
		if _, werr := stdout.Write(f.Raw); werr != nil {
			return werr
		}
		return err
	}
	if err != nil {
		return err
	}
	limit := ops.DefaultOutputChars
	if *full {
		limit = 0
	}
	return ops.WriteResult(stdout, f.Result, limit)
}
