package chaos_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/jobv1"
)

var (
	jobs     = flag.Int("chaos.jobs", 300, "jobs to submit")
	defaults = flag.Bool("chaos.defaults", false, "run the workers with their default visibility timeout, claim lease and long-poll wait (make chaos); otherwise short ones keep the run within about a minute")
	every    = flag.Duration("chaos.kill-every", 3*time.Second, "time between kills")
	seed     = flag.Uint64("chaos.seed", 0, "seed of the victim choice (0: from the clock; the seed is logged)")
)

const (
	workers = 3
	// maxKills bounds the kills of one run: kills go on while jobs are
	// left, and each can strand jobs for a visibility timeout.
	maxKills = 12
)

// shortWorkerFlags bring a killed worker's jobs back within seconds: its
// messages reappear after the visibility timeout, its claims lapse after the
// lease, and a short long-poll wait lets idle workers see them at once
// (kumo does not wake a waiting receive when a message's visibility ends).
var shortWorkerFlags = []string{"--visibility-timeout", "6s", "--claim-lease", "6s", "--wait-time", "2s"}

// simConfig compresses the quota window tenfold, so the built-in quotas
// (2,000 requests a minute for the economy model) do not throttle 24 job
// slots answering in about half a second each.
const simConfig = "minute: 6s\n"

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and runs processes for about a minute")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL and SIGTERM")
	}
	dir := t.TempDir()
	bin := build(t, dir)

	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	up := startUp(t, ctx, bin, dir)
	env := up.env
	aws := newClients(env)

	jobsFile := filepath.Join(dir, "jobs.jsonl")
	ids := writeJobs(t, jobsFile, *jobs)

	extra := []string{}
	if !*defaults {
		extra = shortWorkerFlags
	}
	pool := &workerPool{t: t, bin: bin, dir: dir, env: env, extra: extra}
	for i := range workers {
		pool.start(ctx, i)
	}
	defer pool.stopAll()

	// The workers' start-up checks call each model once or so: measured
	// here, before any job, and taken off the extra calls per start.
	startCalls, err := simCalls(ctx, env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"])
	if err != nil {
		t.Fatal(err)
	}
	if startCalls%workers != 0 {
		t.Fatalf("%d model calls from %d worker starts: not the same number per start", startCalls, workers)
	}
	perStart := startCalls / workers

	begin := time.Now()
	submit := exec.CommandContext(ctx, bin.tierq, "submit", jobsFile)
	submit.Env = env.environ()
	if out, err := submit.CombinedOutput(); err != nil {
		t.Fatalf("tierq submit: %v\n%s", err, tail(out))
	}
	submitted := time.Since(begin)

	s := int64(*seed)
	if s == 0 {
		s = time.Now().UnixNano()
	}
	t.Logf("victim seed %d (rerun with -chaos.seed=%d)", s, s)
	rng := rand.New(rand.NewPCG(uint64(s), 0))

	var kills []kill
	next := time.Now().Add(*every)
	deadline := time.Now().Add(15 * time.Minute)
	var lastResult time.Time
	done := 0
	for done < len(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d results after %s, %d kills", done, len(ids), time.Since(begin).Round(time.Second), len(kills))
		}
		n, err := aws.countResults(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n > done {
			done, lastResult = n, time.Now()
		}
		if done < len(ids) && len(kills) < maxKills && time.Now().After(next) {
			victim := rng.IntN(workers)
			inFlight, err := simInFlight(ctx, env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"])
			if err != nil {
				t.Fatal(err)
			}
			pool.kill(victim)
			kills = append(kills, kill{at: time.Now(), worker: victim, inFlight: inFlight, resultsBefore: done})
			pool.start(ctx, victim)
			next = time.Now().Add(*every)
		}
		time.Sleep(200 * time.Millisecond)
	}
	total := lastResult.Sub(begin)

	// Every job: exactly one result object, named for it.
	results, attempts, again, err := aws.readResults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(ids) {
		t.Errorf("%d result objects for %d jobs", len(results), len(ids))
	}
	for _, id := range ids {
		if results[id] != 1 {
			t.Errorf("job %s has %d results, want exactly 1", id, results[id])
		}
	}

	// No message stuck: both queues empty once the last kill's messages
	// have come back (one visibility timeout) and been acknowledged.
	drainBy := time.Now().Add(3 * time.Minute)
	for _, q := range []string{"TIERQ_QUEUE_URL", "TIERQ_DLQ_URL"} {
		for {
			depth, err := emulator.QueueDepth(ctx, aws.sqs, env[q])
			if err != nil {
				t.Fatal(err)
			}
			if depth == 0 {
				break
			}
			if time.Now().After(drainBy) {
				t.Errorf("%s still holds %d messages 3 minutes after the last result", q, depth)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// Extra model calls: every call the simulator received, less those the
	// results account for. Only calls cut by a kill may be extra, so they
	// are at most the calls in flight at the kills (all workers' calls: an
	// upper bound on the victim's).
	calls, err := simCalls(ctx, env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"])
	if err != nil {
		t.Fatal(err)
	}
	inFlightAtKills := 0
	for _, k := range kills {
		inFlightAtKills += k.inFlight
	}
	checks := perStart * pool.starts()
	extraCalls := calls - checks - attempts
	if extraCalls < 0 || extraCalls > inFlightAtKills {
		t.Errorf("%d model calls, %d of them start-up checks, for %d result attempts: %d extra, want 0 to %d (the calls in flight at the kills)",
			calls, checks, attempts, extraCalls, inFlightAtKills)
	}

	pool.stopAll()
	if err := up.stop(); err != nil {
		t.Errorf("tierq-dev up after SIGTERM: %v, want exit 0", err)
	}

	// Recovery: from the last kill that cut model calls short (a kill of an
	// idle worker strands nothing) to the last result, so it measures how
	// long the stranded jobs took to come back, not when the kills stopped.
	recovery := time.Duration(0)
	for i := len(kills) - 1; i >= 0; i-- {
		if kills[i].inFlight > 0 || i == 0 {
			recovery = lastResult.Sub(kills[i].at)
			break
		}
	}
	mode := "short timeouts " + strings.Join(shortWorkerFlags, " ")
	if *defaults {
		mode = "worker defaults"
	}
	var per []string
	for _, k := range kills {
		per = append(per, fmt.Sprintf("%s:w%d in_flight=%d done=%d", k.at.Sub(begin).Round(100*time.Millisecond), k.worker, k.inFlight, k.resultsBefore))
	}
	t.Logf("chaos (%s): jobs %d, results %d, kills %d, model calls %d (start-up checks %d), result attempts %d, extra calls %d, in flight at kills %d, submit %s, total %s (first submit to last result), recovery %s (last kill with calls in flight to last result), %d jobs delivered more than once",
		mode, len(ids), len(results), len(kills), calls, checks, attempts, extraCalls, inFlightAtKills,
		submitted.Round(100*time.Millisecond), total.Round(100*time.Millisecond), recovery.Round(100*time.Millisecond),
		again)
	t.Logf("kills: %s", strings.Join(per, "; "))
}

type kill struct {
	at            time.Time
	worker        int
	inFlight      int
	resultsBefore int
}

type binaries struct{ tierq, dev string }

// build compiles the two commands as a user would run them.
func build(t *testing.T, dir string) binaries {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	b := binaries{tierq: filepath.Join(dir, "tierq"), dev: filepath.Join(dir, "tierq-dev")}
	cmd := exec.Command("go", "build", "-o", dir, "./cmd/tierq", "./cmd/tierq-dev")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return b
}

// environ is the environment the stack printed, over the test's own minus
// any AWS or tierq setting of the developer's.
type environ map[string]string

func (e environ) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "TIERQ_") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

type upProcess struct {
	cmd  *exec.Cmd
	env  environ
	done chan error
}

// startUp runs tierq-dev up on free ports, with extra flags, and waits for
// its ready line.
func startUp(t *testing.T, ctx context.Context, bin binaries, dir string, extra ...string) *upProcess {
	t.Helper()
	simFile, envFile := filepath.Join(dir, "sim.yaml"), filepath.Join(dir, "tierq.env")
	if err := os.WriteFile(simFile, []byte(simConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin.dev, append([]string{"up", "--aws-port", "0", "--sim-port", "0", "--latency-scale", "1",
		"--sim-config", simFile, "--env-file", envFile}, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := &upProcess{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "# tierq-dev ready: ") && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		up.done <- cmd.Wait()
		logf.Close()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case ok := <-ready:
		if !ok {
			log, _ := os.ReadFile(filepath.Join(dir, "up.log"))
			t.Fatalf("tierq-dev up exited before it was ready:\n%s", tail(log))
		}
	case <-time.After(time.Minute):
		t.Fatal("tierq-dev up not ready within a minute")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	up.env = readEnvFile(t, envFile)
	return up
}

// stop sends SIGTERM, as Ctrl-C would, and returns up's exit.
func (u *upProcess) stop() error {
	u.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-u.done:
		return err
	case <-time.After(time.Minute):
		return fmt.Errorf("no exit within a minute of SIGTERM")
	}
}

func readEnvFile(t *testing.T, path string) environ {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := environ{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		k, v, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 {
			t.Fatalf("%s: line %q is not export NAME=VALUE", path, line)
		}
		env[k] = strings.Trim(v, "'")
	}
	return env
}

// workerPool runs the worker processes, each slot under a name of its own.
type workerPool struct {
	t     *testing.T
	bin   binaries
	dir   string
	env   environ
	extra []string

	mu    sync.Mutex
	procs [workers]*proc
	runs  [workers]int
}

// proc is a worker process and a channel closed when it has exited.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *workerPool) start(ctx context.Context, i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runs[i]++
	id := fmt.Sprintf("w%d-run%d", i, p.runs[i])
	args := append([]string{"worker", "--worker-id", id, "--metrics-file", filepath.Join(p.dir, id+".emf")}, p.extra...)
	cmd := exec.Command(p.bin.tierq, args...)
	cmd.Env = p.env.environ()
	logf, err := os.Create(filepath.Join(p.dir, id+".log"))
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start worker %s: %v", id, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	p.procs[i] = &proc{cmd, exited}
	// Wait for the preflight to end, so its model checks (one small call
	// per model) are whole and counted as the worker's start, not its jobs.
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(logf.Name())
		if strings.Contains(string(b), `"msg":"worker starting"`) {
			return
		}
		select {
		case <-exited:
			p.t.Fatalf("worker %s exited at start:\n%s", id, tail(b))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("worker %s did not start within a minute:\n%s", id, tail(b))
		}
	}
}

// starts is how many worker processes have started.
func (p *workerPool) starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.runs {
		n += r
	}
	return n
}

// kill sends SIGKILL: no drain, no release, no deleting what is done.
func (p *workerPool) kill(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.procs[i]; c != nil {
		c.cmd.Process.Kill()
		p.procs[i] = nil
	}
}

// stopAll stops the workers as ECS would: SIGTERM, then SIGKILL after the
// drain window.
func (p *workerPool) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var wg sync.WaitGroup
	for i, c := range p.procs {
		if c == nil {
			continue
		}
		p.procs[i] = nil
		wg.Go(func() {
			c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.exited:
			case <-time.After(40 * time.Second):
				c.cmd.Process.Kill()
				<-c.exited
			}
		})
	}
	wg.Wait()
}

type clients struct {
	sqs *sqs.Client
	s3  *s3.Client
	env environ
}

// newClients builds SDK clients for the stack from its printed environment,
// set up as cmd/tierq's are for it (path style, checksums when required).
func newClients(env environ) clients {
	creds := credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], "")
	return clients{
		sqs: sqs.New(sqs.Options{Region: env["AWS_REGION"], Credentials: creds, BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_SQS"])}),
		s3: s3.New(s3.Options{Region: env["AWS_REGION"], Credentials: creds, BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL_S3"]),
			UsePathStyle:               true,
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired}),
		env: env,
	}
}

const resultsPrefix = "results/"

func (c clients) resultKeys(ctx context.Context) ([]string, error) {
	var keys []string
	pages := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: aws.String(c.env["TIERQ_RESULTS_BUCKET"]), Prefix: aws.String(resultsPrefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list results: %w", err)
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); strings.HasSuffix(k, ".json") {
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

func (c clients) countResults(ctx context.Context) (int, error) {
	keys, err := c.resultKeys(ctx)
	return len(keys), err
}

// readResults reads every result: how many name each job, the model calls
// they account for, and how many jobs needed more than one delivery.
func (c clients) readResults(ctx context.Context) (map[string]int, int, int, error) {
	keys, err := c.resultKeys(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	perJob, attempts := map[string]int{}, 0
	again := 0
	for _, k := range keys {
		out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.env["TIERQ_RESULTS_BUCKET"]), Key: aws.String(k)})
		if err != nil {
			return nil, 0, 0, fmt.Errorf("read %s: %w", k, err)
		}
		var r jobv1.Result
		err = json.NewDecoder(out.Body).Decode(&r)
		out.Body.Close()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("decode %s: %w", k, err)
		}
		if want := resultsPrefix + r.JobID + ".json"; k != want {
			return nil, 0, 0, fmt.Errorf("result %s names job %q", k, r.JobID)
		}
		perJob[r.JobID]++
		attempts += r.Attempts
		if r.Worker.ReceiveCount > 1 {
			again++
		}
	}
	return perJob, attempts, again, nil
}

// simStats reads the simulator's per-model counters.
func simStats(ctx context.Context, endpoint string) (map[string]struct {
	Requests int `json:"requests"`
	InFlight int `json:"in_flight"`
}, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/_sim/stats", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("simulator stats: %w", err)
	}
	defer resp.Body.Close()
	var st struct {
		Models map[string]struct {
			Requests int `json:"requests"`
			InFlight int `json:"in_flight"`
		} `json:"models"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("simulator stats: %w", err)
	}
	return st.Models, nil
}

func simInFlight(ctx context.Context, endpoint string) (int, error) {
	models, err := simStats(ctx, endpoint)
	n := 0
	for _, m := range models {
		n += m.InFlight
	}
	return n, err
}

func simCalls(ctx context.Context, endpoint string) (int, error) {
	models, err := simStats(ctx, endpoint)
	n := 0
	for _, m := range models {
		n += m.Requests
	}
	return n, err
}

// writeJobs writes n short summarize jobs and returns their IDs.
func writeJobs(t *testing.T, path string, n int) []string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("chaos-%05d", i)
		job := map[string]any{"version": "1", "job_id": ids[i], "task": "summarize",
			"text": fmt.Sprintf("Ticket %d: the March invoice was charged twice; please refund one charge of $%d.00 and confirm by email.", i, 100+i%400)}
		if err := enc.Encode(job); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(ids)
	return ids
}

func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
