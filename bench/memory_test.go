package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tierq/tierq/internal/demo"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

const (
	memMessages   = 100_000
	memRunFor     = 20 * time.Second
	memTargetMiB  = 100
	memConcurrent = 64
)

// memoryReport is results/memory.json.
type memoryReport struct {
	Benchmark       string    `json:"benchmark"`
	Date            time.Time `json:"date"`
	GoVersion       string    `json:"go_version"`
	Platform        string    `json:"platform"`
	Commit          string    `json:"commit,omitempty"`
	MessagesWaiting int       `json:"messages_waiting"`
	MessageBytes    int       `json:"message_bytes"`
	WorkerEnv       []string  `json:"worker_env"`
	RanSeconds      float64   `json:"ran_seconds"`
	JobsCompleted   int       `json:"jobs_completed"`
	JobsPerSecond   float64   `json:"jobs_per_second"`
	// PeakRSSMiB is the worker's VmHWM (peak resident set) just before it
	// was stopped; RSSMiB its VmRSS every second.
	PeakRSSMiB float64   `json:"peak_rss_mib"`
	RSSMiB     []float64 `json:"rss_mib_samples"`
	TargetMiB  float64   `json:"target_mib"`
	Met        bool      `json:"met"`
	ExitedOK   bool      `json:"exited_cleanly_on_sigterm"`
}

// BenchmarkWorkerMemory builds cmd/tierq, runs `tierq worker` as a child
// process against in-process kumo and the simulator with 100,000 messages
// waiting, lets it work for 20 seconds and reports its peak resident memory.
// The queue lives in this process, so the worker's memory is its own: what
// it holds for the jobs it has taken, not the backlog.
func BenchmarkWorkerMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("the memory benchmark builds tierq and runs it for about half a minute; not under -short")
	}
	if runtime.GOOS != "linux" {
		b.Skip("reads the worker's peak memory from /proc; Linux only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := b.TempDir()

	bin, err := goBuild(ctx, dir, "./cmd/tierq", "tierq")
	if err != nil {
		b.Fatal(err)
	}

	// Every model unthrottled and fast: the worker runs flat out, which is
	// when it holds the most.
	simCfg := simConfig(time.Minute)
	simCfg.LatencyScale = 0.02
	for id, m := range simCfg.Models {
		m.RPM, m.TPM = 0, 0
		simCfg.Models[id] = m
	}
	st, err := demo.NewStack(simCfg)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	queue, bucket := runNames("bench-memory")
	qs, err := st.CreateQueues(ctx, queue, 50)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateBuckets(ctx, bucket); err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, memMessages)
	for i := range bodies {
		bodies[i], err = json.Marshal(jobv1.Job{Version: jobv1.JobVersion, JobID: fmt.Sprintf("mem-%06d", i),
			Task: tiering.TaskSummarize, Text: strings.Repeat("The depot shipped the spring orders on time. ", 8)})
		if err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if err := enqueue(ctx, st.SQS, qs.URL, bodies, 16); err != nil {
		b.Fatal(err)
	}
	b.Logf("enqueued %d messages in %s", memMessages, time.Since(start).Round(time.Millisecond))

	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_SQS=" + aws.ToString(st.SQS.Options().BaseEndpoint),
		"AWS_ENDPOINT_URL_S3=" + aws.ToString(st.S3.Options().BaseEndpoint),
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + aws.ToString(st.Bedrock.Options().BaseEndpoint),
		"AWS_REQUEST_CHECKSUM_CALCULATION=when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION=when_required",
		"TIERQ_S3_PATH_STYLE=true", "TIERQ_QUEUE_URL=" + qs.URL, "TIERQ_DLQ_URL=" + qs.DLQURL,
		"TIERQ_RESULTS_BUCKET=" + bucket, "TIERQ_WAIT_TIME=1s", "TIERQ_DRAIN_TIMEOUT=5s",
		"TIERQ_CONCURRENCY=" + strconv.Itoa(memConcurrent), "TIERQ_WORKER_ID=bench-memory",
	}
	cmd := exec.CommandContext(ctx, bin, "worker")
	cmd.Env = env
	var jobs lineCounter // one EMF line per finished job on stdout
	var logs tail
	cmd.Stdout, cmd.Stderr = &jobs, &logs
	b.ResetTimer()
	if err := cmd.Start(); err != nil {
		b.Fatalf("start tierq worker: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	rep := memoryReport{Benchmark: "BenchmarkWorkerMemory", Date: time.Now().UTC().Truncate(time.Second),
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Commit: commit(),
		MessagesWaiting: memMessages, MessageBytes: len(bodies[0]), TargetMiB: memTargetMiB}
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		switch {
		case name == "PATH" || name == "HOME" || strings.HasPrefix(name, "AWS_SECRET"):
		case strings.HasPrefix(name, "AWS_ENDPOINT_URL_") || strings.HasSuffix(name, "_URL") || name == "TIERQ_RESULTS_BUCKET":
			// Ports and names change every run; keep the file comparable.
			rep.WorkerEnv = append(rep.WorkerEnv, name+"=(emulator)")
		default:
			rep.WorkerEnv = append(rep.WorkerEnv, e)
		}
	}
	began := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var hwm float64
sample:
	for time.Since(began) < memRunFor {
		select {
		case err := <-exited:
			b.Fatalf("tierq worker exited early: %v\n%s", err, logs.String())
		case <-tick.C:
			rss, peak, err := procMemory(cmd.Process.Pid)
			if err != nil {
				break sample
			}
			rep.RSSMiB = append(rep.RSSMiB, math.Round(rss*10)/10)
			hwm = peak
		}
	}
	if _, peak, err := procMemory(cmd.Process.Pid); err == nil {
		hwm = peak
	}
	rep.RanSeconds = time.Since(began).Round(100 * time.Millisecond).Seconds()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		rep.ExitedOK = err == nil
		if err != nil {
			b.Errorf("tierq worker did not exit cleanly on SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		b.Errorf("tierq worker did not stop within 30s of SIGTERM\n%s", logs.String())
	}
	b.StopTimer()

	left, err := queueDepth(ctx, st.SQS, qs.URL)
	if err != nil {
		b.Fatal(err)
	}
	rep.JobsCompleted = memMessages - left
	if emf := jobs.count(); emf < rep.JobsCompleted {
		b.Errorf("%d messages left the queue but the worker wrote %d job metric lines", rep.JobsCompleted, emf)
	}
	rep.JobsPerSecond = float64(rep.JobsCompleted) / rep.RanSeconds
	rep.PeakRSSMiB = math.Round(hwm*10) / 10
	rep.Met = hwm > 0 && hwm < memTargetMiB
	if hwm == 0 {
		b.Fatalf("could not read the worker's memory\n%s", logs.String())
	}
	if rep.JobsCompleted == 0 {
		b.Errorf("the worker completed no job in %s\n%s", memRunFor, logs.String())
	}
	fmt.Fprintf(os.Stdout, "\ntierq worker with %d messages waiting: peak RSS %.1f MiB (target < %d MiB: %s), %d jobs in %.0fs (%.0f/s)\n\n",
		memMessages, hwm, memTargetMiB, map[bool]string{true: "met", false: "MISSED"}[rep.Met],
		rep.JobsCompleted, rep.RanSeconds, rep.JobsPerSecond)
	if err := writeJSON(filepath.Join("results", "memory.json"), rep); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(hwm, "peak-rss-MiB")
	b.ReportMetric(rep.JobsPerSecond, "jobs/s")
}

// procMemory reads a process's resident set now (VmRSS) and at its peak
// (VmHWM), in MiB.
func procMemory(pid int) (rss, peak float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read process status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("unexpected %s line %q", name, sc.Text())
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s: %w", name, err)
		}
		if name == "VmRSS" {
			rss = kb / 1024
		} else {
			peak = kb / 1024
		}
	}
	if peak == 0 {
		return 0, 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return rss, peak, nil
}

// lineCounter counts the lines written to it.
type lineCounter struct {
	mu sync.Mutex
	n  int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n += bytes.Count(p, []byte{'\n'})
	c.mu.Unlock()
	return len(p), nil
}

func (c *lineCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// tail keeps the last 8 KiB written to it: enough of the worker's log to say
// why it failed, without holding all of it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 8<<10; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
