// Command tierq runs tierq's parts: the Bedrock simulator today, and the
// worker, submit and sizing commands as they land. It only wires: flags and
// environment in, packages do the work.
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
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"worker", "receive jobs from SQS and run them through tiers, Bedrock and S3", runWorker},
		{"sim", "serve the Bedrock Runtime simulator (Converse, ApplyGuardrail, CountTokens)", runSim},
		{"submit", "enqueue documents as jobs (files, a folder or JSONL); --dry-run plans tiers and cost", runSubmit},
		{"sizing", "cost per tier and tenant, and when provisioned throughput pays off", runSizing},
		{"iam-policy", "print the worker's least-privilege IAM policy for a tier configuration", runIAMPolicy},
		{"status", "queue depth, dead letters by reason, results by status, cost and jobs per minute", runStatus},
		{"redrive", "move dead letters back to the job queue (all, by --reason, --max); --dry-run lists them", runRedrive},
		{"result", "print one job's result: status, tier, model, error, cost, usage, timings, output", runResult},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tierq <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'tierq <command> --help' for a command's flags.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		default:
			fmt.Fprintf(stderr, "tierq %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "tierq: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// parseArgs parses a command's flags and refuses positional arguments, with
// hint (what to do instead) when there is one.
func parseArgs(fs *flag.FlagSet, args []string, hint string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return nil
	}
	if hint != "" {
		return fmt.Errorf("unexpected arguments %q: %s", fs.Args(), hint)
	}
	return fmt.Errorf("unexpected arguments %q", fs.Args())
}
