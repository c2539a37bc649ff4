package chaos_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestQuickStartOutage runs README's "Break a job, fix it, redrive it" with
// the real binaries: a model outage sends a job to the dead-letter queue,
// tierq status shows it, and once the model answers again tierq redrive
// moves it back and tierq result shows it succeeded.
func TestQuickStartOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and runs processes")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGTERM")
	}
	dir := t.TempDir()
	bin := build(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	up := startUp(t, ctx, bin, dir, "--max-receive-count", "3")
	env := up.env
	defer func() {
		if err := up.stop(); err != nil {
			t.Errorf("tierq-dev up: %v", err)
		}
	}()
	pool := &workerPool{t: t, bin: bin, dir: dir, env: env, extra: []string{"--release-delay", "1s", "--wait-time", "1s"}}
	pool.start(ctx, 0)
	defer pool.stopAll()

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin.tierq, args...)
		cmd.Env = env.environ()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tierq %s: %v\n%s", strings.Join(args, " "), err, tail(out))
		}
		return string(out)
	}
	faults := func(rate string) {
		t.Helper()
		body := `{"model_id":"us.amazon.nova-micro-v1:0","service_unavailable":` + rate + `}`
		resp, err := http.Post(env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"]+"/_sim/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/_sim/faults: %s", resp.Status)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 90 s", what)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	faults("1") // break: every economy call fails with 503
	jobs := filepath.Join(dir, "outage.jsonl")
	job := `{"version":"1","job_id":"outage-0001","task":"summarize","text":"The warehouse moved to Building 4 on Monday."}` + "\n"
	if err := os.WriteFile(jobs, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	run("submit", jobs)
	waitFor("dead letter", func() bool {
		var st struct {
			DeadLetters struct {
				Visible int `json:"visible"`
				Reasons []struct {
					Class string `json:"class"`
					Count int    `json:"count"`
				} `json:"reasons"`
			} `json:"dead_letters"`
		}
		if err := json.Unmarshal([]byte(run("status", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		return st.DeadLetters.Visible == 1 && len(st.DeadLetters.Reasons) == 1 && st.DeadLetters.Reasons[0].Class == "no_reason"
	})

	faults("0") // fix
	if out := run("redrive", "--dry-run"); !strings.Contains(out, "outage-0001") {
		t.Fatalf("redrive --dry-run does not list the job:\n%s", out)
	}
	if out := run("redrive"); !strings.Contains(out, "moved 1, skipped 0, failed 0") {
		t.Fatalf("redrive:\n%s", out)
	}
	waitFor("succeeded result", func() bool {
		cmd := exec.CommandContext(ctx, bin.tierq, "result", "--json", "outage-0001")
		cmd.Env = env.environ()
		out, err := cmd.Output()
		if err != nil {
			return false // not written yet
		}
		var r struct {
			Status string `json:"status"`
		}
		return json.Unmarshal(out, &r) == nil && r.Status == "succeeded"
	})
}
