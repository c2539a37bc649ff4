package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/submit"
)

func runSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tierq submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o submit.Options
	fs.StringVar(&o.QueueURL, "queue-url", os.Getenv("TIERQ_QUEUE_URL"), "job queue URL (env TIERQ_QUEUE_URL); required unless --dry-run")
	fs.StringVar(&o.InputBucket, "input-bucket", os.Getenv("TIERQ_INPUT_BUCKET"),
		"bucket for documents too large to send inline (env TIERQ_INPUT_BUCKET); without it such jobs fail")
	fs.StringVar(&o.InputPrefix, "input-prefix", submit.DefaultInputPrefix, "key prefix of uploaded documents: {prefix}{job_id}.txt")
	inline := sizeFlag(submit.DefaultInlineLimit)
	fs.Var(&inline, "inline-limit", "largest message that carries its document inline, in bytes or with KiB/MiB, at most 1MiB")
	fs.StringVar(&o.Task, "task", submit.DefaultTask, "task for documents given as files: summarize, classify, extract or custom")
	labels := fs.String("labels", "", "comma-separated labels for --task classify (at least 2)")
	fields := fs.String("fields", "", "comma-separated fields for --task extract")
	fs.StringVar(&o.Instructions, "instructions", "", "instructions for the documents' jobs (required for --task custom)")
	fs.StringVar(&o.TierHint, "tier-hint", "", "tier the documents' jobs prefer when they fit it")
	fs.StringVar(&o.TierOverride, "tier-override", "", "tier the documents' jobs must use")
	fs.StringVar(&o.JobIDPrefix, "job-id-prefix", "", "prefix for job IDs derived from file names (a new prefix reruns the same files)")
	fs.StringVar(&o.Tenant, "tenant", "", "metadata tenant of the documents' jobs, for cost reports")
	tiersFile := fs.String("tiers", os.Getenv("TIERQ_TIERS_FILE"), "tier configuration YAML for --dry-run (env TIERQ_TIERS_FILE; default: the built-in tiers)")
	fs.BoolVar(&o.Raw, "raw", false, "send each file verbatim as one message body, unvalidated (to exercise the dead-letter queue)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "print the tier plan and estimated cost range; send nothing, need no AWS access")
	fs.BoolVar(&o.Verbose, "verbose", false, "with --dry-run, print one line per job")
	fs.BoolVar(&o.AllowInvalid, "allow-invalid", false, "exit 0 even if invalid inputs were skipped")
	pathStyle, err := envBool("TIERQ_S3_PATH_STYLE")
	if err != nil {
		return err
	}
	s3PathStyle := fs.Bool("s3-path-style", pathStyle, "address S3 as http://host/bucket (env TIERQ_S3_PATH_STYLE; for LocalStack and emulators)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq submit [flags] PATH...

Enqueues document jobs on the job queue, in batches of 10. Each PATH is
  - a document file: one job, its ID derived from the file name, its task and
    options from the flags;
  - a folder: every regular, non-hidden file in it (not subfolders);
  - a .jsonl file: one job message v1 per line; a line may give
    "file": "relative/path" instead of "text" to read the document from a file.
Invalid lines are reported with their line numbers and skipped.
A document too large for a message is uploaded to the input bucket and sent
by reference. --dry-run prints which tier each job would get and what it
would cost, without sending anything.

Environment: TIERQ_QUEUE_URL, TIERQ_INPUT_BUCKET, TIERQ_TIERS_FILE,
TIERQ_S3_PATH_STYLE (flags override them); AWS credentials, AWS_REGION and
AWS_ENDPOINT_URL* come from the AWS SDK's usual sources.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Paths = fs.Args()
	o.InlineLimit = int(inline)
	o.Labels = splitList(*labels)
	o.Fields = splitList(*fields)

	var deps submit.Deps
	if o.DryRun {
		// Tiers matter only to the plan; a real run leaves them to the worker.
		if deps.Tiers, err = app.LoadTiers(*tiersFile); err != nil {
			return err
		}
	} else {
		// Validate before building clients, so a usage mistake is reported
		// as one, not as a missing AWS Region.
		if err := o.Validate(); err != nil {
			return fmt.Errorf("invalid options:\n%w", err)
		}
		clients, err := newAWSClients(ctx, awsSettings{S3PathStyle: *s3PathStyle})
		if err != nil {
			return err
		}
		deps.Queue, deps.Uploader = clients.SQS, clients.S3
	}
	o.Terminal = isTerminal(stderr)
	_, err = submit.Run(ctx, o, deps, stderr, stdout)
	return err
}

// isTerminal reports whether w is a terminal, where a progress bar can be
// redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func envBool(name string) (bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// sizeFlag is a byte count given as 245760, 240KiB or 1MiB.
type sizeFlag int

func (s *sizeFlag) String() string {
	switch n := int(*s); {
	case n != 0 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	default:
		return strconv.Itoa(n)
	}
}

func (s *sizeFlag) Set(v string) error {
	num, mult := strings.TrimSpace(v), 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"B", 1}} {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return errors.New("want a byte count such as 65536, 64KiB or 1MiB")
	}
	*s = sizeFlag(n * mult)
	return nil
}
