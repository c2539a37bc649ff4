package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
)

// goldenDir holds job examples, result goldens and the EMF golden.
const goldenDir = "../testdata/results"

// kumoURL is the one kumo server of the test binary. kumo instances share
// one storage anyway, so every test uses its own bucket names.
var kumoURL string

func TestMain(m *testing.M) { os.Exit(emulator.RunTests(withKumo{m}, &kumoURL)) }

// withKumo hands the kumo server to the internal tests too.
type withKumo struct{ m *testing.M }

func (w withKumo) Run() int {
	pipeline.KumoURLForSuite = kumoURL
	return w.m.Run()
}

// Model IDs of the default tiers.
const (
	economyModel  = "us.amazon.nova-micro-v1:0"
	standardModel = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
)

// t0 is the injected clock's start; messages are enqueued 1.5 s before it.
var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// stepClock advances a fixed step on every reading, so timings in results
// are non-zero yet the same on every run.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func createBucket(t testing.TB, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

func putObject(t testing.TB, c *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
}

// startSim serves a Bedrock simulator and returns it with a real SDK client.
func startSim(t testing.TB, cfg bedrocksim.Config) (*bedrocksim.Server, *bedrockruntime.Client) {
	t.Helper()
	sim, err := bedrocksim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, emulator.Bedrock(srv.URL)
}

// recordingLimiter is limiter.Fixed that also counts release outcomes.
type recordingLimiter struct {
	*limiter.Fixed
	mu       sync.Mutex
	outcomes map[limiter.Outcome]int
	tokens   []int
}

func newRecordingLimiter() *recordingLimiter {
	return &recordingLimiter{Fixed: limiter.NewFixed(4, nil), outcomes: map[limiter.Outcome]int{}}
}

func (l *recordingLimiter) Acquire(ctx context.Context, model string, tokens int) (limiter.Permit, error) {
	p, err := l.Fixed.Acquire(ctx, model, tokens)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.tokens = append(l.tokens, tokens)
	l.mu.Unlock()
	return recordedPermit{p, l}, nil
}

func (l *recordingLimiter) count(o limiter.Outcome) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outcomes[o]
}

type recordedPermit struct {
	limiter.Permit
	l *recordingLimiter
}

func (p recordedPermit) Release(o limiter.Outcome) {
	p.l.mu.Lock()
	p.l.outcomes[o]++
	p.l.mu.Unlock()
	p.Permit.Release(o)
}

// env is one integration test's world: kumo S3, a Bedrock simulator and a
// pipeline wired to both through the real SDK clients.
type env struct {
	t       *testing.T
	sim     *bedrocksim.Server
	s3      *s3.Client
	results string // results bucket
	docs    string // allowed input bucket
	metrics *testenv.Buffer
	logs    *testenv.Buffer
	lim     *recordingLimiter
	p       *pipeline.Pipeline
	cfg     pipeline.Config
}

type envOpts struct {
	sim   func(*bedrocksim.Config)
	tiers func(*tiering.Config)
	cfg   func(*pipeline.Config)
	store func(pipeline.Store) pipeline.Store
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	simCfg := bedrocksim.DefaultConfig()
	if o.sim != nil {
		o.sim(&simCfg)
	}
	sim, br := startSim(t, simCfg)
	e := &env{t: t, sim: sim, s3: emulator.S3(kumoURL), metrics: &testenv.Buffer{}, logs: &testenv.Buffer{}, lim: newRecordingLimiter()}
	e.results, e.docs = emulator.Name(t, "results"), emulator.Name(t, "docs")
	createBucket(t, e.s3, e.results)
	createBucket(t, e.s3, e.docs)

	tiers := tiering.Default()
	if o.tiers != nil {
		o.tiers(tiers)
	}
	e.cfg = pipeline.Config{
		ResultsBucket: e.results,
		InputBuckets:  []string{e.docs},
		WorkerID:      "worker-test-1",
		Version:       "v0.0.0-test",
		Tiers:         tiers,
	}
	if o.cfg != nil {
		o.cfg(&e.cfg)
	}
	var store pipeline.Store = e.s3
	if o.store != nil {
		store = o.store(store)
	}
	clock := &stepClock{now: t0, step: 5 * time.Millisecond}
	p, err := pipeline.New(e.cfg, pipeline.Deps{
		Converser:    br,
		Store:        store,
		Limiter:      e.lim,
		Metrics:      e.metrics,
		Logger:       slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          clock.Now,
		Backoff:      testenv.NoWait,
		WriteBackoff: testenv.NoWait,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	return e
}

// message wraps a body as the worker would hand it over.
func message(body []byte) worker.Message {
	return worker.Message{
		ID:           "msg-0001",
		Body:         body,
		ReceiveCount: 1,
		SentAt:       t0.Add(-1500 * time.Millisecond),
		ReceivedAt:   t0,
	}
}

// jobBody encodes a job, filling version and job_id when empty.
func jobBody(t testing.TB, j jobv1.Job) []byte {
	t.Helper()
	if j.Version == "" {
		j.Version = jobv1.JobVersion
	}
	if j.JobID == "" {
		j.JobID = "job-0001"
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// process runs one message and fails the test on an error.
func (e *env) process(body []byte) {
	e.t.Helper()
	if err := e.p.Process(context.Background(), message(body)); err != nil {
		e.t.Fatalf("Process: %v", err)
	}
}

// rawResult reads a job's result object, or nil when there is none.
func (e *env) rawResult(jobID string) []byte {
	e.t.Helper()
	out, err := e.s3.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(e.results), Key: aws.String(jobv1.ResultKey(pipeline.DefaultResultsPrefix, jobID)),
	})
	if err != nil {
		var nf interface{ ErrorCode() string }
		if errors.As(err, &nf) && nf.ErrorCode() == "NoSuchKey" {
			return nil
		}
		e.t.Fatalf("read result of %s: %v", jobID, err)
	}
	defer out.Body.Close()
	if got := aws.ToString(out.ContentType); got != "application/json" {
		e.t.Errorf("result content type = %q, want application/json", got)
	}
	b, err := io.ReadAll(out.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) result(jobID string) jobv1.Result {
	e.t.Helper()
	b := e.rawResult(jobID)
	if b == nil {
		e.t.Fatalf("job %s has no result", jobID)
	}
	var r jobv1.Result
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatalf("result of %s: %v", jobID, err)
	}
	return r
}

// emf is the part of an EMF line tests look at.
type emf struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	Kind                   string
	Tier                   string `json:"Tier"`
	ModelID                string `json:"ModelId"`
	ServiceTier            string
	InputTokens            int
	OutputTokens           int
	CacheReadInputTokens   int
	CacheWriteInputTokens  int
	CostUSD                float64
	LatencyMs              int64
	Throttles              int
	Attempts               int
	GuardrailInterventions int
	JobID                  string `json:"JobId"`
	Status                 string
	Tenant                 string
}

// metricLines are the job lines (Kind job) written so far.
func (e *env) metricLines() []emf { return e.emfLines("job") }

// callLines are the call lines (Kind call) written so far.
func (e *env) callLines() []emf { return e.emfLines("call") }

func (e *env) emfLines(kind string) []emf {
	e.t.Helper()
	var out []emf
	for _, l := range e.metrics.Lines() {
		var m emf
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			e.t.Fatalf("metrics line %q: %v", l, err)
		}
		if m.Kind == "" {
			e.t.Fatalf("metrics line %q has no Kind", l)
		}
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// modelRequests is how many Converse requests the simulator saw for a model.
func (e *env) modelRequests(model string) int64 { return e.sim.Stats().Models[model].Requests }

// checkGolden compares a result object with testdata/results/name, or
// rewrites the golden with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("result is not JSON: %v", err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join(goldenDir, name)
	if *pipeline.Update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("result differs from %s (run go test -update after checking the change):\ngot:\n%s\nwant:\n%s", path, pretty.Bytes(), want)
	}
}

// readJob reads a job example from testdata/results.
func readJob(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editModel changes one simulated model in place.
func editModel(c *bedrocksim.Config, id string, f func(*bedrocksim.Model)) {
	m := c.Models[id]
	f(&m)
	c.Models[id] = m
}
