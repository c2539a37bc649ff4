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

// emfLine is one job's line. Field order is the JSON order: metadata,
// dimensions, metrics, then properties (searchable in Logs Insights, not
// metrics).
type emfLine struct {
	AWS                    emfMeta `json:"_aws"`
	Tier                   string  `json:"Tier"`
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
				Dimensions: [][]string{{"Tier", "ModelId"}},
				Metrics:    emfMetrics,
			}},
		},
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
