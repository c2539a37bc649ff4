package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/demo"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/worker"
)

// Run settings. The test's worker allows 64 KiB documents so that the size
// limit can be crossed with small files.
const (
	advWorkers       = 3
	advConcurrency   = 4
	advMaxDocBytes   = 64 << 10
	advDrainDeadline = 60 * time.Second
	// advMaxReceive is the queue's redrive count: a message that keeps being
	// released lands in the dead-letter queue (without a reason) instead of
	// holding the test until its deadline.
	advMaxReceive = 8
	advSeed       = 2026
)

// forbiddenInReasons are Go's decoding internals: a dead-letter reason is
// read by an operator and must speak of the job, not of the worker's types.
var forbiddenInReasons = []string{"Go value", "struct {", `json:"`, "unmarshal"}

// TestAdversarialCorpus sends every message of testdata/adversarial, shuffled
// and with its duplicates, to a queue served by kumo, runs three real workers
// (internal/app.New with the real SQS, S3 and Bedrock SDK clients, the
// Bedrock simulator behind the latter) until the queue drains, and then
// checks each case against expected.yaml, plus the accounting of the whole
// run: every message ends in exactly one result or dead letter, every model
// call the simulator served appears in a result's attempts, and nothing
// secret reaches the logs.
func TestAdversarialCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: three workers on kumo and the Bedrock simulator")
	}
	corpus := loadAdversarial(t)
	if t.Failed() {
		t.FailNow()
	}
	ctx := t.Context()

	simCfg := bedrocksim.DefaultConfig()
	// A few milliseconds per call: enough for duplicates received by
	// different workers to overlap, little enough for a fast test.
	simCfg.LatencyScale = 0.02
	st, err := demo.NewStack(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)

	buckets := map[string]string{
		"ALLOWED": emulator.Name(t, "adv-inputs"),
		"OTHER":   emulator.Name(t, "adv-other"),
		"RESULTS": emulator.Name(t, "adv-results"),
	}
	qs, err := st.CreateQueues(ctx, emulator.Name(t, "adv-jobs"), advMaxReceive)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateBuckets(ctx, buckets["ALLOWED"], buckets["OTHER"], buckets["RESULTS"]); err != nil {
		t.Fatal(err)
	}
	for _, o := range corpus.Objects {
		body, _ := o.body()
		if _, err := st.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(buckets[o.Bucket]),
			Key: aws.String(o.Key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("put %s/%s: %v", o.Bucket, o.Key, err)
		}
	}

	// Everything is sent before the workers start, so that the copies of a
	// duplicated job are in the queue together and reach different workers.
	sent := sendCorpus(t, ctx, st.SQS, qs.URL, corpus, buckets)

	logs, metrics := &testenv.Buffer{}, &testenv.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conv := &countingConverser{next: st.Bedrock, byJob: map[string]int{}}
	workers := make([]*app.Worker, advWorkers)
	for i := range workers {
		workers[i], err = app.New(app.Settings{
			QueueURL: qs.URL, DeadLetterQueueURL: qs.DLQURL, ResultsBucket: buckets["RESULTS"],
			InputBuckets: []string{buckets["ALLOWED"]}, MaxDocumentBytes: advMaxDocBytes,
			Concurrency: advConcurrency, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second,
			ReleaseDelay: time.Second, DrainTimeout: 2 * time.Second, LimiterWindow: simCfg.Minute,
			WorkerID: fmt.Sprintf("adversarial-%d", i+1), Version: "test",
		}, app.Clients{Queue: st.SQS, Store: st.S3, Converser: conv}, metrics, log.With("worker", i+1))
		if err != nil {
			t.Fatal(err)
		}
		if err := workers[i].Pipeline.Preflight(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	var g errgroup.Group
	for _, w := range workers {
		g.Go(func() error { return w.Run(runCtx) })
	}
	drained := emulator.WaitDrained(ctx, st.SQS, qs.URL, advDrainDeadline, nil)
	stop()
	if err := g.Wait(); err != nil {
		t.Errorf("worker: %v", err)
	}
	if drained != nil {
		t.Errorf("%v; checking what was done", drained)
	}

	run := collectRun(t, ctx, st, qs, buckets["RESULTS"], sent)
	run.calls, run.callsByJob = conv.snapshot()
	for _, m := range st.Sim.Stats().Models {
		run.simRequests += m.Requests
	}
	if dir := os.Getenv("TIERQ_ADVERSARIAL_OUT"); dir != "" {
		run.dump(t, dir, logs.String())
	}

	// Messages SQS cannot carry go straight into a worker's pipeline, after
	// the run so that they cannot disturb its accounting.
	direct := map[string]directOutcome{}
	for _, c := range corpus.Cases {
		if c.directly() {
			direct[c.Name] = runDirect(ctx, t, workers[0], st, c, buckets)
		}
	}

	owners := resultOwners(corpus, run, buckets)
	for _, c := range corpus.Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Log(c.Why)
			for _, id := range owners[c.Name] {
				r := run.results[id].Result
				t.Errorf("a result object was written for job_id %q that this case does not expect: status %s%s",
					id, r.Status, errSuffix(r))
			}
			if c.overSQS() {
				checkOverSQS(t, c, run)
			}
			if d, ok := direct[c.Name]; ok {
				checkDirect(t, c, d)
			}
		})
	}
	t.Run("accounting", func(t *testing.T) { checkAccounting(t, corpus, run) })
	t.Run("logs", func(t *testing.T) { checkLogs(t, corpus, buckets, logs.String(), metrics.String()) })
	t.Run("queue-empty", func(t *testing.T) {
		if n, err := emulator.QueueDepth(ctx, st.SQS, qs.URL); err != nil || n != 0 {
			t.Errorf("%d messages left in the job queue (err %v); deliveries the workers gave back:\n%s",
				n, err, releases(logs.String()))
		}
	})
}

// sentMessages maps what was sent back to the cases.
type sentMessages struct {
	byID   map[string]string // SQS message ID -> case
	byBody map[string]string // body as SQS stores it -> case
	count  int
}

func sendCorpus(t *testing.T, ctx context.Context, q *sqs.Client, url string, corpus *advCorpus, buckets map[string]string) sentMessages {
	t.Helper()
	type msg struct {
		name string
		body []byte
	}
	var msgs []msg
	s := sentMessages{byID: map[string]string{}, byBody: map[string]string{}}
	for _, c := range corpus.Cases {
		if !c.overSQS() {
			continue
		}
		body := expand(c.Raw, buckets)
		s.byBody[sqsBody(body)] = c.Name
		for range c.Copies {
			msgs = append(msgs, msg{c.Name, body})
		}
	}
	rand.New(rand.NewPCG(advSeed, advSeed)).Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	for batch := range slices.Chunk(msgs, 10) {
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(url)}
		valid := true
		for i, m := range batch {
			valid = valid && utf8.Valid(m.body)
			in.Entries = append(in.Entries, sqstypes.SendMessageBatchRequestEntry{
				Id: aws.String(fmt.Sprint(i)), MessageBody: aws.String(string(m.body))})
		}
		out, err := q.SendMessageBatch(ctx, in, func(o *sqs.Options) {
			// The SDK sends U+FFFD for each byte that is not UTF-8 and then
			// finds that the MD5 SQS returns is not that of the bytes given.
			o.DisableMessageChecksumValidation = !valid
		})
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		entry := func(id *string) msg { i, _ := strconv.Atoi(aws.ToString(id)); return batch[i] }
		for _, f := range out.Failed {
			t.Fatalf("send %s: %s %s", entry(f.Id).name, aws.ToString(f.Code), aws.ToString(f.Message))
		}
		for _, ok := range out.Successful {
			s.byID[aws.ToString(ok.MessageId)] = entry(ok.Id).name
		}
	}
	s.count = len(msgs)
	return s
}

// sqsBody is body as SQS delivers it: the SDK's JSON encoder writes U+FFFD
// for every byte that is not part of a UTF-8 sequence.
func sqsBody(body []byte) string {
	var b strings.Builder
	for len(body) > 0 {
		r, n := utf8.DecodeRune(body)
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.Write(body[:n])
		}
		body = body[n:]
	}
	return b.String()
}

// advResult is one result object.
type advResult struct {
	jobv1.Result
	raw []byte
}

// advDeadLetter is one message of the dead-letter queue.
type advDeadLetter struct {
	Case, Reason, Body, SourceID string
	HasReason                    bool
}

// advRun is what the workers did.
type advRun struct {
	sent        sentMessages
	results     map[string]*advResult // by job ID
	deadLetters []advDeadLetter
	// calls counts Converse calls the workers made, callsByJob by the
	// "[job ID]" marker in the request; simRequests what the simulator served.
	calls       int
	callsByJob  map[string]int
	simRequests int64
}

func collectRun(t *testing.T, ctx context.Context, st *demo.Stack, qs demo.Queues, resultsBucket string, sent sentMessages) *advRun {
	t.Helper()
	run := &advRun{sent: sent, results: map[string]*advResult{}}
	p := s3.NewListObjectsV2Paginator(st.S3, &s3.ListObjectsV2Input{Bucket: aws.String(resultsBucket), Prefix: aws.String("results/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list results: %v", err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			if !jobv1.IsResultKey(key) {
				continue // a job's claim, not its result
			}
			got, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(resultsBucket), Key: obj.Key})
			if err != nil {
				t.Fatalf("read %s: %v", key, err)
			}
			raw, err := io.ReadAll(got.Body)
			got.Body.Close()
			if err != nil {
				t.Fatalf("read %s: %v", key, err)
			}
			r := &advResult{raw: raw}
			if err := json.Unmarshal(raw, &r.Result); err != nil {
				t.Errorf("result %s is not JSON: %v", key, err)
				continue
			}
			run.results[strings.TrimSuffix(strings.TrimPrefix(key, "results/"), ".json")] = r
		}
	}
	// Dead letters are read (and deleted) until the queue is empty; see
	// emulator.ReadAll for why each read hides its messages for 2 s only.
	err := emulator.ReadAll(ctx, st.SQS, qs.DLQURL, 30*time.Second, func(m sqstypes.Message) {
		dl := advDeadLetter{Body: aws.ToString(m.Body)}
		if a, ok := m.MessageAttributes[worker.AttrDeadLetterReason]; ok {
			dl.Reason, dl.HasReason = aws.ToString(a.StringValue), true
		}
		if a, ok := m.MessageAttributes[worker.AttrSourceMessageID]; ok {
			dl.SourceID = aws.ToString(a.StringValue)
		}
		// The worker names the original message; the redrive policy keeps
		// its ID; failing both, the body tells the case.
		switch {
		case sent.byID[dl.SourceID] != "":
			dl.Case = sent.byID[dl.SourceID]
		case sent.byID[aws.ToString(m.MessageId)] != "":
			dl.Case = sent.byID[aws.ToString(m.MessageId)]
		default:
			dl.Case = sent.byBody[dl.Body]
		}
		run.deadLetters = append(run.deadLetters, dl)
	})
	if err != nil {
		t.Fatalf("read the dead-letter queue: %v", err)
	}
	return run
}

// dump writes the results and dead letters for a person to read.
func (run *advRun) dump(t *testing.T, dir, logs string) {
	for _, sub := range []string{"results", "dead-letter"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for id, r := range run.results {
		_ = os.WriteFile(filepath.Join(dir, "results", id+".json"), r.raw, 0o644)
	}
	for i, d := range run.deadLetters {
		b, _ := json.MarshalIndent(d, "", "  ")
		_ = os.WriteFile(filepath.Join(dir, "dead-letter", fmt.Sprintf("%03d-%s.json", i, d.Case)), b, 0o644)
	}
	_ = os.WriteFile(filepath.Join(dir, "worker.log"), []byte(logs), 0o644)
	t.Logf("results, dead letters and the workers' log written to %s", dir)
}

// resultOwners finds, for every result object that no case expects, the
// cases whose body names its job ID: they are what wrote it.
func resultOwners(corpus *advCorpus, run *advRun, buckets map[string]string) map[string][]string {
	expected := map[string]bool{}
	for _, c := range corpus.Cases {
		if c.wantResult() {
			expected[c.jobID()] = true
		}
	}
	owners := map[string][]string{}
	for id := range run.results {
		if expected[id] {
			continue
		}
		for _, c := range corpus.Cases {
			quoted, _ := json.Marshal(id)
			if strings.Contains(sqsBody(expand(c.Raw, buckets)), string(quoted)) || c.jobID() == id {
				owners[c.Name] = append(owners[c.Name], id)
			}
		}
	}
	return owners
}

func errSuffix(r jobv1.Result) string {
	if r.Error == nil {
		return ""
	}
	return fmt.Sprintf(" (%s: %s)", r.Error.Code, clip(r.Error.Message, 300))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// checkOverSQS checks one case's messages after the run.
func checkOverSQS(t *testing.T, c advCase, run *advRun) {
	t.Helper()
	var dls []advDeadLetter
	for _, d := range run.deadLetters {
		if d.Case == c.Name {
			dls = append(dls, d)
		}
	}
	if !c.wantResult() {
		if len(dls) != c.Copies {
			t.Errorf("%d of %d messages dead-lettered, want all", len(dls), c.Copies)
		}
		for _, d := range dls {
			checkReason(t, c, d.Reason, d.HasReason)
			if run.sent.byBody[d.Body] != c.Name {
				t.Errorf("the dead letter's body is not the message's: %q", clip(d.Body, 200))
			}
		}
		if r, ok := run.results[c.jobID()]; ok {
			t.Errorf("a result was written under %q: status %s%s", c.jobID(), r.Status, errSuffix(r.Result))
		}
		return
	}

	for _, d := range dls {
		t.Errorf("dead-lettered, want a result: reason %q", clip(d.Reason, 300))
	}
	r, ok := run.results[c.jobID()]
	if !ok {
		t.Errorf("no result object for job_id %q", c.jobID())
		return
	}
	if r.JobID != c.jobID() {
		t.Errorf("result job_id %q, want %q", r.JobID, c.jobID())
	}
	if r.Status != c.Status {
		t.Errorf("status %s%s, want %s", r.Status, errSuffix(r.Result), c.Status)
	}
	if c.Code != "" {
		code := ""
		if r.Error != nil {
			code = r.Error.Code
		}
		if code != c.Code {
			t.Errorf("error code %q%s, want %q", code, errSuffix(r.Result), c.Code)
		}
	}
	if r.Error != nil {
		for _, want := range c.MessageContains {
			if !containsFold(r.Error.Message, want) {
				t.Errorf("error message %q does not mention %q", clip(r.Error.Message, 300), want)
			}
		}
		// A person acts on this message as on a dead-letter reason.
		for _, bad := range forbiddenInReasons {
			if containsFold(r.Error.Message, bad) {
				t.Errorf("error message %q speaks of Go's decoding (%q), not of the job", clip(r.Error.Message, 300), bad)
			}
		}
	}
	if c.GuardrailAction != "" {
		action := "(no guardrail outcome)"
		if r.Guardrail != nil {
			action = r.Guardrail.Action
		}
		if action != c.GuardrailAction {
			t.Errorf("guardrail action %s, want %s", action, c.GuardrailAction)
		}
	}
	out := ""
	if r.Output != nil {
		out = r.Output.Text
	}
	for _, want := range c.OutputContains {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q (the document it should come from): %q", want, clip(out, 200))
		}
	}
	if len(c.OutputContainsAny) > 0 && !slices.ContainsFunc(c.OutputContainsAny, func(w string) bool { return strings.Contains(out, w) }) {
		t.Errorf("output contains none of %q: %q", c.OutputContainsAny, clip(out, 200))
	}
	for _, bad := range c.OutputNotContains {
		if strings.Contains(out, bad) {
			t.Errorf("output contains %q: it was read from the wrong object: %q", bad, clip(out, 200))
		}
	}
	// Every paid call shows in the result that paid for it: a job that ran
	// on two workers at once would show one call too many.
	if c.Status == jobv1.StatusSucceeded || c.Status == jobv1.StatusBlocked {
		if n := run.callsByJob[c.jobID()]; n != r.Attempts {
			t.Errorf("%d model calls carried this job's document, but the result records %d attempts", n, r.Attempts)
		}
	}
}

// checkReason checks a dead-letter reason.
func checkReason(t *testing.T, c advCase, reason string, has bool) {
	t.Helper()
	if !has {
		t.Errorf("dead-lettered without a %s attribute (by the queue's redrive policy, not by the worker?)", worker.AttrDeadLetterReason)
		return
	}
	for _, want := range c.ReasonContains {
		if !containsFold(reason, want) {
			t.Errorf("reason %q does not mention %q", clip(reason, 300), want)
		}
	}
	for _, bad := range forbiddenInReasons {
		if containsFold(reason, bad) {
			t.Errorf("reason %q speaks of Go's decoding (%q), not of the job", clip(reason, 300), bad)
		}
	}
}

// directOutcome is what one direct delivery did.
type directOutcome struct {
	err          error
	newCalls     int64
	resultExists bool
	result       string
}

// runDirect hands a body to a worker's pipeline as the worker would, for
// bytes SQS cannot carry.
func runDirect(ctx context.Context, t *testing.T, w *app.Worker, st *demo.Stack, c advCase, buckets map[string]string) directOutcome {
	t.Helper()
	before := simRequests(st)
	now := time.Now()
	err := w.Pipeline.Process(ctx, worker.Message{ID: "direct-" + c.Name, Body: expand(c.Raw, buckets),
		ReceiveCount: 1, SentAt: now, ReceivedAt: now})
	d := directOutcome{err: err, newCalls: simRequests(st) - before}
	got, gerr := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(buckets["RESULTS"]),
		Key: aws.String(jobv1.ResultKey("results/", c.jobID()))})
	if gerr == nil {
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		d.resultExists, d.result = true, clip(string(b), 300)
	}
	return d
}

func simRequests(st *demo.Stack) int64 {
	var n int64
	for _, m := range st.Sim.Stats().Models {
		n += m.Requests
	}
	return n
}

func checkDirect(t *testing.T, c advCase, d directOutcome) {
	t.Helper()
	var dl *worker.DeadLettered
	if !errors.As(d.err, &dl) {
		t.Errorf("delivered directly (the body is not UTF-8, which SQS cannot carry): not dead-lettered; Process returned %v", d.err)
	} else {
		checkReason(t, c, d.err.Error(), true)
	}
	if d.newCalls != 0 {
		t.Errorf("delivered directly: %d model calls", d.newCalls)
	}
	if d.resultExists {
		t.Errorf("delivered directly: a result was written under %q: %s", c.jobID(), d.result)
	}
}

// checkAccounting checks the run as a whole.
func checkAccounting(t *testing.T, corpus *advCorpus, run *advRun) {
	wantDLQ, wantResults := 0, map[string]bool{}
	for _, c := range corpus.Cases {
		if !c.overSQS() {
			continue
		}
		if c.wantResult() {
			wantResults[c.jobID()] = true
		} else {
			wantDLQ += c.Copies
		}
	}
	t.Logf("%d messages sent: %d results expected (for %d job IDs), %d dead letters expected; got %d results, %d dead letters",
		run.sent.count, run.sent.count-wantDLQ, len(wantResults), wantDLQ, len(run.results), len(run.deadLetters))
	if got := len(run.deadLetters); got != wantDLQ {
		t.Errorf("%d dead letters, want %d", got, wantDLQ)
	}
	for _, d := range run.deadLetters {
		if d.Case == "" {
			t.Errorf("a dead letter matches no message sent: %q", clip(d.Body, 200))
		}
	}
	var unexpected []string
	for id := range run.results {
		if !wantResults[id] {
			unexpected = append(unexpected, id)
		}
	}
	slices.Sort(unexpected)
	if len(unexpected) > 0 {
		t.Errorf("%d result objects no case expects (see the cases that wrote them): %q", len(unexpected), unexpected)
	}
	for id := range wantResults {
		if _, ok := run.results[id]; !ok {
			t.Errorf("no result for job %s", id)
		}
	}

	resultSchema := testenv.CompileSchema(t, "result.v1.schema.json", jobv1.ResultSchema)
	attempts := 0
	for id, r := range run.results {
		attempts += r.Attempts
		if err := testenv.Validate(resultSchema, r.raw); err != nil {
			t.Errorf("result %s fails result.v1.schema.json: %v", id, err)
		}
		for _, secret := range corpus.NeverInResults {
			if strings.Contains(string(r.raw), secret) {
				t.Errorf("result %s contains %q, a document no job may read", id, secret)
			}
		}
	}
	// Every call Bedrock would bill is in some result's attempts.
	if int64(attempts) != run.simRequests {
		t.Errorf("the simulator served %d model requests, but the results record %d attempts", run.simRequests, attempts)
	}
	if int64(run.calls) != run.simRequests {
		t.Errorf("the workers made %d Converse calls, the simulator counted %d", run.calls, run.simRequests)
	}
}

// checkLogs checks the workers' logs and metric lines: JSON lines only (a
// job field cannot forge a line), and none of the corpus's secrets or
// documents.
func checkLogs(t *testing.T, corpus *advCorpus, buckets map[string]string, logs, metrics string) {
	for i, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line %d is not JSON: %q", i+1, clip(line, 200))
		}
	}
	secrets := slices.Clone(corpus.NeverLogged)
	secrets = append(secrets, corpus.NeverInResults...)
	secrets = append(secrets, distinctiveTexts(corpus, buckets)...)
	for _, s := range secrets {
		for what, text := range map[string]string{"logs": logs, "metric lines": metrics} {
			if i := strings.Index(text, s); i >= 0 {
				start := strings.LastIndex(text[:i], "\n") + 1
				end := strings.Index(text[i:], "\n")
				if end < 0 {
					end = len(text) - i
				}
				t.Errorf("the %s contain %q: %s", what, s, clip(text[start:i+end], 400))
			}
		}
	}
}

// distinctiveTexts are the opening words of every document in the corpus,
// inline or in S3: none of them may be logged.
func distinctiveTexts(corpus *advCorpus, buckets map[string]string) []string {
	var out []string
	add := func(text string) {
		text = strings.TrimSpace(text)
		if i := strings.IndexAny(text, ".\n"); i > 0 {
			text = text[:i]
		}
		for len(text) > 40 || (len(text) > 0 && !utf8.ValidString(text)) {
			text = text[:len(text)-1]
		}
		if len(text) >= 24 && !slices.Contains(out, text) {
			out = append(out, text)
		}
	}
	for _, o := range corpus.Objects {
		if b, err := o.body(); err == nil && utf8.Valid(b) {
			add(string(b))
		}
	}
	for _, c := range corpus.Cases {
		var job struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(expand(c.Raw, buckets), &job) == nil {
			add(job.Text)
		}
	}
	return out
}

// releases lists the log lines of deliveries given back to the queue, to
// say which messages a queue that did not drain still holds.
func releases(logs string) string {
	var b strings.Builder
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Msg   string `json:"msg"`
			JobID string `json:"job_id"`
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && strings.Contains(l.Msg, "releas") {
			fmt.Fprintf(&b, "  %s: %s %s\n", l.JobID, l.Msg, clip(l.Error, 200))
		}
	}
	return b.String()
}

// countingConverser counts the Converse calls the workers make, in all and
// per job: each corpus document carries a "[job ID]" marker.
type countingConverser struct {
	next pipeline.Converser

	mu    sync.Mutex
	total int
	byJob map[string]int
}

var jobMarker = regexp.MustCompile(`\[job ([A-Za-z0-9._-]+)\]`)

func (c *countingConverser) Converse(ctx context.Context, in *bedrockruntime.ConverseInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	var text strings.Builder
	for _, b := range in.System {
		if v, ok := b.(*brtypes.SystemContentBlockMemberText); ok {
			text.WriteString(v.Value + "\n")
		}
	}
	for _, m := range in.Messages {
		for _, b := range m.Content {
			switch v := b.(type) {
			case *brtypes.ContentBlockMemberText:
				text.WriteString(v.Value + "\n")
			case *brtypes.ContentBlockMemberGuardContent:
				if g, ok := v.Value.(*brtypes.GuardrailConverseContentBlockMemberText); ok {
					text.WriteString(aws.ToString(g.Value.Text) + "\n")
				}
			}
		}
	}
	jobs := map[string]bool{}
	for _, m := range jobMarker.FindAllStringSubmatch(text.String(), -1) {
		jobs[m[1]] = true
	}
	c.mu.Lock()
	c.total++
	for id := range jobs {
		c.byJob[id]++
	}
	c.mu.Unlock()
	return c.next.Converse(ctx, in, optFns...)
}

func (c *countingConverser) snapshot() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byJob := make(map[string]int, len(c.byJob))
	for k, v := range c.byJob {
		byJob[k] = v
	}
	return c.total, byJob
}
