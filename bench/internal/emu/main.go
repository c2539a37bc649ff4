// Command emu serves the emulators the overhead benchmark measures against,
// in a process of its own: kumo (SQS and S3 on one port) and the Bedrock
// simulator with no latency and no quotas. The benchmark measures its own
// process's CPU time, so the emulators must not run inside it.
//
// It prints one JSON line, {"kumo": URL, "sim": URL}, once both serve, and
// stops when its standard input closes (its parent exited) or on SIGTERM.
// It is a benchmark helper, never part of tierq.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/signal"
	"syscall"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "emu:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := bedrocksim.DefaultConfig() // LatencyScale 0: answers come at once
	for id, m := range cfg.Models {
		m.RPM, m.TPM = 0, 0 // no quota: nothing is throttled
		cfg.Models[id] = m
	}
	sim, err := bedrocksim.New(cfg)
	if err != nil {
		return err
	}
	simSrv := httptest.NewServer(sim)
	defer simSrv.Close()
	kumoURL, stopKumo := emulator.Start()
	defer stopKumo()

	line, err := json.Marshal(map[string]string{"kumo": kumoURL, "sim": simSrv.URL})
	if err != nil {
		return err
	}
	if _, err := fmt.Println(string(line)); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // returns when the parent goes
		stop()
	}()
	<-ctx.Done()
	return nil
}
