package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/tiering"
)

// noTier is the Tier and ModelId dimension value of a job that failed
// before a tier was chosen, so its metrics still land in one series.
const noTier = "none"

// emfWriter writes one CloudWatch Embedded Metric Format line per finished
// job. Lines are written whole under a mutex, because concurrent jobs share
// one writer (stdout on ECS, where the awslogs driver turns each line into a
// log event that CloudWatch reads metrics from).
type emfWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// emfMetrics are the metric definitions, the same on every line. Only Tier and
// ModelId are dimensions: a dimension per job or tenant would create a metric
// series per value, which CloudWatch bills and cannot aggregate.
var emfMetrics = []emfMetric{
	{"InputTokens", "Count"},
	{"OutputTokens", "Count"},
	{"CostUSD", "None"},
	{"LatencyMs", "Milliseconds"},
	{"Throttles", "Count"},
	{"Attempts", "Count"},
	{"GuardrailInterventions", "Count"},
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// Kinds of tierq's EMF lines, in their Kind property.
const (
	emfKindJob  = "job"
	emfKindCall = "call"
)

// emfLine is one job's line. Field order is the JSON order: metadata,
// dimensions, metrics, then properties (searchable in Logs Insights, not
// metrics). Its tokens and cost are the job's totals over every call, under
// the Tier dimension; per-model figures are in the call lines.
type emfLine struct {
	AWS  emfMeta `json:"_aws"`
	Kind string  `json:"Kind"`
	Tier string  `json:"Tier"`
	// ModelID is the model of the answer (a property, not a dimension).
	ModelID                string  `json:"ModelId"`
	InputTokens            int     `json:"InputTokens"`
	OutputTokens           int     `json:"OutputTokens"`
	CostUSD                float64 `json:"CostUSD"`
	LatencyMs              int64   `json:"LatencyMs"`
	Throttles              int     `json:"Throttles"`
	Attempts               int     `json:"Attempts"`
	GuardrailInterventions int     `json:"GuardrailInterventions"`
	JobID                  string  `json:"JobId"`
	Status                 string  `json:"Status"`
	Tenant                 string  `json:"Tenant"`
}

// jobMetrics are the per-job figures that are not in the result.
type jobMetrics struct {
	throttles     int
	interventions int
}

// newEMFLine builds a job's metrics from its result. LatencyMs is the time
// spent in model calls (Timings.ModelMs): with Tier and ModelId as
// dimensions it measures the model, not the queue or S3.
func newEMFLine(namespace string, r *jobv1.Result, m jobMetrics) emfLine {
	tier, model := r.Tier, r.ModelID
	if tier == "" {
		tier = noTier
	}
	if model == "" {
		model = noTier
	}
	return emfLine{
		AWS: emfMeta{
			Timestamp: r.Timings.FinishedAt.UnixMilli(),
			CloudWatchMetrics: []emfDirective{{
				Namespace:  namespace,
				Dimensions: [][]string{{"Tier"}},
				Metrics:    emfMetrics,
			}},
		},
		Kind:                   emfKindJob,
		Tier:                   tier,
		ModelID:                model,
		InputTokens:            r.Usage.InputTokens,
		OutputTokens:           r.Usage.OutputTokens,
		CostUSD:                tiering.RoundUSD(r.Cost.TotalUSD),
		LatencyMs:              r.Timings.ModelMs,
		Throttles:              m.throttles,
		Attempts:               r.Attempts,
		GuardrailInterventions: m.interventions,
		JobID:                  r.JobID,
		Status:                 r.Status,
		Tenant:                 r.Metadata["tenant"],
	}
}

// emfCallMetrics are the call lines' metrics: what each model spent, under
// ModelId and ModelId+ServiceTier, so per-model sums and percentiles are
// right however jobs escalate or spill over.
var emfCallMetrics = []emfMetric{
	{"InputTokens", "Count"},
	{"OutputTokens", "Count"},
	{"CacheReadInputTokens", "Count"},
	{"CacheWriteInputTokens", "Count"},
	{"CostUSD", "None"},
	{"Throttles", "Count"},
}

// emfCallLine is one model call of a job: an answered call, or the
// throttled attempts on a tier's model before the call spilled over (no
// ServiceTier then, and no tokens).
type emfCallLine struct {
	AWS                   emfMeta `json:"_aws"`
	Kind                  string  `json:"Kind"`
	ModelID               string  `json:"ModelId"`
	ServiceTier           string  `json:"ServiceTier,omitempty"`
	InputTokens           int     `json:"InputTokens"`
	OutputTokens          int     `json:"OutputTokens"`
	CacheReadInputTokens  int     `json:"CacheReadInputTokens"`
	CacheWriteInputTokens int     `json:"CacheWriteInputTokens"`
	CostUSD               float64 `json:"CostUSD"`
	Throttles             int     `json:"Throttles"`
	Tier                  string  `json:"Tier"`
	JobID                 string  `json:"JobId"`
	Status                string  `json:"Status"`
	Tenant                string  `json:"Tenant"`
}

func newEMFCallLine(namespace string, r *jobv1.Result, c jobv1.Call, status string) emfCallLine {
	dims := [][]string{{"ModelId"}, {"ModelId", "ServiceTier"}}
	if c.ServiceTier == "" {
		dims = dims[:1]
	}
	return emfCallLine{
		AWS: emfMeta{Timestamp: c.At.UnixMilli(), CloudWatchMetrics: []emfDirective{{
			Namespace: namespace, Dimensions: dims, Metrics: emfCallMetrics}}},
		Kind: emfKindCall, ModelID: c.ModelID, ServiceTier: c.ServiceTier,
		InputTokens: c.Usage.InputTokens, OutputTokens: c.Usage.OutputTokens,
		CacheReadInputTokens: c.Usage.CacheReadTokens, CacheWriteInputTokens: c.Usage.CacheWriteTokens,
		CostUSD: tiering.RoundUSD(c.Cost.TotalUSD), Throttles: c.Throttles,
		Tier: c.Tier, JobID: r.JobID, Status: status, Tenant: r.Metadata["tenant"],
	}
}

// emitMetrics writes a job's call lines, then its job line, under status.
// A failed write loses lines, not the job.
func (p *Pipeline) emitMetrics(j *job, r *jobv1.Result, status string) {
	var errs []error
	for _, c := range r.Calls {
		errs = append(errs, p.emf.writeJSON(newEMFCallLine(p.cfg.MetricsNamespace, r, c, status), "a call of job "+r.JobID))
	}
	line := newEMFLine(p.cfg.MetricsNamespace, r, j.m)
	line.Status = status
	errs = append(errs, p.emf.write(line))
	if err := errors.Join(errs...); err != nil {
		j.log.Error("metrics line lost", "error", err)
	}
}

// write emits one line. A failed write loses one job's metrics line, not the
// job: the result in S3 is the authoritative record.
func (e *emfWriter) write(l emfLine) error {
	return e.writeJSON(l, "job "+l.JobID)
}

func (e *emfWriter) writeJSON(v any, what string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode metrics of %s: %w", what, err)
	}
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("write metrics of %s: %w", what, err)
	}
	return nil
}

// limiterMetrics describe a model's limiter state. ModelId is the only
// dimension: the limit is per model, whatever tier sends to it.
var limiterMetrics = []emfMetric{
	{"ConcurrencyLimit", "Count"},
	{"InFlight", "Count"},
	{"Waiting", "Count"},
	{"TokenBudget", "Count"},
	{"TokensInFlight", "Count"},
}

type limiterLine struct {
	AWS              emfMeta `json:"_aws"`
	ModelID          string  `json:"ModelId"`
	ConcurrencyLimit int     `json:"ConcurrencyLimit"`
	InFlight         int     `json:"InFlight"`
	Waiting          int     `json:"Waiting"`
	TokenBudget      int     `json:"TokenBudget"`
	TokensInFlight   int     `json:"TokensInFlight"`
}

// EmitLimiterStates writes one EMF line per model with its limiter's state,
// into the same stream as the jobs' lines. The worker calls it once a minute
// so operators can graph the adaptive limit against throttles.
func (p *Pipeline) EmitLimiterStates(states []limiter.State) error {
	ts := p.now().UnixMilli()
	var errs []error
	for _, st := range states {
		l := limiterLine{
			AWS: emfMeta{Timestamp: ts, CloudWatchMetrics: []emfDirective{{
				Namespace: p.cfg.MetricsNamespace, Dimensions: [][]string{{"ModelId"}}, Metrics: limiterMetrics}}},
			ModelID: st.Model, ConcurrencyLimit: st.Limit, InFlight: st.InFlight, Waiting: st.Waiting,
			TokenBudget: st.TokenBudget, TokensInFlight: st.TokensInFlight,
		}
		errs = append(errs, p.emf.writeJSON(l, "limiter of "+st.Model))
	}
	return errors.Join(errs...)
}
