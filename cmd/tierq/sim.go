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

	"github.com/tierq/tierq/internal/app"
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
	tlsCert := fs.String("tls-cert", "", "PEM certificate file: serve HTTPS, HTTP/1.1 and HTTP/2 chosen by ALPN (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key file of --tls-cert")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq sim [flags]

Serves a simulated Amazon Bedrock Runtime on --addr for the real AWS SDK clients:
  POST /model/{modelId}/converse, /model/{modelId}/count-tokens,
  POST /guardrail/{id}/version/{version}/apply,
  GET /_sim/stats, POST /_sim/quota, /_sim/faults, /_sim/reset (admin).
Point clients at it with AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://ADDR. It speaks
HTTP/1.1 and cleartext HTTP/2 (prior knowledge) on the same port, as AWS SDKs
that default to HTTP/2 (Node's v3 clients) need; with --tls-cert and --tls-key
it serves HTTPS instead, HTTP/2 or HTTP/1.1 by ALPN.
Fault flags apply to every model and replace the config file's faults.

flags:
`)
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args, ""); err != nil {
		return err
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
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

	log := app.NewLogger(stderr, slog.LevelInfo)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// HTTP/1.1 and HTTP/2 on one port: cleartext HTTP/2 with prior
	// knowledge (h2c) without TLS, HTTP/2 by ALPN with it. Node's AWS SDK v3
	// clients speak HTTP/2 and fail every call against an HTTP/1.1-only
	// server.
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	scheme := "http"
	if *tlsCert != "" {
		srv.Protocols.SetHTTP2(true)
		scheme = "https"
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	log.Info("bedrock simulator listening", "addr", ln.Addr().String(), "scheme", scheme, "models", len(cfg.Models),
		"guardrails", len(cfg.Guardrails), "minute", cfg.Minute.String(), "latency_scale", cfg.LatencyScale)
	errc := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			errc <- srv.ServeTLS(ln, *tlsCert, *tlsKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
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
