package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/internal/bedrocksim"
)

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tierq sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4599", "listen address (host:port); use 0.0.0.0:4599 in a container")
	configFile := fs.String("config", "", "YAML file of models, guardrails and timing, applied on top of the built-ins (see testdata/sim/example.yaml)")
	minute := fs.Duration("minute", time.Minute, "length of a quota window; 6s compresses a minute tenfold (overrides the config file)")
	latencyScale := fs.Float64("latency-scale", 1, "multiply simulated latency: 1 real time, 0.1 ten times faster, 0 none (overrides the config file)")
	seed := fs.Uint64("seed", 1, "seed for latency jitter and fault injection (overrides the config file)")
	var f bedrocksim.Faults
	fs.Float64Var(&f.InternalError, "fault-internal", 0, "fraction of calls to every model failing with 500 InternalServerException")
	fs.Float64Var(&f.ServiceUnavailable, "fault-unavailable", 0, "fraction failing with 503 ServiceUnavailableException")
	fs.Float64Var(&f.Timeout, "fault-timeout", 0, "fraction failing with 408 ModelTimeoutException")
	fs.Float64Var(&f.NotReady, "fault-not-ready", 0, "fraction failing with 429 ModelNotReadyException")
	fs.Float64Var(&f.SpikeFraction, "spike-fraction", 0, "fraction of successful calls slowed by --spike")
	fs.DurationVar(&f.Spike, "spike", 0, "extra latency of a spiked call, before --latency-scale")
	printConfig := fs.Bool("print-config", false, "print the effective configuration as YAML and exit")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq sim [flags]

Serves a simulated Amazon Bedrock Runtime on --addr for the real AWS SDK clients:
  POST /model/{modelId}/converse, /model/{modelId}/count-tokens,
  POST /guardrail/{id}/version/{version}/apply,
  GET /_sim/stats, POST /_sim/quota, /_sim/faults, /_sim/reset (admin).
Point clients at it with AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://ADDR.
Fault flags apply to every model and replace the config file's faults.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	var data []byte
	if *configFile != "" {
		var err error
		if data, err = os.ReadFile(*configFile); err != nil {
			return fmt.Errorf("read config: %w", err)
		}
	}
	cfg, err := bedrocksim.LoadConfig(data)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["minute"] {
		cfg.Minute = *minute
	}
	if set["latency-scale"] {
		cfg.LatencyScale = *latencyScale
	}
	if set["seed"] {
		cfg.Seed = *seed
	}
	for _, name := range []string{"fault-internal", "fault-unavailable", "fault-timeout", "fault-not-ready", "spike-fraction", "spike"} {
		if set[name] {
			for id, m := range cfg.Models {
				m.Faults = f
				cfg.Models[id] = m
			}
			break
		}
	}
	if *printConfig {
		return yaml.NewEncoder(stdout).Encode(cfg)
	}
	sim, err := bedrocksim.New(cfg)
	if err != nil {
		return err
	}

	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	log.Info("bedrock simulator listening", "addr", ln.Addr().String(), "models", len(cfg.Models),
		"guardrails", len(cfg.Guardrails), "minute", cfg.Minute.String(), "latency_scale", cfg.LatencyScale)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("bedrock simulator stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
