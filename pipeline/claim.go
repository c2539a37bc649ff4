package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tierq/tierq/internal/awserr"
	"github.com/tierq/tierq/jobv1"
)

// One model call per job, whatever the delivery pattern.
//
// The conditional result write (If-None-Match: *) decides whose answer is
// kept, but two deliveries of one job running at the same time (SQS hands
// out duplicates, upstream resends, two workers) would both pay for the
// model. So before any model call a delivery claims the job:
//
//   - In the process, one delivery of a job runs at a time: a second one
//     waits for the first (it holds a slot, but SQS duplicates are rare and
//     the wait costs no request), then claims and finds the result.
//   - Across processes, a claim object {prefix}{job_id}.claim next to the
//     result, created with PutObject If-None-Match: *, names the worker and
//     a lease. The holder renews the lease every third of it (PutObject
//     If-Match: its ETag) while the job runs; a delivery that finds a live
//     claim is released until the lease ends, by which time the job is
//     usually done and the next delivery acknowledges it. A claim whose
//     lease ended (its worker was killed) is taken over with If-Match on the
//     ETag that was read, so of two takers exactly one wins.
//   - A delivery that gives its job back (transient trouble, shutdown) ends
//     its lease at once, so the next delivery need not wait it out.
//
// The claim is also how a delivery knows whether to look for a result. Every
// result has a claim beside it, written before it (an invalid job, answered
// without a model call, writes one too: markClaimed), and claims stay in
// place. So a claim this delivery creates means a new job: no result to look
// for. Only when the claim exists does the delivery check for the result
// (HeadObject), and a finished job is acknowledged there, before the claim
// is read. A claim deleted while its result stays (by hand, or a lifecycle
// rule expiring claims sooner than results) would let a redelivery of that
// job pay for the model once more; its answer is then dropped by the result
// write and recorded in metrics as superseded.
//
// Cost in S3 requests: a new job makes two (the claim's PutObject, the
// result's PutObject), where checking for the result first made three, plus
// one PutObject per lease renewal for a job running longer than a third of
// the lease; a redelivery of a finished job makes two (the claim's
// PutObject that finds the claim, and the HeadObject that finds the result),
// where it made one. New jobs outnumber redeliveries by far.

// Why S3 and not a lock table: the results bucket is already the record of
// what is done, its conditional writes are atomic per key, and the worker's
// role already writes there; a DynamoDB table would add a service, a
// policy and a failure mode for the same guarantee.

// heldClaim is a claim this delivery holds.
type heldClaim struct {
	key   string
	jobID string
	token string
	stop  context.CancelFunc // stops renewal
	done  chan struct{}      // closed when renewal has stopped
	mu    sync.Mutex
	etag  string
	lost  bool // another delivery took the claim over
}

func (c *heldClaim) tag() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.etag, c.lost
}

// claimBusy is a job that another live delivery is running. Its message is
// released until the other's lease ends.
type claimBusy struct {
	jobID, worker string
	until         time.Time
}

func (e *claimBusy) Error() string {
	return fmt.Sprintf("job %s is running on worker %s (its claim's lease ends %s)", e.jobID, e.worker, e.until.UTC().Format(time.RFC3339))
}

// enter admits one delivery of a job at a time in this process. It returns
// once no other delivery of jobID is running here, or with ctx's error.
func (p *Pipeline) enter(ctx context.Context, jobID string) (leave func(), waited bool, err error) {
	for {
		p.runningMu.Lock()
		ch, busy := p.running[jobID]
		if !busy {
			ch = make(chan struct{})
			p.running[jobID] = ch
			p.runningMu.Unlock()
			return func() {
				p.runningMu.Lock()
				delete(p.running, jobID)
				p.runningMu.Unlock()
				close(ch)
			}, waited, nil
		}
		p.runningMu.Unlock()
		waited = true
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, waited, ctx.Err()
		}
	}
}

// errDone is a job whose result exists: the delivery is acknowledged.
var errDone = errors.New("the job's result exists")

// claim takes the job's claim. It returns the held claim, or an error:
// errDone when the job has a result (resultKey), a *claimBusy when another
// delivery holds a live lease, any other error for S3 trouble.
func (p *Pipeline) claim(ctx context.Context, log *slog.Logger, jobID, resultKey string) (*heldClaim, error) {
	key := jobv1.ClaimKey(p.cfg.ResultsPrefix, jobID)
	token := newToken()
	cctx, cancel := context.WithTimeout(ctx, p.cfg.S3Timeout)
	defer cancel()
	checked := false
	// Three rounds cover a claim deleted, or taken over, between our reads.
	for range 3 {
		etag, err := p.putClaim(cctx, key, jobID, token, p.cfg.ClaimLease, "", true)
		if err == nil {
			return p.hold(ctx, log, key, jobID, token, etag), nil
		}
		if !errors.Is(err, errExists) {
			return nil, p.claimError(ctx, key, err)
		}
		if !checked {
			// Someone took the job before: it may be done. A finished job
			// keeps its claim, so this is the only place a result can be.
			checked = true
			done, err := p.resultExists(ctx, log, resultKey)
			if err != nil {
				return nil, err
			}
			if done {
				return nil, errDone
			}
		}
		rec, etag, err := p.readClaim(cctx, key)
		switch {
		case errors.Is(err, errNotFound):
			continue
		case err != nil:
			return nil, p.claimError(ctx, key, err)
		case rec.Token == token:
			// Our own write landed and its response was lost.
			return p.hold(ctx, log, key, jobID, token, etag), nil
		}
		if until := p.leaseEnd(rec); until.After(p.now()) {
			return nil, &claimBusy{jobID: jobID, worker: rec.Worker, until: until}
		}
		// The lease ended: its worker died or gave the job back.
		etag, err = p.putClaim(cctx, key, jobID, token, p.cfg.ClaimLease, etag, false)
		if errors.Is(err, errChanged) {
			// Another delivery took it first, or our write landed and its
			// response was lost: the token tells.
			if again, tag, rerr := p.readClaim(cctx, key); rerr == nil && again.Token == token {
				etag, err = tag, nil
			}
		}
		switch {
		case err == nil:
			if rec.Worker != "" {
				log.Info("took over an ended claim", "previous_worker", rec.Worker, "lease_ended", rec.Until.UTC().Format(time.RFC3339))
			}
			return p.hold(ctx, log, key, jobID, token, etag), nil
		case errors.Is(err, errChanged), errors.Is(err, errNotFound):
			continue // another delivery took it first, or it is gone: look again
		default:
			return nil, p.claimError(ctx, key, err)
		}
	}
	return nil, &claimBusy{jobID: jobID, worker: "another worker", until: p.now().Add(p.cfg.ClaimLease)}
}

// markClaimed writes the claim of a job that is answered without a model
// call (an invalid job's failed result): a claim whose lease ended at at,
// so it holds nobody back, but a later delivery finds it and then the
// result. A claim already there is fine.
func (p *Pipeline) markClaimed(ctx context.Context, jobID string, at time.Time) error {
	key := jobv1.ClaimKey(p.cfg.ResultsPrefix, jobID)
	body, err := json.Marshal(jobv1.Claim{JobID: jobID, Worker: p.cfg.WorkerID, Token: newToken(), Until: at.UTC()})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.S3Timeout)
	defer cancel()
	if _, err := p.obj.Create(cctx, p.cfg.ResultsBucket, key, body); err != nil && !errors.Is(err, errExists) {
		return p.claimError(ctx, key, err)
	}
	return nil
}

// leaseEnd is when another delivery's claim ends, as far as this worker
// trusts it: never later than one lease from now, so a worker whose clock
// runs ahead (or a claim written by hand) cannot hold a job for longer than
// a lease after its worker died.
func (p *Pipeline) leaseEnd(rec jobv1.Claim) time.Time {
	return minTime(rec.Until, p.now().Add(p.cfg.ClaimLease))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// newToken is 16 random bytes in hex.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func (p *Pipeline) claimError(ctx context.Context, key string, err error) error {
	where := fmt.Sprintf("claim s3://%s/%s", p.cfg.ResultsBucket, key)
	if errors.Is(err, errConflict) {
		return p.transientAfter(ctx, fmt.Errorf("%s: concurrent write: %w", where, err), conflictDelay)
	}
	return p.transient(ctx, fmt.Errorf("%s: %w", where, err))
}

// putClaim writes the claim with a lease of d from now: as a new object
// (create), or over the version whose ETag is ifMatch. It returns the new
// ETag.
func (p *Pipeline) putClaim(ctx context.Context, key, jobID, token string, d time.Duration, ifMatch string, create bool) (string, error) {
	body, err := json.Marshal(jobv1.Claim{JobID: jobID, Worker: p.cfg.WorkerID, Token: token, Until: p.now().Add(d).UTC()})
	if err != nil {
		return "", err
	}
	var etag string
	if create {
		etag, err = p.obj.Create(ctx, p.cfg.ResultsBucket, key, body)
	} else {
		etag, err = p.obj.Replace(ctx, p.cfg.ResultsBucket, key, ifMatch, body)
	}
	if err == nil && etag == "" {
		// Without an ETag the claim cannot be renewed or ended safely; S3
		// always sends one, so this is a store without conditional writes.
		return "", errNoETag
	}
	return etag, err
}

// errNoETag is a store that answered a PutObject without an ETag.
var errNoETag = errors.New("the object store returned no ETag: claims need S3's conditional writes (If-None-Match and If-Match)")

// readClaim reads a claim and its ETag. An unreadable body counts as an
// ended lease: a claim nobody can read must not hold a job forever.
func (p *Pipeline) readClaim(ctx context.Context, key string) (jobv1.Claim, string, error) {
	obj, err := p.obj.Get(ctx, p.cfg.ResultsBucket, key, 4<<10)
	if err != nil {
		return jobv1.Claim{}, "", err
	}
	var rec jobv1.Claim
	if obj.TooLarge || json.Unmarshal(obj.Body, &rec) != nil {
		rec = jobv1.Claim{}
	}
	return rec, obj.ETag, nil
}

// hold starts renewing a claim every third of its lease until it is
// dropped.
func (p *Pipeline) hold(ctx context.Context, log *slog.Logger, key, jobID, token, etag string) *heldClaim {
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c := &heldClaim{key: key, jobID: jobID, token: token, etag: etag, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(p.cfg.ClaimLease / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			if !p.renew(rctx, log, c) {
				return
			}
		}
	}()
	return c
}

// renew extends the lease, reporting whether to go on renewing. Each try
// is bounded by a third of the lease, so a stalled request cannot outlast
// the lease it is renewing; the next tick tries again.
func (p *Pipeline) renew(ctx context.Context, log *slog.Logger, c *heldClaim) bool {
	etag, _ := c.tag()
	wctx, cancel := context.WithTimeout(ctx, min(p.cfg.S3Timeout, p.cfg.ClaimLease/3))
	defer cancel()
	next, err := p.putClaim(wctx, c.key, c.jobID, c.token, p.cfg.ClaimLease, etag, false)
	if (errors.Is(err, errChanged) || errors.Is(err, errNotFound)) && ctx.Err() == nil {
		// Either another delivery took the job, or our own renewal landed
		// and its response was lost (the SDK's retry then got 412): the
		// claim's token tells which.
		if rec, tag, rerr := p.readClaim(wctx, c.key); rerr == nil && rec.Token == c.token {
			next, err = tag, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		c.etag = next
		return true
	case ctx.Err() != nil:
		return false
	case errors.Is(err, errChanged) || errors.Is(err, errNotFound):
		// Our lease ended before we could renew it (a stall longer than the
		// lease) and another delivery took the job. Both may now pay for the
		// model; the result write keeps one answer, and the other's cost
		// goes to metrics (see finish).
		c.lost = true
		log.Warn("claim lost: another delivery took over this job while it ran; the claim lease is too short for this worker's stalls",
			"lease", p.cfg.ClaimLease.String())
		return false
	default:
		// Transient: the next renewal may work, and the lease has two more
		// thirds to run.
		log.Warn("claim renewal failed; retrying", "error_code", awserr.Code(err))
		return true
	}
}

// drop stops renewing. When the job was given back (released is true) the
// lease is ended at once, so the next delivery need not wait it out;
// otherwise the claim stays: the result answers every later delivery.
func (p *Pipeline) drop(ctx context.Context, log *slog.Logger, c *heldClaim, released bool) {
	c.stop()
	<-c.done
	etag, lost := c.tag()
	if !released || lost {
		return
	}
	// A lease that ends now: the next delivery takes the claim over.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.S3Timeout)
	defer cancel()
	if _, err := p.putClaim(wctx, c.key, c.jobID, c.token, 0, etag, false); err != nil && !errors.Is(err, errChanged) && !errors.Is(err, errNotFound) {
		log.Warn("could not end the claim's lease; the next delivery waits until it ends", "error_code", awserr.Code(err),
			"lease", p.cfg.ClaimLease.String())
	}
}

// isClaimBusy reports whether err is a live claim held by another delivery.
func isClaimBusy(err error) (*claimBusy, bool) {
	var b *claimBusy
	return b, errors.As(err, &b)
}
