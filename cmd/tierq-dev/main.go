// Command tierq-dev is the development entry point: `tierq-dev demo` runs
// tierq on embedded emulators (kumo for SQS and S3, the Bedrock simulator).
// It links the emulators, so it is never built into the worker image;
// production runs cmd/tierq.
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 || os.Args[1] != "demo" {
		fmt.Fprintln(os.Stderr, "usage: tierq-dev demo [flags]")
		os.Exit(2)
	}
	opts, err := demoOptions(os.Args[2:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		os.Exit(2) // the problem and the usage are printed already
	}
	if _, err := demo.Run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
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
