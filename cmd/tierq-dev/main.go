// Command tierq-dev is the development entry point: `tierq-dev demo` runs
// tierq on embedded emulators (kumo for SQS and S3, the Bedrock simulator);
// `tierq-dev up` serves those emulators as a local AWS for `tierq worker` and
// `tierq submit` processes. It links the emulators, so it is never built into
// the worker image; production runs cmd/tierq.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tierq/tierq/internal/demo"
)

const usage = `usage: tierq-dev <command> [flags]

commands:
  demo   the whole pipeline on embedded emulators over testdata/corpus
  up     serve SQS, S3 and the Bedrock simulator locally for tierq worker and submit
  wait   wait until up is ready (its --env-file exists)

Run 'tierq-dev <command> --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "demo":
		opts, err := demoOptions(args[1:], stderr)
		switch {
		case errors.Is(err, flag.ErrHelp):
			return 0
		case err != nil:
			return 2 // the problem and the usage are printed already
		}
		if _, err := demo.Run(ctx, opts, stdout); err != nil {
			fmt.Fprintln(stderr, "demo:", err)
			return 1
		}
		return 0
	case "up":
		return exitCode(stderr, "tierq-dev up", runUp(ctx, args[1:], stdout, stderr))
	case "wait":
		return exitCode(stderr, "tierq-dev wait", runWait(ctx, args[1:], stderr))
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tierq-dev: unknown command %q\n%s", args[0], usage)
	return 2
}

// demoOptions parses the demo's flags.
func demoOptions(args []string, stderr io.Writer) (demo.Options, error) {
	fs := flag.NewFlagSet("tierq-dev demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts demo.Options
	fs.StringVar(&opts.Corpus, "corpus", "testdata/corpus", "folder with jobs.jsonl, docs.jsonl and malformed/")
	fs.StringVar(&opts.Out, "out", "demo-out", "folder for results, dead letters, metrics and logs")
	fs.IntVar(&opts.Workers, "workers", 2, "workers to run in-process")
	fs.IntVar(&opts.Concurrency, "concurrency", 6, "job slots per worker")
	fs.Float64Var(&opts.LatencyScale, "latency-scale", 0.05, "multiplier of the simulated model latency")
	fs.Float64Var(&opts.FaultRate, "fault-rate", 0.05, "fraction of economy-model calls failing with 503 (negative: none)")
	fs.DurationVar(&opts.Timeout, "timeout", 0, "how long to wait for the queue to drain (default 3m)")
	fs.StringVar(&opts.Tiers, "tiers", "", "tier configuration YAML, e.g. with flex or caching (default: the shipped tiering/default.yaml)")
	if err := fs.Parse(args); err != nil {
		return demo.Options{}, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments %q: every setting is a flag", fs.Args())
		fmt.Fprintln(stderr, "tierq-dev demo:", err)
		return demo.Options{}, err
	}
	return opts, nil
}

// exitCode is a command's exit status for its error: 0 for none or -h, 2 for
// a usage mistake (already reported), 1 for anything else, printed.
func exitCode(stderr io.Writer, name string, err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
}
