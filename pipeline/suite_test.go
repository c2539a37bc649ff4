package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
)

// One suite of job cases, many back ends (watermill's pubsub/tests is the
// model): the pipeline's promises must hold whether its ports are
// in-memory, kumo and the Bedrock simulator through the real SDK clients,
// or whatever AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_BEDROCK_RUNTIME name
// (LocalStack with tierq sim, where Docker runs).

// suiteBackend is one world the cases run in.
type suiteBackend struct {
	name string
	// start builds a pipeline on fresh buckets, with a way to put a
	// document in the input bucket and to count model calls.
	start func(t *testing.T) suiteWorld
}

type suiteWorld struct {
	p          *Pipeline
	docs       string // the input bucket
	putDoc     func(key, body string)
	modelCalls func() int64
}

func TestJobSuite(t *testing.T) {
	t.Parallel()
	backends := []suiteBackend{{"memory", memoryWorld}, {"emulators", emulatorWorld}}
	if s3URL, brURL := os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"); s3URL != "" && brURL != "" {
		backends = append(backends, suiteBackend{"endpoints", func(t *testing.T) suiteWorld { return endpointWorld(t, s3URL, brURL) }})
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			runJobSuite(t, b)
		})
	}
}

func runJobSuite(t *testing.T, b suiteBackend) {
	ctx := context.Background()
	body := func(id, extra string) []byte {
		return []byte(fmt.Sprintf(`{"version":"1","job_id":%q,"task":"summarize",%s}`, id, extra))
	}
	process := func(w suiteWorld, raw []byte) error {
		return w.p.Process(ctx, worker.Message{ID: "m", Body: raw, ReceiveCount: 1, ReceivedAt: time.Now()})
	}
	result := func(t *testing.T, w suiteWorld, id string) jobv1.Result {
		t.Helper()
		obj, err := w.p.obj.Get(ctx, w.p.cfg.ResultsBucket, jobv1.ResultKey(w.p.cfg.ResultsPrefix, id), 1<<20)
		if err != nil {
			t.Fatalf("result of %s: %v", id, err)
		}
		var r jobv1.Result
		if err := json.Unmarshal(obj.Body, &r); err != nil {
			t.Fatalf("result of %s: %v", id, err)
		}
		return r
	}
	const text = `"text":"Quarterly report. Revenue grew in every region. Costs held steady."`

	t.Run("a job is answered once, however often it is delivered", func(t *testing.T) {
		w := b.start(t)
		for range 3 {
			if err := process(w, body("once", text)); err != nil {
				t.Fatalf("Process: %v", err)
			}
		}
		if r := result(t, w, "once"); r.Status != jobv1.StatusSucceeded || r.Attempts != 1 {
			t.Errorf("status %s attempts %d, want succeeded after 1", r.Status, r.Attempts)
		}
		if n := w.modelCalls(); n != 1 {
			t.Errorf("%d model calls, want 1", n)
		}
	})
	t.Run("copies at the same time make one model call", func(t *testing.T) {
		w := b.start(t)
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = process(w, body("copies", text)) // a copy may be released while the first runs
			}()
		}
		wg.Wait()
		if n := w.modelCalls(); n != 1 {
			t.Errorf("%d model calls for 6 copies, want 1", n)
		}
	})
	t.Run("an invalid job is failed without a model call", func(t *testing.T) {
		w := b.start(t)
		if err := process(w, body("bad", text+`,"max_output_tokens":0`)); err != nil {
			t.Fatalf("Process: %v", err)
		}
		if r := result(t, w, "bad"); r.Status != jobv1.StatusFailed || r.Error == nil || r.Error.Code != jobv1.CodeInvalidJob {
			t.Errorf("status %s error %+v, want failed invalid_job", r.Status, r.Error)
		}
		if n := w.modelCalls(); n != 0 {
			t.Errorf("%d model calls, want none", n)
		}
	})
	t.Run("a document is read by its exact key", func(t *testing.T) {
		w := b.start(t)
		w.putDoc("notes#2.txt", "Board minutes. The budget was approved.")
		if err := process(w, body("byref", fmt.Sprintf(`"document_uri":"s3://%s/notes#2.txt"`, w.docs))); err != nil {
			t.Fatalf("Process: %v", err)
		}
		if r := result(t, w, "byref"); r.Status != jobv1.StatusSucceeded {
			t.Errorf("status %s (%+v), want succeeded", r.Status, r.Error)
		}
		if err := process(w, body("missing", fmt.Sprintf(`"document_uri":"s3://%s/notes"`, w.docs))); err != nil {
			t.Fatalf("Process: %v", err)
		}
		if r := result(t, w, "missing"); r.Error == nil || r.Error.Code != jobv1.CodeDocumentNotFound {
			t.Errorf("error %+v, want document_not_found: the key is not cut at #", r.Error)
		}
	})
	t.Run("a message that is not a job is dead-lettered", func(t *testing.T) {
		w := b.start(t)
		var dl *worker.DeadLettered
		if err := process(w, []byte(`{"version":"2","job_id":"x"}`)); !errors.As(err, &dl) {
			t.Errorf("Process = %v, want worker.DeadLetter", err)
		}
	})
}

// suitePipeline builds a pipeline on the given ports.
func suitePipeline(t *testing.T, m model, o objects, results, docs string) *Pipeline {
	t.Helper()
	p, err := New(Config{ResultsBucket: results, InputBuckets: []string{docs}, WorkerID: "suite", Tiers: tiering.Default(),
		ClaimLease: 2 * time.Second},
		Deps{Converser: panicky{}, Store: newFakeStore(), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: io.Discard,
			Backoff: testenv.NoWait, WriteBackoff: testenv.NoWait})
	if err != nil {
		t.Fatal(err)
	}
	p.model, p.obj = m, o
	return p
}

// memoryWorld: in-memory ports, no SDK anywhere.
func memoryWorld(t *testing.T) suiteWorld {
	o := &memObjects{objects: map[string]memObject{}}
	m := &memModel{}
	return suiteWorld{
		p:          suitePipeline(t, m, o, "results", "docs"),
		docs:       "docs",
		putDoc:     func(key, body string) { o.put("docs", key, body) },
		modelCalls: m.calls.Load,
	}
}

// emulatorWorld: kumo (the test binary's one server, KumoURLForSuite) and
// the simulator, through the real SDK clients.
func emulatorWorld(t *testing.T) suiteWorld {
	sim, err := bedrocksim.New(bedrocksim.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return clientsWorld(t, emulator.S3(KumoURLForSuite), emulator.Bedrock(srv.URL), func() int64 {
		var n int64
		for _, m := range sim.Stats().Models {
			n += m.Requests
		}
		return n
	})
}

// endpointWorld: the endpoints AWS_ENDPOINT_URL_* name, with the
// emulators' client settings and test keys (LocalStack and tierq sim take
// any). Model calls are counted on the client side.
func endpointWorld(t *testing.T, s3URL, bedrockURL string) suiteWorld {
	var calls atomic.Int64
	return clientsWorld(t, emulator.S3(s3URL), countingConverser{emulator.Bedrock(bedrockURL), &calls}, calls.Load)
}

func clientsWorld(t *testing.T, c *s3.Client, conv Converser, calls func() int64) suiteWorld {
	results, docs := emulator.Name(t, "suite-results"), emulator.Name(t, "suite-docs")
	for _, b := range []string{results, docs} {
		if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("create bucket %s: %v", b, err)
		}
	}
	o := s3Objects{s3: c}
	return suiteWorld{
		p:    suitePipeline(t, bedrockModel{conv: conv, timeout: time.Minute}, o, results, docs),
		docs: docs,
		putDoc: func(key, body string) {
			if _, err := o.Create(context.Background(), docs, key, []byte(body)); err != nil {
				t.Fatal(err)
			}
		},
		modelCalls: calls,
	}
}

type countingConverser struct {
	next  Converser
	calls *atomic.Int64
}

func (c countingConverser) Converse(ctx context.Context, in *bedrockruntime.ConverseInput, opts ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	c.calls.Add(1)
	return c.next.Converse(ctx, in, opts...)
}

// memObjects is the objects port in memory, with S3's conditional rules.
type memObjects struct {
	mu      sync.Mutex
	objects map[string]memObject
	n       int
}

type memObject struct {
	body []byte
	etag string
}

func (m *memObjects) put(bucket, key, body string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.putLocked(bucket, key, []byte(body))
}

func (m *memObjects) putLocked(bucket, key string, body []byte) string {
	m.n++
	etag := fmt.Sprintf(`"%d"`, m.n)
	m.objects[bucket+"/"+key] = memObject{body, etag}
	return etag
}

func (m *memObjects) Exists(_ context.Context, bucket, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.objects[bucket+"/"+key]
	return ok, nil
}

func (m *memObjects) Get(_ context.Context, bucket, key string, limit int64) (Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[bucket+"/"+key]
	if !ok {
		return Object{}, &storeError{kind: errNotFound, err: fmt.Errorf("no object %s/%s", bucket, key)}
	}
	if int64(len(o.body)) > limit {
		return Object{Size: int64(len(o.body)), TooLarge: true, ETag: o.etag}, nil
	}
	return Object{Body: o.body, ETag: o.etag, Size: int64(len(o.body))}, nil
}

func (m *memObjects) Create(_ context.Context, bucket, key string, body []byte) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[bucket+"/"+key]; ok {
		return "", &storeError{kind: errExists, err: fmt.Errorf("%s/%s exists", bucket, key)}
	}
	return m.putLocked(bucket, key, body), nil
}

func (m *memObjects) Replace(_ context.Context, bucket, key, etag string, body []byte) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[bucket+"/"+key]
	switch {
	case !ok:
		return "", &storeError{kind: errNotFound, err: fmt.Errorf("no object %s/%s", bucket, key)}
	case o.etag != etag:
		return "", &storeError{kind: errChanged, err: fmt.Errorf("%s/%s changed", bucket, key)}
	}
	return m.putLocked(bucket, key, body), nil
}

// memModel is the model port in memory: every call answers a short summary.
type memModel struct{ calls atomic.Int64 }

func (m *memModel) Call(context.Context, request, tiering.GuardrailRef) (modelAnswer, error) {
	m.calls.Add(1)
	return modelAnswer{text: "A short summary.", stopReason: "end_turn", usage: tiering.Usage{InputTokens: 20, OutputTokens: 4}}, nil
}
