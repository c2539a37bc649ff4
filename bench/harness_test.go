package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/demo"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
)

// The quota under test: one Claude-class model with an output burndown of 5,
// the figures issue 4 asks for. Every job goes to it.
const (
	benchModel    = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
	benchTier     = "premium"
	quotaRPM      = 300
	quotaTPM      = 150_000
	quotaBurndown = 5
	// benchMaxTokens is the tier's maxTokens: what each call reserves beyond
	// its input. Close to five times the answers, so reservation and
	// settlement are about equal and TPM, not RPM, binds.
	benchMaxTokens = 1_000
)

// The job mix: documents of about 1,000 tokens, answers of about 200, drawn
// from a fixed seed so every strategy and every run sees the same jobs.
const (
	jobSeed       = 4
	minDocTokens  = 700
	maxDocTokens  = 1_300
	minAnswerToks = 150
	maxAnswerToks = 250
	// benchInstructions carries the simulator's marker that fixes the
	// answer's length (bedrocksim.OutputTokensMarker).
	benchInstructions = "Answer the reader's question about the document in plain prose. [[sim:output_tokens=%d]]"
)

// benchJob is one job of the fixed set and what it costs the quota.
type benchJob struct {
	id      string
	body    []byte
	input   int // input tokens as the simulator counts them
	output  int // answer tokens the marker asks for
	reserve int // input + maxTokens
	settled int // input + output × burndown
}

// vocabulary is plain business prose: nothing a guardrail masks or blocks,
// so every job is a model call that succeeds.
var vocabulary = strings.Fields(`the quarterly report describes how the regional team
planned shipments across warehouses and adjusted schedules after the spring review
customers asked for clearer invoices while suppliers proposed longer contracts and the
board approved a modest budget for training new staff in logistics planning and quality
checks each site measured delivery times stock levels returns and service tickets then
compared them with last year so managers could decide where to hire and what to automate`)

// jobSet returns n jobs drawn from seed. Inputs are counted the way the
// simulator counts them (one token per four characters of the system prompt
// and every user block together), so the quota bound is exact.
func jobSet(n int, seed uint64) ([]benchJob, error) {
	tier, ok := tiering.Default().Tier(benchTier)
	if !ok {
		return nil, fmt.Errorf("default tiers have no %q tier", benchTier)
	}
	system := tier.SystemPrompt(tiering.TaskCustom)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	jobs := make([]benchJob, n)
	for i := range jobs {
		docTokens := minDocTokens + rng.IntN(maxDocTokens-minDocTokens+1)
		answer := minAnswerToks + rng.IntN(maxAnswerToks-minAnswerToks+1)
		doc := document(rng, docTokens*4)
		inst := fmt.Sprintf(benchInstructions, answer)
		id := fmt.Sprintf("bench-%05d", i)
		job := jobv1.Job{
			Version: jobv1.JobVersion, JobID: id, Task: tiering.TaskCustom,
			Instructions: inst, Text: doc, TierOverride: benchTier,
		}
		body, err := json.Marshal(job)
		if err != nil {
			return nil, err
		}
		// The prompt is the system prompt, tierq's opening and the job's
		// parts (jobv1.PromptParts), counted together as the simulator does.
		runes := utf8.RuneCountInString(system) + utf8.RuneCountInString(jobv1.UserIntro)
		for _, part := range job.PromptParts(doc) {
			runes += utf8.RuneCountInString(part)
		}
		input := (runes + 3) / 4
		jobs[i] = benchJob{id: id, body: body, input: input, output: answer,
			reserve: input + benchMaxTokens, settled: input + answer*quotaBurndown}
	}
	return jobs, nil
}

// document is about chars characters of sentences from the vocabulary.
func document(rng *rand.Rand, chars int) string {
	var b strings.Builder
	for b.Len() < chars {
		n := 8 + rng.IntN(12)
		for i := range n {
			w := vocabulary[rng.IntN(len(vocabulary))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b.WriteString(w)
			if i < n-1 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(". ")
	}
	return strings.TrimSpace(b.String()[:chars])
}

// mixOf summarises a job set for the report and the bound.
type jobMix struct {
	Count           int     `json:"count"`
	Seed            uint64  `json:"seed"`
	Task            string  `json:"task"`
	Tier            string  `json:"tier"`
	Model           string  `json:"model"`
	MaxTokens       int     `json:"max_tokens"`
	DocTokens       [2]int  `json:"document_tokens_range"`
	AnswerTokens    [2]int  `json:"answer_tokens_range"`
	MeanInput       float64 `json:"mean_input_tokens"`
	MeanOutput      float64 `json:"mean_output_tokens"`
	MeanReserve     float64 `json:"mean_reserved_tokens"`
	MeanSettled     float64 `json:"mean_settled_tokens"`
	MeanMessageSize float64 `json:"mean_message_bytes"`
}

func mixOf(jobs []benchJob) jobMix {
	m := jobMix{Count: len(jobs), Seed: jobSeed, Task: tiering.TaskCustom, Tier: benchTier, Model: benchModel,
		MaxTokens: benchMaxTokens, DocTokens: [2]int{minDocTokens, maxDocTokens}, AnswerTokens: [2]int{minAnswerToks, maxAnswerToks}}
	for _, j := range jobs {
		m.MeanInput += float64(j.input)
		m.MeanOutput += float64(j.output)
		m.MeanReserve += float64(j.reserve)
		m.MeanSettled += float64(j.settled)
		m.MeanMessageSize += float64(len(j.body))
	}
	n := float64(max(len(jobs), 1))
	m.MeanInput /= n
	m.MeanOutput /= n
	m.MeanReserve /= n
	m.MeanSettled /= n
	m.MeanMessageSize /= n
	return m
}

// simConfig is the simulator for a run: the built-in models with the bench
// model's quota set, a compressed quota minute, and latency scaled with it,
// so a call takes the same share of a quota minute as on Bedrock (Sonnet:
// 0.8s to the first token plus 14ms a token, ±20%; about 3.6s for 200 tokens).
func simConfig(minute time.Duration) bedrocksim.Config {
	cfg := bedrocksim.DefaultConfig()
	cfg.Minute = minute
	cfg.LatencyScale = float64(minute) / float64(time.Minute)
	m := cfg.Models[benchModel]
	m.RPM, m.TPM, m.OutputBurndown = quotaRPM, quotaTPM, quotaBurndown
	cfg.Models[benchModel] = m
	return cfg
}

// tiersFile writes a tier configuration with only the premium tier, its
// maxTokens set to benchMaxTokens, and no escalation: every job makes
// exactly one successful model call on the bench model. One tier also keeps
// the limiter's Available honest: idle tiers' models would otherwise count
// as free capacity and let the receive loop take jobs that only wait.
func tiersFile(dir string) (string, error) {
	cfg := tiering.Default()
	tier, ok := cfg.Tier(benchTier)
	if !ok {
		return "", fmt.Errorf("default tiers have no %q tier", benchTier)
	}
	if tier.ModelID != benchModel {
		return "", fmt.Errorf("tier %s uses %s, the benchmark's quota is on %s", benchTier, tier.ModelID, benchModel)
	}
	tier.MaxOutputTokens = benchMaxTokens
	cfg.Tiers = []tiering.Tier{tier}
	cfg.Escalation.Enabled = false
	cfg.Provisioned = nil
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode bench tiers: %w", err)
	}
	if _, err := tiering.Load(data); err != nil {
		return "", fmt.Errorf("bench tiers do not load: %w", err)
	}
	path := filepath.Join(dir, "tiers.yaml")
	return path, os.WriteFile(path, data, 0o644)
}

// runNames are one run's queue and bucket. kumo keeps one store per process,
// so every run needs its own.
var runCounter atomic.Int64

func runNames(prefix string) (queue, bucket string) {
	n := runCounter.Add(1)
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), n), fmt.Sprintf("%s-%d-%d-results", prefix, os.Getpid(), n)
}

// enqueue sends bodies to the queue in batches of 10, a few batches at once.
func enqueue(ctx context.Context, q *sqs.Client, url string, bodies [][]byte, parallel int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for start := 0; start < len(bodies); start += 10 {
		batch := bodies[start:min(start+10, len(bodies))]
		g.Go(func() error {
			entries := make([]sqstypes.SendMessageBatchRequestEntry, len(batch))
			for i, b := range batch {
				entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(b))}
			}
			out, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
			if err != nil {
				return fmt.Errorf("send jobs %d..%d: %w", start, start+len(batch)-1, err)
			}
			if len(out.Failed) > 0 {
				f := out.Failed[0]
				return fmt.Errorf("send jobs %d..%d: %d failed, first %s: %s", start, start+len(batch)-1,
					len(out.Failed), aws.ToString(f.Code), aws.ToString(f.Message))
			}
			return nil
		})
	}
	return g.Wait()
}

// queueDepth is the visible plus in-flight messages of a queue.
func queueDepth(ctx context.Context, q *sqs.Client, url string) (int, error) {
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, fmt.Errorf("read queue depth: %w", err)
	}
	visible, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
	hidden, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"])
	return visible + hidden, nil
}

// readResults reads every result object in bucket.
func readResults(ctx context.Context, store *s3.Client, bucket string) ([]jobv1.Result, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(store, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("results/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list results: %w", err)
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); jobv1.IsResultKey(k) {
				keys = append(keys, k)
			}
		}
	}
	out := make([]jobv1.Result, len(keys))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, key := range keys {
		g.Go(func() error {
			got, err := store.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return fmt.Errorf("read result %s: %w", key, err)
			}
			defer got.Body.Close()
			if err := json.NewDecoder(got.Body).Decode(&out[i]); err != nil {
				return fmt.Errorf("decode result %s: %w", key, err)
			}
			return nil
		})
	}
	return out, g.Wait()
}

// sdkRetries is a Converser that lets the SDK client's own retryer work.
// The pipeline asks for one attempt per call with a per-call option, so that
// its limiter sees every throttle; strategies that leave retries to the SDK
// drop that option and keep the retryer the client was built with.
type sdkRetries struct{ client *bedrockruntime.Client }

var _ pipeline.Converser = sdkRetries{}

func (s sdkRetries) Converse(ctx context.Context, in *bedrockruntime.ConverseInput, _ ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	return s.client.Converse(ctx, in)
}

// converser builds one worker's Bedrock client, as its own process would:
// its own connections and, for the SDK's adaptive mode, its own token bucket.
// base is the stack's client, whose endpoint and credentials it reuses.
func converser(base *bedrockruntime.Client, sdkRetry string) (pipeline.Converser, error) {
	o := base.Options()
	// Enough idle connections for 64 calls at once, so that no strategy
	// pays for new loopback connections (or runs out of ports) because of
	// the harness.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 256
	o.HTTPClient = &http.Client{Transport: tr}
	switch sdkRetry {
	case "":
		o.RetryMaxAttempts = 1
		return bedrockruntime.New(o), nil
	case "standard":
		o.RetryMaxAttempts, o.Retryer = 0, retry.NewStandard()
	case "adaptive":
		o.RetryMaxAttempts, o.Retryer = 0, retry.NewAdaptiveMode()
	default:
		return nil, fmt.Errorf("unknown SDK retry mode %q", sdkRetry)
	}
	return sdkRetries{client: bedrockruntime.New(o)}, nil
}

// newWorker builds one worker of a run with the strategy's settings. window
// is the simulator's quota minute, which the adaptive limiter paces against.
func newWorker(ctx context.Context, st *demo.Stack, s strategy, id string, qs demo.Queues, bucket, tiers string, window time.Duration) (*app.Worker, error) {
	conv, err := converser(st.Bedrock, s.SDKRetry)
	if err != nil {
		return nil, err
	}
	settings := app.Settings{
		QueueURL: qs.URL, DeadLetterQueueURL: qs.DLQURL, ResultsBucket: bucket, TiersFile: tiers,
		Concurrency: s.Concurrency, Limiter: s.Limiter, ModelConcurrency: s.ModelConcurrency,
		MaxModelConcurrency: s.MaxModelConcurrency, LimiterWindow: window,
		// A short long-poll, as kumo needs (emulators.md); a short drain so
		// the run ends on time. Nothing else is tuned for the benchmark.
		WaitTime: time.Second, DrainTimeout: 3 * time.Second,
		WorkerID: id, Version: "bench", LimiterMetricsInterval: time.Hour,
	}
	w, err := app.New(settings, app.Clients{Queue: st.SQS, Store: st.S3, Converser: conv}, io.Discard,
		slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("build worker %s: %w", id, err)
	}
	if err := w.Pipeline.Preflight(ctx); err != nil {
		return nil, fmt.Errorf("worker %s preflight: %w", id, err)
	}
	return w, nil
}

// sleepUntil waits until t or ctx ends, reporting whether t was reached.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
