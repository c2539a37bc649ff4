package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/sethvargo/go-retry"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
)

// Limiter admits model calls. tokens is the call's expected quota
// reservation (estimated input + maxTokens). *limiter.Fixed satisfies it.
type Limiter interface {
	Acquire(ctx context.Context, model string, tokens int) (limiter.Permit, error)
}

var _ Limiter = (*limiter.Fixed)(nil)

// Deps are the pipeline's collaborators. Converser and Store are required.
type Deps struct {
	Converser Converser
	Store     Store
	// Limiter admits each model call. Default: no limit.
	Limiter Limiter
	// Metrics receives one EMF line per finished job. Default: os.Stdout.
	Metrics io.Writer
	// Logger receives structured logs. Default: slog.Default(), as the
	// worker's; tierq worker passes its JSON logger (internal/app.NewLogger).
	Logger *slog.Logger
	// Now is the clock for timings and metric timestamps. Default: time.Now.
	Now func() time.Time
	// Backoff returns a fresh schedule of waits between retries of one
	// model call; the pipeline stops it after Retry.MaxAttempts calls.
	// Default: exponential from Retry.Base with full jitter, capped at
	// Retry.Cap. Tests inject zero waits.
	Backoff func() retry.Backoff
	// WriteBackoff returns a fresh schedule of waits between attempts to
	// write one result. Default: exponential from 200ms with full jitter,
	// capped at 5s (within Config.ResultWriteTimeout). Tests inject zero
	// waits.
	WriteBackoff func() retry.Backoff
}

// Pipeline processes job messages. It is safe for concurrent use: the worker
// calls Process from many goroutines.
type Pipeline struct {
	cfg Config
	// model is Deps.Converser seen through the model port (bedrock.go).
	model model
	// obj is Deps.Store seen through the objects port (objects.go).
	obj     objects
	lim     Limiter
	log     *slog.Logger
	now     func() time.Time
	backoff func() retry.Backoff
	// writeBackoff spaces result write attempts.
	writeBackoff func() retry.Backoff
	emf          *emfWriter
	stats        counters
	// deniedLogged is set once a 403 on a result check has been logged.
	deniedLogged atomic.Bool
	// running holds the job IDs with a delivery running in this process;
	// the channel is closed when it ends.
	runningMu sync.Mutex
	running   map[string]chan struct{}
}

var _ worker.Processor = (*Pipeline)(nil)

// New checks cfg (after applying defaults) and deps, and returns a Pipeline.
func New(cfg Config, deps Deps) (*Pipeline, error) {
	cfg.ApplyDefaults()
	cfg.InputBuckets = slices.Clone(cfg.InputBuckets)
	errs := []error{cfg.Validate()}
	if deps.Converser == nil {
		errs = append(errs, errors.New("deps: Converser is required"))
	}
	if deps.Store == nil {
		errs = append(errs, errors.New("deps: Store is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("pipeline config:\n%w", err)
	}
	p := &Pipeline{
		cfg: cfg, model: bedrockModel{conv: deps.Converser, timeout: cfg.CallTimeout}, obj: s3Objects{s3: deps.Store}, lim: deps.Limiter,
		log: deps.Logger, now: deps.Now, backoff: deps.Backoff, writeBackoff: deps.WriteBackoff,
		emf: &emfWriter{w: deps.Metrics}, running: map[string]chan struct{}{},
	}
	if p.lim == nil {
		p.lim = unlimited{}
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.emf.w == nil {
		p.emf.w = os.Stdout
	}
	if p.backoff == nil {
		r := cfg.Retry
		p.backoff = func() retry.Backoff {
			return retry.WithFullJitter(retry.WithCappedDuration(r.Cap, retry.NewExponential(r.Base)))
		}
	}
	if p.writeBackoff == nil {
		p.writeBackoff = func() retry.Backoff {
			return retry.WithFullJitter(retry.WithCappedDuration(writeBackoffCap, retry.NewExponential(writeBackoffBase)))
		}
	}
	return p, nil
}

// The default result write schedule: S3's 5xx and 409s usually clear
// within a second or two.
const (
	writeBackoffBase = 200 * time.Millisecond
	writeBackoffCap  = 5 * time.Second
)

// unlimited is the Limiter used when none is given.
type unlimited struct{}

func (unlimited) Acquire(context.Context, string, int) (limiter.Permit, error) {
	return noPermit{}, nil
}

type noPermit struct{}

func (noPermit) Release(limiter.Outcome) {}

// job is one message's run: the result being built and the figures that go
// to metrics only.
type job struct {
	jobv1.Job
	r         *jobv1.Result
	facts     tiering.Facts
	m         jobMetrics
	modelTime time.Duration
	log       *slog.Logger
	// spill is set by converse when the job's latest model call moved to
	// its tier's fallback model; nil otherwise.
	spill *jobv1.Spillover
	// fallback is set by converse when the model refused an optional
	// feature of the latest call (a service tier, structured output) and
	// the call went again without it: what was left out and why.
	fallback string
	// throttledOn counts the latest call's throttled attempts per model.
	throttledOn map[string]int
	// answeredAt is when the latest call was answered.
	answeredAt time.Time
	// outSchema is an extract job's compiled schema, which the answer must
	// match; nil for other jobs.
	outSchema *jsonschema.Schema
}

// Process runs one message through the pipeline. See the package
// documentation for what its return values mean to the worker.
func (p *Pipeline) Process(ctx context.Context, m worker.Message) error {
	start := p.now()
	parsed, err := jobv1.ParseJob(m.Body)
	if err != nil && !errors.Is(err, jobv1.ErrInvalidJob) {
		// Without a usable job ID there is nowhere to write a result.
		p.stats.deadLettered.Add(1)
		p.log.Warn("message is not a job; dead-lettering it", "message_id", m.ID, "receive_count", m.ReceiveCount, "error", err)
		return worker.DeadLetter(fmt.Errorf("message %s is not a job: %w", m.ID, err))
	}
	j := &job{Job: parsed, r: p.newResult(parsed, m, start)}
	j.log = p.log.With("job_id", parsed.JobID, "message_id", m.ID)
	key := jobv1.ResultKey(p.cfg.ResultsPrefix, parsed.JobID)
	if err != nil {
		// ParseJob's messages are one line (FuzzParseJob holds it to that).
		j.failWith(fail(jobv1.CodeInvalidJob, err, "%v", err))
		// Every result has a claim beside it, which is what sends a later
		// delivery to look for the result (see claim.go).
		if err := p.markClaimed(ctx, parsed.JobID, start); err != nil {
			return p.release(j, err)
		}
		return p.finish(ctx, j, key)
	}
	// One delivery of a job at a time here; a second one waits for the
	// first and then finds its result (see claim.go).
	leave, waited, err := p.enter(ctx, parsed.JobID)
	if err != nil {
		return p.release(j, worker.ReleaseAfter(fmt.Errorf("wait for another delivery of job %s: %w", parsed.JobID, err), 0))
	}
	defer leave()
	if waited {
		j.log.Info("waited for another delivery of this job in this worker", "receive_count", m.ReceiveCount)
	}
	// The claim comes first: a job that was ever taken has a claim, so a
	// claim written now means a new job (no result to look for), and only a
	// claim that exists sends the delivery to look for the result. A
	// redelivered job whose result exists is acknowledged there, before any
	// model call: that is what keeps redeliveries from paying twice.
	// Deliveries running at the same time in other workers: the claim lets
	// one of them call the model.
	c, err := p.claim(ctx, j.log, parsed.JobID, key)
	if err != nil {
		if errors.Is(err, errDone) {
			p.stats.duplicates.Add(1)
			j.log.Info("already done; acknowledging redelivery", "receive_count", m.ReceiveCount)
			return nil
		}
		if b, ok := isClaimBusy(err); ok {
			return p.deferBusy(j, b)
		}
		return p.release(j, err)
	}
	// Unless a result is written, the job goes back and its lease ends at
	// once; deferred, so that a panic (which the worker turns into a
	// release) cannot leave a claim renewed for ever.
	handedBack := true
	defer func() { p.drop(ctx, j.log, c, handedBack) }()
	if err := p.run(ctx, j); err != nil {
		var f *failure
		if !errors.As(err, &f) {
			return p.release(j, err)
		}
		j.failWith(f)
	}
	if err := p.finish(ctx, j, key); err != nil {
		return err
	}
	handedBack = false
	return nil
}

// deferBusy releases a delivery of a job that another delivery is running,
// until that one's lease ends or for the release delay, whichever is
// sooner: by then its result is usually written, and the next delivery is
// acknowledged without a model call (a running job's lease is renewed, so
// waiting for its end could keep a copy queued for a whole lease after the
// job is done). If the other delivery died, its lease has ended and the
// next delivery takes over.
func (p *Pipeline) deferBusy(j *job, b *claimBusy) error {
	wait := max(b.until.Sub(p.now())+time.Second, time.Second)
	p.stats.deferred.Add(1)
	j.log.Info("job is running on another worker; releasing this delivery until that claim's lease ends",
		"claimed_by", b.worker, "retry_after", wait.String())
	return worker.ReleaseWithin(b, wait)
}

func (p *Pipeline) newResult(jb jobv1.Job, m worker.Message, start time.Time) *jobv1.Result {
	r := &jobv1.Result{
		Version:  jobv1.ResultVersion,
		JobID:    jb.JobID,
		Metadata: jb.Metadata,
		Worker:   jobv1.WorkerInfo{ID: p.cfg.WorkerID, Version: p.cfg.Version, ReceiveCount: m.ReceiveCount},
		Timings:  jobv1.Timings{StartedAt: start.UTC()},
	}
	// An invalid job's task may be anything; only a known one is echoed.
	switch jb.Task {
	case tiering.TaskSummarize, tiering.TaskClassify, tiering.TaskExtract, tiering.TaskCustom:
		r.Task = jb.Task
	}
	if !m.SentAt.IsZero() {
		r.Timings.EnqueuedAt = m.SentAt.UTC()
		r.Timings.QueueMs = max(start.Sub(m.SentAt).Milliseconds(), 0)
	}
	return r
}

func (j *job) failWith(f *failure) {
	j.r.Status = jobv1.StatusFailed
	j.r.Error = &jobv1.ErrorInfo{Code: f.code, Message: f.msg}
}

// run loads, classifies and calls the model, escalating as tiering says.
// It fills j.r; it returns a *failure for a failed result, any other error
// for a release.
func (p *Pipeline) run(ctx context.Context, j *job) error {
	text, err := p.loadDocument(ctx, j.log, j.Job)
	if err != nil {
		return err
	}
	tiers := p.cfg.Tiers
	j.facts = tiering.JobFacts(j.Job, text)
	d, err := tiers.Classify(j.facts)
	switch {
	case errors.Is(err, tiering.ErrTooLarge):
		return fail(jobv1.CodeTooLargeForTiers, err, "%v", err)
	case errors.Is(err, tiering.ErrUnknownTier), errors.Is(err, tiering.ErrUnknownTask):
		return fail(jobv1.CodeInvalidJob, err, "%v", err)
	case err != nil:
		return fail(jobv1.CodeTieringError, err, "%v", err)
	}
	if j.outSchema, err = j.OutputSchema(); err != nil {
		// ParseJob compiled this schema already; kept for jobs built in Go.
		return fail(jobv1.CodeInvalidJob, err, "%v", err)
	}
	tier, _ := tiers.Tier(d.Tier)
	r := j.r
	r.Tier, r.ModelID, r.TierRule, r.TierReason = tier.Name, tier.ModelID, d.Rule, d.Reason
	j.log.Debug("classified", "tier", tier.Name, "model_id", tier.ModelID, "tier_rule", d.Rule)

	for step := 0; ; step++ {
		c, err := p.call(ctx, j, tier, text)
		if err != nil {
			// A shutdown is nobody's failure: the job goes back whole, to a
			// worker that can finish the escalation.
			if step == 0 || ctx.Err() != nil {
				if step == 0 && j.spill != nil {
					// A failed result names the model that failed.
					r.ModelID, r.Spillover = j.spill.To, j.spill
				}
				return err
			}
			p.escalationFailed(j, tier, err)
			break
		}
		// Spillover describes the answer's call only: an escalation replaces
		// it, a failed escalation keeps it with the answer it came with.
		r.Tier, r.ModelID, r.Spillover = tier.Name, c.model, c.spill
		r.Output = &jobv1.Output{Text: c.text}
		r.StopReason = c.stopReason
		r.ServiceTier = c.record.ServiceTier
		r.Calls = append(r.Calls, c.record)
		r.Usage = r.Usage.Add(c.usage)
		r.Cost = r.Cost.Add(c.record.Cost)
		r.Guardrail = mergeGuardrail(r.Guardrail, c.guard)
		if c.guard != nil && c.guard.Action != jobv1.GuardrailNone {
			j.m.interventions++
		}
		if c.guard != nil && c.guard.Action == jobv1.GuardrailBlocked {
			// A block is the guardrail doing its job: a final answer, not an
			// error, and no other tier would be allowed to answer either.
			r.Status = jobv1.StatusBlocked
			return nil
		}
		next, ok := p.escalation(j, tier, c, step)
		if !ok {
			break
		}
		tier = next
	}
	r.Status = jobv1.StatusSucceeded
	if j.Task == tiering.TaskExtract {
		r.Output.JSON, _ = tiering.ExtractJSONObject(r.Output.Text)
	}
	if err := j.answerMismatch(r.Output.Text); err != nil {
		// Paid for, and kept in the result for whoever reads it, but not a
		// success: a consumer that trusts succeeded extract results to
		// match its schema must be able to.
		j.log.Info("extract answer does not match the job's schema", "tier", r.Tier, "escalations", len(r.Escalations))
		return fail(jobv1.CodeOutputSchemaMismatch, err, "%v", err)
	}
	return nil
}

// answerMismatch checks an extract answer against the job's schema: nil
// when the job has none or the answer matches. An answer that is not a JSON
// object is checked as it stands (after a code fence is removed), so the
// reason says it is not JSON.
func (j *job) answerMismatch(text string) error {
	if j.outSchema == nil {
		return nil
	}
	answer, ok := tiering.ExtractJSONObject(text)
	if !ok {
		answer = json.RawMessage(strings.TrimSpace(text))
	}
	return jobv1.ValidateAgainst(j.outSchema, answer)
}

// escalationFailed keeps the answer already paid for when the next tier
// cannot give a better one. Releasing the job would pay for the first tier
// again on the next delivery, and a failed result would throw away an answer
// that escalation only hoped to improve. j.r still holds that answer (its
// tier, model, output and stop reason); the escalation record says what went
// wrong, and usage and cost already count every call made.
func (p *Pipeline) escalationFailed(j *job, next tiering.Tier, err error) {
	esc := &j.r.Escalations[len(j.r.Escalations)-1]
	var f *failure
	var ex *exhaustedError
	switch {
	case errors.As(err, &f):
		esc.Failed = f.code + ": " + f.msg
	case errors.As(err, &ex):
		esc.Failed = fmt.Sprintf("%s after %d attempts", ex.code, ex.attempts)
	default:
		esc.Failed = err.Error()
	}
	model := next.ModelID
	if j.spill != nil {
		model = j.spill.To
	}
	attrs := []any{"tier", j.r.Tier, "next_tier", next.Name, "model_id", model, "failure", esc.Failed}
	if f != nil {
		// Permanent: the next tier is misconfigured (model access, a wrong
		// model ID) and every escalation will fail until someone fixes it.
		j.log.Error("escalation failed; keeping the answer from the previous tier", attrs...)
		return
	}
	j.log.Warn("escalation failed; keeping the answer from the previous tier", attrs...)
}

// escalation decides whether the answer from tier goes to the next tier and,
// if so, records the move.
func (p *Pipeline) escalation(j *job, tier tiering.Tier, c *callResult, step int) (tiering.Tier, bool) {
	tiers := p.cfg.Tiers
	ok, reason := tiers.ShouldEscalate(tier.Name, c.stopReason, j.Task, c.text, step)
	if !ok && c.stopReason != tiering.StopReasonMaxTokens && j.answerMismatch(c.text) != nil {
		// A JSON object, but not the one the job's schema asks for: a more
		// capable model follows a schema more reliably, once.
		ok, reason = tiers.ShouldEscalateMismatch(tier.Name, step)
	}
	if !ok {
		return tiering.Tier{}, false
	}
	next, _ := tiers.Next(tier.Name)
	// The next tier must take the document with room for its answer, by the
	// same rule that chose the first tier.
	f := j.facts
	f.Override, f.Hint = next.Name, ""
	if d, err := tiers.Classify(f); err != nil || d.Tier != next.Name {
		j.log.Info("escalation skipped: the document does not fit the next tier", "tier", tier.Name, "next_tier", next.Name)
		return tiering.Tier{}, false
	}
	// A longer answer cannot come from a tier held to the same limit by the
	// job's own max_output_tokens.
	if c.stopReason == tiering.StopReasonMaxTokens && maxTokens(j.Job, next) <= maxTokens(j.Job, tier) {
		j.log.Info("escalation skipped: the job's max_output_tokens caps the next tier too", "tier", tier.Name, "next_tier", next.Name)
		return tiering.Tier{}, false
	}
	j.r.Escalations = append(j.r.Escalations, jobv1.Escalation{FromTier: tier.Name, ToTier: next.Name, Reason: reason})
	p.stats.escalations.Add(1)
	j.log.Info("escalating", "tier", tier.Name, "next_tier", next.Name, "reason", reason)
	return next, true
}

// callResult is one successful model call, read.
type callResult struct {
	// model answered: the tier's model, or its fallback after a spillover.
	model      string
	spill      *jobv1.Spillover
	text       string
	stopReason string
	usage      tiering.Usage
	guard      *jobv1.GuardrailOutcome
	// record is the call for the result's calls, priced.
	record jobv1.Call
}

// call makes one model call for the job on tier, with retries.
func (p *Pipeline) call(ctx context.Context, j *job, tier tiering.Tier, doc string) (*callResult, error) {
	req := buildRequest(j.Job, tier, doc)
	a, err := p.converse(ctx, j, tier, req)
	if err != nil {
		return nil, err
	}
	c := &callResult{model: tier.ModelID, spill: j.spill, text: a.text, stopReason: a.stopReason, guard: a.guard, usage: a.usage}
	if c.spill != nil {
		c.model = c.spill.To
	}
	// Priced at what served it: the model that answered (a fallback has
	// its own prices) and the service tier Bedrock reports.
	prices, priced := tier.CallPrices(c.model, a.servedTier)
	if !priced {
		j.log.Warn("call served at a service tier the tiers file does not price; priced at default", "tier", tier.Name,
			"model_id", c.model, "service_tier", a.servedTier)
	}
	c.record = jobv1.Call{At: j.answeredAt.UTC(), Tier: tier.Name, ModelID: c.model, ServiceTier: a.servedTier,
		RequestedServiceTier: tier.RequestedServiceTier(), StructuredOutput: a.structured, Fallback: j.fallback,
		Throttles: j.throttledOn[c.model], Usage: a.usage, Cost: prices.Cost(a.usage)}
	return c, nil
}

// dropRefused takes out of a refused request the optional features the
// refusal names (by Bedrock's message, which is all it says), or all of
// them when it names none.
func dropRefused(req request, msg string) (request, []string) {
	lower := strings.ToLower(msg)
	names := map[string][]string{
		featureServiceTier: {"service tier", "servicetier", "service_tier"},
		featureStructured:  {"outputconfig", "output config", "textformat", "structured output", "json_schema", "schema"},
	}
	var named []string
	for _, f := range req.features() {
		if slices.ContainsFunc(names[f], func(k string) bool { return strings.Contains(lower, k) }) {
			named = append(named, f)
		}
	}
	if len(named) == 0 {
		named = req.features()
	}
	for _, f := range named {
		req = req.withoutFeature(f)
	}
	return req, named
}

// converse calls the model, retrying transient errors in-process with
// backoff. Each attempt holds a limiter permit only while the call runs, so
// a backing-off job does not keep capacity from others, and each attempt is
// bounded by Config.CallTimeout, so a stalled connection cannot hold the job
// for as long as the worker's heartbeat keeps its message invisible.
//
// What follows a failed attempt (wait and retry, spill over to the tier's
// fallback model, or release) is decided by callPolicy.next, a pure function
// of what has happened so far (callpolicy.go); converse carries it out:
// waits (the limiter's Backoff after a throttle, then for a permit) while the
// worker's heartbeat keeps the message invisible, switches the request to
// the fallback model, and records the move in j.spill.
func (p *Pipeline) converse(ctx context.Context, j *job, tier tiering.Tier, req request) (modelAnswer, error) {
	pol := callPolicy{maxAttempts: p.cfg.Retry.MaxAttempts, maxSnooze: p.cfg.Retry.MaxSnooze,
		fallback: tier.HasFallback(), spillAfter: tier.SpilloverDelay()}
	model := tier.ModelID
	j.spill, j.fallback, j.throttledOn = nil, "", map[string]int{}
	errWaits, snoozeWaits := p.backoff(), p.backoff()
	var st callState
	for calls := 1; ; calls++ {
		permit, err := p.lim.Acquire(ctx, model, req.reserve)
		if err != nil {
			return modelAnswer{}, worker.ReleaseAfter(fmt.Errorf("call %s: wait for a permit: %w", model, err), 0)
		}
		t0 := p.now()
		out, err := p.model.Call(ctx, req, tier.Guardrail)
		t1 := p.now()
		j.modelTime += t1.Sub(t0)
		j.r.Attempts++
		p.stats.attempts.Add(1)
		if err == nil {
			permit.Release(limiter.Success)
			j.answeredAt = t1
			return out, nil
		}
		last := modelFailure(err)
		permit.Release(last.outcome())
		switch {
		case ctx.Err() != nil:
			return modelAnswer{}, worker.ReleaseAfter(fmt.Errorf("call %s: stopped: %w", model, context.Cause(ctx)), 0)
		case last.kind == kindPermanent && last.code == jobv1.CodeModelRejected && j.fallback == "" && len(req.features()) > 0:
			// A model that does not take a service tier or structured
			// outputs says so with a ValidationException. The job does not
			// need either: it goes again at once without what was refused,
			// once, and the result says so.
			var dropped []string
			req, dropped = dropRefused(req, last.msg)
			j.fallback = fmt.Sprintf("%s refused, sent without: %s", strings.Join(dropped, " and "), last.msg)
			j.log.Warn("model refused an optional request feature; calling again without it", "tier", tier.Name,
				"model_id", model, "dropped", strings.Join(dropped, ", "), "error_code", last.code)
			continue
		case last.kind == kindPermanent:
			return modelAnswer{}, &failure{code: last.code, msg: last.msg, err: err}
		case !last.transient():
			return modelAnswer{}, worker.Release(fmt.Errorf("call %s: %w", model, err))
		}
		throttled := last.kind == kindThrottle
		if throttled {
			j.throttledOn[model]++
			j.m.throttles++
			p.stats.throttles.Add(1)
		}
		attrs := []any{"tier", tier.Name, "model_id", model, "attempt", calls, "error_code", last.code}
		var step callStep
		var wait time.Duration
		now := p.now()
		st, step, wait = pol.next(st, throttled, now,
			func() time.Duration { return p.snoozeWait(model, snoozeWaits) }, errWaits.Next)
		switch {
		case step == stepReleaseSnoozed:
			return modelAnswer{}, worker.Release(&exhaustedError{model: model, code: last.code, attempts: calls,
				snoozed: p.cfg.Retry.MaxSnooze, err: err})
		case step == stepSpill:
			throttledFor := now.Sub(st.firstThrottle)
			j.spill = &jobv1.Spillover{From: model, To: tier.FallbackModelID, After: throttledFor.Milliseconds()}
			// The throttled attempts stay on the model that refused them.
			j.r.Calls = append(j.r.Calls, jobv1.Call{At: now.UTC(), Tier: tier.Name, ModelID: model, Throttles: j.throttledOn[model]})
			j.log.Info("model throttled; spilling over to the tier's fallback model", "tier", tier.Name,
				"from", model, "to", tier.FallbackModelID, "throttled_for", throttledFor.String(), "throttles", st.throttles)
			model, req = tier.FallbackModelID, req.withModel(tier.FallbackModelID)
			// The fallback's first throttle should not wait as long as the
			// tier model's last one.
			snoozeWaits = p.backoff()
		case throttled:
			j.log.Debug("model throttled; snoozing", append(attrs, "throttles", st.throttles, "wait", wait.String())...)
		case last.kind == kindCredentials:
			// Every job fails this way until someone fixes the role or the
			// clock; the AWS message is left out, the code says enough.
			j.log.Error("model call failed: "+credentialHint, attrs...)
		default:
			j.log.Warn("model call failed; transient", append(attrs, "max_attempts", pol.maxAttempts)...)
		}
		if step == stepReleaseExhausted {
			return modelAnswer{}, worker.Release(&exhaustedError{model: model, code: last.code, attempts: calls, err: err})
		}
		if !sleep(ctx, wait) {
			return modelAnswer{}, worker.ReleaseAfter(fmt.Errorf("call %s: stopped: %w", model, context.Cause(ctx)), 0)
		}
	}
}

// snoozeWait is how long to wait after a throttle before asking for a permit
// again: the limiter's own suggestion when it has one (it knows how often the
// model is dropping calls), else the next jittered backoff.
func (p *Pipeline) snoozeWait(model string, b retry.Backoff) time.Duration {
	if h, ok := p.lim.(interface {
		Backoff(model string) time.Duration
	}); ok {
		return h.Backoff(model)
	}
	d, _ := b.Next()
	return d
}

// sleep waits d or until ctx is done, reporting whether it waited in full.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// guardrailName names a tier's guardrail in messages.
func guardrailName(g tiering.GuardrailRef) string {
	if !g.Enabled() {
		return "(none configured)"
	}
	return g.ID + " version " + g.Version
}

// exhaustedError is a model that stayed unavailable for every in-process
// attempt, or throttled beyond the snooze budget. It wraps
// ErrRetriesExhausted and the last error.
type exhaustedError struct {
	model    string
	code     string // the last error's AWS code, "timeout" or "network"
	attempts int
	snoozed  time.Duration // set when throttling outlasted Retry.MaxSnooze
	err      error
}

func (e *exhaustedError) Error() string {
	if e.snoozed > 0 {
		return fmt.Sprintf("call %s: %v: still throttled after %s of snoozing (%d calls): %v",
			e.model, ErrRetriesExhausted, e.snoozed, e.attempts, e.err)
	}
	return fmt.Sprintf("call %s: %v after %d attempts: %v", e.model, ErrRetriesExhausted, e.attempts, e.err)
}

func (e *exhaustedError) Unwrap() []error { return []error{ErrRetriesExhausted, e.err} }

// release logs a job that goes back to the queue and makes sure the error
// is a release for the worker (after its release delay, unless the error
// already asks for another).
func (p *Pipeline) release(j *job, err error) error {
	var rel *worker.Released
	if !errors.As(err, &rel) {
		err = worker.Release(err)
		errors.As(err, &rel)
	}
	p.stats.released.Add(1)
	if u := j.r.Usage; u.InputTokens+u.OutputTokens+u.CacheReadTokens+u.CacheWriteTokens > 0 || j.r.Cost.TotalUSD > 0 {
		// Model calls were answered and paid for (an answer whose result
		// could not be written, or a first tier's answer before a shutdown
		// cut its escalation), and no result will say so: the next delivery
		// starts again. A metrics line records them. Calls that failed are
		// not billed and stay out, so throttling does not add a line per
		// release.
		p.emitUnrecorded(j, jobv1.StatusReleased)
	}
	j.log.Warn("releasing job for a later retry", "tier", j.r.Tier, "model_id", j.r.ModelID,
		"attempts", j.r.Attempts, "throttles", j.m.throttles, "retry_after", releaseDelayText(rel), "error", err)
	return err
}

// finish stamps the timings, writes the result and, if this worker's write
// won, emits the job's metrics.
func (p *Pipeline) finish(ctx context.Context, j *job, key string) error {
	r := j.r
	fin := p.now().UTC()
	r.Timings.FinishedAt = fin
	r.Timings.TotalMs = max(fin.Sub(r.Timings.StartedAt).Milliseconds(), 0)
	r.Timings.ModelMs = j.modelTime.Milliseconds()
	written, err := p.writeResult(ctx, j.log, key, r)
	if err != nil {
		return p.release(j, err)
	}
	if !written {
		p.stats.duplicates.Add(1)
		if r.Attempts == 0 {
			j.log.Info("result already written by another delivery; acknowledging", "status", r.Status)
			return nil
		}
		// This delivery paid for model calls, but another delivery's result
		// was kept (possible only when a claim's lease ran out under a
		// stalled worker). The money was spent all the same, so it goes to
		// metrics with status superseded: sizing and dashboards see every
		// call, and the result stays the other delivery's.
		p.stats.superseded.Add(1)
		p.emitUnrecorded(j, jobv1.StatusSuperseded)
		j.log.Warn("result already written by another delivery; this delivery's model calls are recorded in metrics only",
			"attempts", r.Attempts, "cost_usd", r.Cost.TotalUSD, "status", r.Status)
		return nil
	}
	p.emitMetrics(j, r, r.Status)
	p.stats.count(r.Status)
	attrs := []any{"status", r.Status, "tier", r.Tier, "model_id", r.ModelID, "attempts", r.Attempts,
		"throttles", j.m.throttles, "escalations", len(r.Escalations), "cost_usd", r.Cost.TotalUSD, "total_ms", r.Timings.TotalMs}
	if r.Error != nil {
		attrs = append(attrs, "error_code", r.Error.Code)
	}
	if r.Guardrail != nil {
		attrs = append(attrs, "guardrail_action", r.Guardrail.Action)
	}
	j.log.Info("job finished", attrs...)
	return nil
}

// emitUnrecorded writes the metrics line of a delivery whose model calls
// no result records, with status superseded or released, so that every
// call made appears in a result or a metric.
func (p *Pipeline) emitUnrecorded(j *job, status string) {
	r := *j.r
	if r.Timings.FinishedAt.IsZero() {
		fin := p.now().UTC()
		r.Timings.FinishedAt = fin
		r.Timings.TotalMs = max(fin.Sub(r.Timings.StartedAt).Milliseconds(), 0)
		r.Timings.ModelMs = j.modelTime.Milliseconds()
	}
	p.emitMetrics(j, &r, status)
}

// releaseDelayText says in a log line when a released job comes back: a
// duration, or the worker's release delay.
func releaseDelayText(r *worker.Released) string {
	const never = time.Duration(math.MaxInt64)
	switch d, within := r.Delay(-1), r.Delay(never); {
	case d >= 0:
		return d.String()
	case within != never:
		return "at most " + within.String()
	}
	return "the release delay"
}

// Stats are counters since the pipeline was created.
type Stats struct {
	Succeeded, Failed, Blocked int64
	// Duplicates are deliveries of jobs that already had a result.
	Duplicates int64
	// DeadLettered are messages that were not jobs.
	DeadLettered int64
	// Released are deliveries given back to the queue (transient trouble).
	Released int64
	// Deferred are deliveries released because another delivery of the same
	// job held its claim; Superseded are deliveries that paid for model
	// calls but whose result lost to another delivery's (metrics only).
	Deferred, Superseded int64
	// Attempts are model calls; Throttles those refused for capacity.
	Attempts, Throttles int64
	Escalations         int64
}

type counters struct {
	succeeded, failed, blocked, duplicates, deadLettered, released, attempts, throttles, escalations atomic.Int64
	deferred, superseded                                                                             atomic.Int64
}

func (c *counters) count(status string) {
	switch status {
	case jobv1.StatusSucceeded:
		c.succeeded.Add(1)
	case jobv1.StatusFailed:
		c.failed.Add(1)
	case jobv1.StatusBlocked:
		c.blocked.Add(1)
	}
}

// Stats returns the counters.
func (p *Pipeline) Stats() Stats {
	c := &p.stats
	return Stats{
		Succeeded: c.succeeded.Load(), Failed: c.failed.Load(), Blocked: c.blocked.Load(),
		Duplicates: c.duplicates.Load(), DeadLettered: c.deadLettered.Load(), Released: c.released.Load(),
		Attempts: c.attempts.Load(), Throttles: c.throttles.Load(), Escalations: c.escalations.Load(),
		Deferred: c.deferred.Load(), Superseded: c.superseded.Load(),
	}
}
