package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		args        []string
		wantAWS     int
		wantSim     int
		wantLatency string // "" means not overridden
		wantErr     bool
	}{
		{"defaults", nil, 4566, 4599, "", false},
		{"free ports, latency", []string{"--aws-port", "0", "--sim-port=0", "--latency-scale", "0.05"}, 0, 0, "0.05", false},
		{"latency 1 given explicitly still overrides the config file", []string{"--latency-scale", "1"}, 4566, 4599, "1", false},
		{"stray argument", []string{"up"}, 0, 0, "", true},
		{"unknown flag", []string{"--port", "1"}, 0, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			o, err := parseUp(tt.args, &stderr)
			if tt.wantErr {
				if err == nil || stderr.Len() == 0 {
					t.Fatalf("parseUp(%q) = %v with stderr %q; want an error explained on stderr", tt.args, err, stderr.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("parseUp(%q): %v", tt.args, err)
			}
			if o.Stack.AWSPort != tt.wantAWS || o.Stack.SimPort != tt.wantSim {
				t.Errorf("ports %d, %d; want %d, %d", o.Stack.AWSPort, o.Stack.SimPort, tt.wantAWS, tt.wantSim)
			}
			got := ""
			if o.LatencyScale != nil {
				got = strconv.FormatFloat(*o.LatencyScale, 'g', -1, 64)
			}
			if got != tt.wantLatency {
				t.Errorf("latency override %q, want %q", got, tt.wantLatency)
			}
		})
	}
}

// TestUpLifecycle runs up in-process on free ports: the export lines and the
// ready line on stdout, the same exports in --env-file, the state saved on
// a stop, and a nil error (exit 0) when the context ends, as on Ctrl-C.
func TestUpLifecycle(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "tierq.env")
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runUp(ctx, []string{"--aws-port", "0", "--sim-port", "0", "--latency-scale", "0",
			"--env-file", envFile, "--state", filepath.Join(dir, "state")}, pw, io.Discard)
		pw.Close()
	}()
	var exports strings.Builder
	sc := bufio.NewScanner(pr)
	ready := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# tierq-dev ready: ") {
			ready = true
			break
		}
		exports.WriteString(line + "\n")
	}
	go io.Copy(io.Discard, pr)
	if !ready {
		cancel()
		t.Fatalf("no ready line; up returned %v", <-done)
	}
	file, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(file) != exports.String() {
		t.Errorf("--env-file holds\n%s\nstdout had\n%s", file, exports.String())
	}
	for _, name := range []string{"AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "TIERQ_QUEUE_URL", "TIERQ_DLQ_URL"} {
		if !strings.Contains(exports.String(), "export "+name+"=http://127.0.0.1:") {
			t.Errorf("exports lack %s on the loopback address:\n%s", name, exports.String())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("up after the stop signal: %v, want nil (exit 0)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("up did not stop within 30s of its context ending")
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "snapshot", "queues.json")); err != nil {
		t.Errorf("no state saved at the stop: %v", err)
	}
	if _, err := os.Stat(envFile); !os.IsNotExist(err) {
		t.Errorf("--env-file still there after the stop (%v): tierq-dev wait would report a stopped stack ready", err)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready.env")
	if err := os.WriteFile(ready, []byte("export A=b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"ready", []string{"wait", "--env-file", ready}, 0},
		{"not ready", []string{"wait", "--env-file", filepath.Join(dir, "missing.env"), "--timeout", "200ms"}, 1},
		{"no file named", []string{"wait"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			if got := run(t.Context(), tt.args, io.Discard, &stderr); got != tt.want {
				t.Errorf("tierq-dev %q exit %d (stderr %q), want %d", tt.args, got, stderr.String(), tt.want)
			}
		})
	}
}
