package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSimHelpDocumentsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"sim", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	for _, flag := range []string{"addr", "config", "minute", "latency-scale", "seed", "fault-internal",
		"fault-unavailable", "fault-timeout", "fault-not-ready", "spike-fraction", "spike", "print-config"} {
		if !strings.Contains(errOut.String(), "-"+flag+" ") && !strings.Contains(errOut.String(), "-"+flag+"\n") {
			t.Errorf("help does not document --%s:\n%s", flag, errOut.String())
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"nope"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Errorf("exit %d, stderr %q; want 2 and a message", code, errOut.String())
	}
}

func TestSimServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"sim", "--addr", "127.0.0.1:0", "--minute", "6s"}, io.Discard, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("simulator printed nothing")
	}
	var line struct{ Msg, Addr string }
	if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Addr == "" {
		t.Fatalf("first log line %q: want JSON with addr (%v)", sc.Text(), err)
	}
	go io.Copy(io.Discard, pr)
	resp, err := http.Get("http://" + line.Addr + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Minute string }
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Minute != "6s" {
		t.Errorf("stats minute = %q, want 6s from --minute", st.Minute)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d after cancel, want 0", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("simulator did not stop")
	}
}

func TestSimRejectsBadConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"sim", "--fault-timeout", "3"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "timeout") {
		t.Errorf("exit %d, stderr %q; want 1 and the bad setting named", code, errOut.String())
	}
}
