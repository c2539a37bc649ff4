package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tierq/tierq/jobv1"
)

// panicky is a model client whose call panics, as a bug would.
type panicky struct{}

func (panicky) Converse(context.Context, *bedrockruntime.ConverseInput, ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	panic("bug in a model call")
}

// A panic in the middle of a job (the worker recovers it and releases the
// message) must end the claim's lease, not leave it renewed for ever.
func TestPanicEndsTheClaim(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, func(c *Config) { c.ClaimLease = time.Hour })
	u.p.model = bedrockModel{conv: panicky{}, timeout: time.Minute}
	m := msg(t, jobv1.Job{JobID: "j1", Task: "summarize", Text: shortDoc})
	func() {
		defer func() { _ = recover() }()
		_ = u.p.Process(context.Background(), m)
		t.Fatal("Process returned; want the model call's panic")
	}()
	var rec jobv1.Claim
	if err := json.Unmarshal(u.store.object("results", jobv1.ClaimKey(DefaultResultsPrefix, "j1")), &rec); err != nil {
		t.Fatalf("claim: %v", err)
	}
	if rec.Until.After(u.p.now()) {
		t.Errorf("claim lease ends %s, want ended: a panicked delivery gave its job back", rec.Until)
	}
	// The next delivery runs at once, without waiting an hour.
	u.p.model = bedrockModel{conv: u.conv, timeout: time.Minute}
	u.conv.replies = []reply{{out: answer("A summary.", "end_turn", 10, 3, nil)}}
	u.process(t, m)
	if r := u.result(t, "j1"); r.Status != jobv1.StatusSucceeded {
		t.Errorf("status %s, want succeeded", r.Status)
	}
}

// A claim write that lands but whose response is lost reaches us as 412
// (the SDK retries, and the retry's condition fails against our own
// write). The claim's token tells our own claim from another delivery's,
// so the job is neither deferred from itself nor run twice.
func TestLostClaimResponsesAreRecognised(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx := context.Background()

	u := newUnit(t, nil, nil)
	u.store.lostClaimPuts = 1
	c, err := u.p.claim(ctx, log, "j1", jobv1.ResultKey(DefaultResultsPrefix, "j1"))
	if err != nil {
		t.Fatalf("claim after a lost create response: %v, want held", err)
	}
	u.store.lostClaimPuts = 1
	if !u.p.renew(ctx, log, c) {
		t.Fatal("renew after a lost renewal response: gave up, want renewed")
	}
	if _, lost := c.tag(); lost {
		t.Error("the claim is marked lost, but nobody else took it")
	}
	if !u.p.renew(ctx, log, c) {
		t.Error("the renewal after: gave up, want the ETag read back to be current")
	}
	u.p.drop(ctx, log, c, false)

	// Another delivery's claim is still another's.
	other := newUnit(t, nil, nil)
	other.store = u.store
	other.p.obj = s3Objects{s3: u.store}
	if _, err := other.p.claim(ctx, log, "j1", jobv1.ResultKey(DefaultResultsPrefix, "j1")); err == nil {
		t.Error("a second delivery took a live claim")
	}
}

// A claim's lease is trusted for at most one lease from now: a worker
// whose clock runs ahead, or a hand-written claim, cannot hold a job for
// longer than a lease after its worker died.
func TestClaimLeaseIsCapped(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, func(c *Config) { c.ClaimLease = 30 * time.Second })
	rec := jobv1.Claim{JobID: "j1", Worker: "fast-clock", Token: "t", Until: u.p.now().Add(24 * time.Hour)}
	body, _ := json.Marshal(rec)
	u.store.objects["results/"+jobv1.ClaimKey(DefaultResultsPrefix, "j1")] = body
	u.store.etags = map[string]string{"results/" + jobv1.ClaimKey(DefaultResultsPrefix, "j1"): `"x"`}
	_, err := u.p.claim(context.Background(), slog.New(slog.NewJSONHandler(io.Discard, nil)), "j1", jobv1.ResultKey(DefaultResultsPrefix, "j1"))
	b, ok := isClaimBusy(err)
	if !ok {
		t.Fatalf("claim = %v, want busy", err)
	}
	if limit := u.p.now().Add(30 * time.Second); b.until.After(limit) {
		t.Errorf("busy until %s, want at most one lease from now (%s)", b.until, limit)
	}
}

// A renewal that stalls gives up within a third of the lease, before the
// lease it is renewing ends, and the next tick tries again.
func TestStalledRenewalIsBoundedByTheLease(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, func(c *Config) { c.ClaimLease = 3 * time.Second })
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	c, err := u.p.claim(context.Background(), log, "j1", jobv1.ResultKey(DefaultResultsPrefix, "j1"))
	if err != nil {
		t.Fatal(err)
	}
	c.stop() // renew by hand below
	<-c.done
	u.store.mu.Lock()
	u.store.stallClaims = true
	u.store.mu.Unlock()
	start := time.Now()
	if !u.p.renew(context.Background(), log, c) {
		t.Error("a stalled renewal gave up on the claim; want it kept for the next try")
	}
	if d := time.Since(start); d >= 3*time.Second {
		t.Errorf("the stalled renewal took %s, the whole lease", d)
	}
}

// Of several deliveries taking over one ended claim at the same time,
// exactly one wins: the takeover is conditional on the ETag they read.
func TestOneTakeoverWins(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, nil)
	key := "results/" + jobv1.ClaimKey(DefaultResultsPrefix, "j1")
	body, _ := json.Marshal(jobv1.Claim{JobID: "j1", Worker: "dead", Token: "t", Until: u.p.now().Add(-time.Minute)})
	u.store.objects[key] = body
	u.store.etags = map[string]string{key: `"dead"`}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := range 8 {
		w := newUnit(t, nil, func(c *Config) { c.WorkerID = fmt.Sprintf("w%d", i) })
		w.p.obj = s3Objects{s3: u.store}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := w.p.claim(context.Background(), log, "j1", jobv1.ResultKey(DefaultResultsPrefix, "j1")); err == nil {
				won.Add(1)
				c.stop()
				<-c.done
			}
		}()
	}
	wg.Wait()
	if n := won.Load(); n != 1 {
		t.Errorf("%d deliveries took the ended claim over, want exactly 1", n)
	}
}

// A claim nobody can read (garbage, a half-written object) counts as an
// ended lease: it must not hold a job for ever.
func TestUnreadableClaimIsTakenOver(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, nil)
	key := "results/" + jobv1.ClaimKey(DefaultResultsPrefix, "j1")
	u.store.objects[key] = []byte("not a claim")
	u.store.etags = map[string]string{key: `"garbage"`}
	c, err := u.p.claim(context.Background(), slog.New(slog.NewJSONHandler(io.Discard, nil)), "j1", jobv1.ResultKey(DefaultResultsPrefix, "j1"))
	if err != nil {
		t.Fatalf("claim = %v, want the unreadable claim taken over", err)
	}
	c.stop()
	<-c.done
}

// noETags answers writes without an ETag, as a store without conditional
// writes would.
type noETags struct{ *fakeStore }

func (s noETags) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	out, err := s.fakeStore.PutObject(ctx, in, opts...)
	if out != nil {
		out.ETag = nil
	}
	return out, err
}

// A store that answers without ETags cannot hold claims: the job is
// released with a message that says why, and the model is not called.
func TestStoreWithoutETagsIsRefused(t *testing.T) {
	t.Parallel()
	u := newUnit(t, []reply{{out: answer("A summary.", "end_turn", 10, 3, nil)}}, nil)
	u.p.obj = s3Objects{s3: noETags{u.store}}
	err := u.p.Process(context.Background(), msg(t, jobv1.Job{JobID: "j1", Task: "summarize", Text: shortDoc}))
	if !errors.Is(err, errNoETag) || retryDelay(err) < 0 {
		t.Fatalf("Process = %v, want a release saying the store returned no ETag", err)
	}
	if len(u.conv.calls) != 0 {
		t.Errorf("%d model calls, want none without a claim", len(u.conv.calls))
	}
}
