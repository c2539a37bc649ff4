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
	"time"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/devstack"
)

// errUsage marks a flag mistake whose message and usage are printed already.
var errUsage = errors.New("usage")

// upOptions are the flags of tierq-dev up.
type upOptions struct {
	Stack     devstack.Config
	SimConfig string
	// LatencyScale overrides the simulator config's when set.
	LatencyScale *float64
	EnvFile      string
}

func parseUp(args []string, stderr io.Writer) (upOptions, error) {
	fs := flag.NewFlagSet("tierq-dev up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o upOptions
	fs.StringVar(&o.Stack.Bind, "bind", devstack.DefaultBind, "address the servers listen on (0.0.0.0 in a container)")
	fs.StringVar(&o.Stack.Host, "host", "", "host name in the printed endpoints and queue URLs (default: --bind, or 127.0.0.1 for 0.0.0.0)")
	fs.IntVar(&o.Stack.AWSPort, "aws-port", devstack.DefaultAWSPort, "port of SQS and S3 (one port, as LocalStack's); 0 picks a free one")
	fs.IntVar(&o.Stack.SimPort, "sim-port", devstack.DefaultSimPort, "port of the Bedrock simulator; 0 picks a free one")
	fs.StringVar(&o.Stack.StateDir, "state", "", "folder keeping queues, messages and objects between runs (saved at a clean stop)")
	fs.StringVar(&o.SimConfig, "sim-config", "", "simulator YAML: models, quotas, guardrails, faults (see testdata/sim/example.yaml)")
	latency := fs.Float64("latency-scale", 1, "multiply simulated model latency: 1 real time, 0.1 ten times faster, 0 none (overrides --sim-config)")
	fs.IntVar(&o.Stack.MaxReceiveCount, "max-receive-count", devstack.DefaultMaxReceiveCount, "deliveries of a job message before SQS moves it to the dead-letter queue")
	fs.StringVar(&o.EnvFile, "env-file", "", "also write the export lines to this file (source it in other terminals)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: tierq-dev up [flags]

Serves SQS and S3 (kumo) and the Bedrock simulator on fixed local ports,
creates the job queue %s, its dead-letter queue %s (redrive after
--max-receive-count deliveries) and the buckets %s and %s, prints the
export lines a shell needs for tierq worker and tierq submit, then a line
"# tierq-dev ready: ...". Stops on Ctrl-C or SIGTERM.

flags:
`, devstack.JobQueue, devstack.DeadLetterQueue, devstack.ResultsBucket, devstack.InputBucket)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tierq-dev up: unexpected arguments %q: every setting is a flag\n", fs.Args())
		return o, errUsage
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "latency-scale" {
			o.LatencyScale = latency
		}
	})
	return o, nil
}

// simConfig loads the simulator's configuration: the built-ins, the
// --sim-config file on top, then --latency-scale.
func (o upOptions) simConfig() (bedrocksim.Config, error) {
	var data []byte
	if o.SimConfig != "" {
		var err error
		if data, err = os.ReadFile(o.SimConfig); err != nil {
			return bedrocksim.Config{}, fmt.Errorf("read --sim-config: %w", err)
		}
	}
	cfg, err := bedrocksim.LoadConfig(data)
	if err != nil {
		return bedrocksim.Config{}, fmt.Errorf("--sim-config %s: %w", o.SimConfig, err)
	}
	if o.LatencyScale != nil {
		cfg.LatencyScale = *o.LatencyScale
	}
	return cfg, nil
}

// stopTimeout bounds saving the state at a stop.
const stopTimeout = 5 * time.Minute

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseUp(args, stderr)
	if err != nil {
		return err
	}
	if o.Stack.Sim, err = o.simConfig(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if o.EnvFile != "" {
		// The file appears when the stack is ready and goes when it stops,
		// so `tierq-dev wait` (and the compose healthcheck) can rely on it.
		if err := os.Remove(o.EnvFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the previous --env-file: %w", err)
		}
		defer os.Remove(o.EnvFile)
	}
	st, err := devstack.Start(ctx, o.Stack, log)
	if err != nil {
		return err
	}
	var exports bytes.Buffer
	if err := devstack.WriteExports(&exports, st.Endpoints.Env()); err != nil {
		st.Close(context.Background())
		return err
	}
	if o.EnvFile != "" {
		// Written aside and renamed into place: tierq-dev wait treats the
		// file's existence as ready, so it must never be seen half written.
		tmp := o.EnvFile + ".tmp"
		err := os.WriteFile(tmp, exports.Bytes(), 0o644)
		if err == nil {
			err = os.Rename(tmp, o.EnvFile)
		}
		if err != nil {
			st.Close(context.Background())
			return fmt.Errorf("write --env-file: %w", err)
		}
	}
	// Every stdout line is shell: the exports, then the ready line as a
	// comment, which scripts wait for.
	fmt.Fprintf(stdout, "%s# tierq-dev ready: SQS and S3 on %s, Bedrock simulator on %s; Ctrl-C stops\n",
		exports.Bytes(), st.Endpoints.SQS, st.Endpoints.Bedrock)

	var served error
	select {
	case <-ctx.Done():
	case served = <-st.Err():
	}
	log.Info("stopping")
	stop, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := st.Close(stop); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if served != nil {
		return fmt.Errorf("serve: %w", served)
	}
	return nil
}

// runWait waits until up's --env-file exists, that is until the stack is
// ready: for scripts and the compose healthcheck (whose image has no shell).
func runWait(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("tierq-dev wait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env-file", "", "the --env-file of tierq-dev up (required)")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *envFile == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: tierq-dev wait --env-file FILE [--timeout 1m]")
		return errUsage
	}
	deadline := time.Now().Add(*timeout)
	for {
		if fi, err := os.Stat(*envFile); err == nil && fi.Size() > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s: is tierq-dev up running with --env-file %s?", *envFile, *timeout, *envFile)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
