package sizing

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tierq/tierq/tiering"
)

// Source yields a workload's usage as per-minute series per model. Each
// source (EMF files, result objects, CloudWatch) is one implementation; the
// analysis does not know which it got.
type Source interface {
	Series(ctx context.Context) (*Data, error)
}

// Compile-time checks that every source satisfies Source.
var (
	_ Source = (*EMFSource)(nil)
	_ Source = (*S3Results)(nil)
	_ Source = (*DirResults)(nil)
	_ Source = (*CloudWatchSource)(nil)
)

// Data is what a source read: every model's minutes over one window, and the
// jobs behind them when the source has per-job records.
type Data struct {
	// Source names where the data came from: "emf", "results" or
	// "cloudwatch", and Inputs what was read (files, s3://bucket/prefix).
	Source string
	Inputs []string
	// CostBasis says in a sentence how the minutes' costs were found, for
	// the report: priced from tokens, or as recorded in results.
	CostBasis string
	// Start and End bound the window, whole minutes in UTC, End exclusive.
	// For files it runs from the first record's minute to the last's; for
	// CloudWatch it is the requested window, quiet minutes included.
	Start, End time.Time
	// Models are sorted by model ID. Each has one Minute per window minute.
	Models []*ModelSeries
	// Totals sum the jobs per tier and tenant, for the cost tables; sorted
	// by tier, then tenant. CloudWatch has no per-job records, so none.
	// Jobs are summed as they are read: a month of jobs need not fit in
	// memory.
	Totals []JobTotals
	// Warnings are problems that did not stop the read (skipped lines,
	// coarse CloudWatch data).
	Warnings []string
	// RecordNoun names one record of the source in edge warnings ("job
	// line", "result"); empty for CloudWatch, whose minutes are counted.
	RecordNoun string

	// activity counts records per minute of the window, ascending, for
	// the edge checks: job lines or results for files, minutes with
	// invocations for CloudWatch.
	activity []active
}

// active is a minute with records in it.
type active struct {
	minute int64 // unix minute
	n      int
}

// Minutes is the number of minutes in the window.
func (d *Data) Minutes() int { return int(d.End.Sub(d.Start) / time.Minute) }

// ModelSeries is one model's usage, minute by minute.
type ModelSeries struct {
	ModelID string
	// Minutes[i] is the minute starting at Data.Start + i minutes.
	Minutes []Minute
	// Priced is false when the tiers file has no on-demand price for the
	// model: its CostUSD figures are then zero, not a cost.
	Priced bool
	// ThrottlesKnown is false for results, which do not record throttles:
	// zero throttled minutes then means "unknown", not "none".
	ThrottlesKnown bool
	// EstimatedTPMKnown is true when CloudWatch returned
	// EstimatedTPMQuotaUsage for the model.
	EstimatedTPMKnown bool
	// CoarseMinutes counts minutes spread evenly from 5-minute or hourly
	// CloudWatch data, which hides peaks shorter than the period.
	CoarseMinutes int
	// CallRecords and JobRecords say what the model's requests are: calls
	// (per-call records), finished jobs (older records), or, with neither,
	// CloudWatch invocations.
	CallRecords bool
	JobRecords  bool
}

// Minute is one minute of one model's usage. Figures are float64 because
// CloudWatch sums are floats and coarse data is spread over its minutes.
type Minute struct {
	InputTokens  float64 `json:"input_tokens"`
	OutputTokens float64 `json:"output_tokens"`
	// CacheWriteTokens are prompt-cache writes, which count against the
	// TPM quota and a Reserved input reservation as input tokens do. Only
	// per-call records and results carry them; old EMF job lines and
	// CloudWatch do not.
	CacheWriteTokens float64 `json:"cache_write_tokens,omitempty"`
	// Requests are model invocations: answered calls (per-call records),
	// CloudWatch Invocations, or finished jobs (records written before
	// per-call attribution, where an escalated job counts once).
	Requests  float64 `json:"requests"`
	Throttles float64 `json:"throttles"`
	// CostUSD is the on-demand model cost: input, output and cache tokens,
	// without guardrail charges, which provisioned throughput does not
	// replace.
	CostUSD float64 `json:"cost_usd"`
	// EstimatedTPM is CloudWatch's EstimatedTPMQuotaUsage, where present.
	EstimatedTPM float64 `json:"estimated_tpm,omitempty"`
}

// Tokens returns input plus output tokens.
func (m Minute) Tokens() float64 { return m.InputTokens + m.OutputTokens }

// QuotaInput returns the input side of quota and Reserved-tier use: input
// tokens plus cache writes (cache reads do not count).
func (m Minute) QuotaInput() float64 { return m.InputTokens + m.CacheWriteTokens }

func (m *Minute) add(o Minute) {
	m.InputTokens += o.InputTokens
	m.OutputTokens += o.OutputTokens
	m.CacheWriteTokens += o.CacheWriteTokens
	m.Requests += o.Requests
	m.Throttles += o.Throttles
	m.CostUSD += o.CostUSD
	m.EstimatedTPM += o.EstimatedTPM
}

func (m Minute) scale(f float64) Minute {
	return Minute{
		InputTokens: m.InputTokens * f, OutputTokens: m.OutputTokens * f, CacheWriteTokens: m.CacheWriteTokens * f, Requests: m.Requests * f,
		Throttles: m.Throttles * f, CostUSD: m.CostUSD * f, EstimatedTPM: m.EstimatedTPM * f,
	}
}

// job is one finished job as a source reads it.
type job struct {
	Time    time.Time
	Tier    string
	Tenant  string
	ModelID string
	// InputTokens and OutputTokens add up every model call of the job.
	InputTokens  int64
	OutputTokens int64
	// ModelCostUSD is on the same basis as Minute.CostUSD; Priced is false
	// when no price was found for the model.
	ModelCostUSD float64
	Priced       bool
	// RecordedCostUSD is the worker's own total for the job, guardrail
	// charges included (EMF CostUSD, result cost.total_usd).
	RecordedCostUSD float64
}

// JobTotals sum the jobs of one tier and tenant.
type JobTotals struct {
	Tier   string `json:"tier"`
	Tenant string `json:"tenant"`
	Jobs   int    `json:"jobs"`
	// InputTokens and OutputTokens add up every model call of the jobs.
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// ModelCostUSD is on the same basis as Minute.CostUSD; Unpriced counts
	// jobs whose model had no price (and so add nothing to it).
	ModelCostUSD float64 `json:"model_cost_usd"`
	Unpriced     int     `json:"unpriced_jobs,omitempty"`
	// RecordedCostUSD is the workers' own total, guardrail charges included
	// (EMF CostUSD, result cost.total_usd).
	RecordedCostUSD float64 `json:"recorded_cost_usd"`
}

func (t *JobTotals) add(j job) {
	t.Jobs++
	t.addCall(j)
}

// addCall adds one model call of a job counted elsewhere: its tokens and
// costs, not a job.
func (t *JobTotals) addCall(c job) {
	t.InputTokens += c.InputTokens
	t.OutputTokens += c.OutputTokens
	t.ModelCostUSD += c.ModelCostUSD
	if !c.Priced {
		t.Unpriced++
	}
	t.RecordedCostUSD += c.RecordedCostUSD
}

// noModel is the Tier and ModelId the pipeline writes for a job that failed
// before a tier was chosen.
const noModel = "none"

// builder collects timestamped usage and densifies it into Data.
type builder struct {
	minutes map[string]map[int64]Minute // model → unix minute → usage
	models  map[string]*ModelSeries     // flags per model
	totals  map[[2]string]*JobTotals    // by tier and tenant
	records map[int64]int               // job records per unix minute
	first   int64                       // unix minutes; valid when seen
	last    int64
	seen    bool
}

func newBuilder() *builder {
	return &builder{minutes: map[string]map[int64]Minute{}, models: map[string]*ModelSeries{}, totals: map[[2]string]*JobTotals{}, records: map[int64]int{}}
}

// model returns the flags of a model, creating them priced and with known
// throttles; sources clear what they cannot vouch for.
func (b *builder) model(id string) *ModelSeries {
	s, ok := b.models[id]
	if !ok {
		s = &ModelSeries{ModelID: id, Priced: true, ThrottlesKnown: true}
		b.models[id] = s
		b.minutes[id] = map[int64]Minute{}
	}
	return s
}

func unixMinute(t time.Time) int64 { return int64(math.Floor(float64(t.Unix()) / 60)) }

// touch widens the window to include t.
func (b *builder) touch(t time.Time) {
	m := unixMinute(t)
	if !b.seen || m < b.first {
		b.first = m
	}
	if !b.seen || m > b.last {
		b.last = m
	}
	b.seen = true
}

// add records usage of a model in the minute holding t.
func (b *builder) add(model string, t time.Time, m Minute) {
	b.model(model)
	b.touch(t)
	k := unixMinute(t)
	cur := b.minutes[model][k]
	cur.add(m)
	b.minutes[model][k] = cur
}

func (b *builder) job(j job) {
	b.touch(j.Time)
	b.records[unixMinute(j.Time)]++
	b.total(j.Tier, j.Tenant).add(j)
}

// call adds a model call's tokens and costs to its tier and tenant's
// totals; the job it belongs to is counted by job.
func (b *builder) call(c job) {
	b.touch(c.Time)
	b.total(c.Tier, c.Tenant).addCall(c)
}

func (b *builder) total(tier, tenant string) *JobTotals {
	k := [2]string{tier, tenant}
	t, ok := b.totals[k]
	if !ok {
		t = &JobTotals{Tier: tier, Tenant: tenant}
		b.totals[k] = t
	}
	return t
}

// maxSpan is the longest stretch of usage a file source may cover: the
// series hold one entry per minute of it, so one stray timestamp (a job
// line stamped 1970, or years ahead) would otherwise cost gigabytes.
const maxSpan = 2 * 366 * 24 * time.Hour

// checkSpan refuses usage that spans more than maxSpan, naming its ends and
// the way out.
func (b *builder) checkSpan() error {
	// Compared in minutes: a span of centuries (a timestamp in year 9999)
	// would overflow a time.Duration and pass.
	if !b.seen || b.last-b.first <= int64(maxSpan/time.Minute) {
		return nil
	}
	return fmt.Errorf("usage runs from %s to %s, more than %d days: a stray timestamp? set --start and --end to the window to size",
		time.Unix(b.first*60, 0).UTC().Format(time.RFC3339), time.Unix(b.last*60, 0).UTC().Format(time.RFC3339), int(maxSpan/(24*time.Hour)))
}

// build densifies the series over [start, end); zero times take the span of
// what was added. Usage outside an explicit window is dropped.
func (b *builder) build(d *Data, start, end time.Time) *Data {
	if start.IsZero() || end.IsZero() {
		if b.seen {
			start, end = time.Unix(b.first*60, 0), time.Unix((b.last+1)*60, 0)
		} else {
			start, end = time.Time{}, time.Time{}
		}
	}
	d.Start, d.End = start.UTC(), end.UTC()
	n := d.Minutes()
	first := unixMinute(d.Start)
	for _, id := range slices.Sorted(maps.Keys(b.models)) {
		s := b.models[id]
		s.Minutes = make([]Minute, n)
		for k, m := range b.minutes[id] {
			if i := k - first; i >= 0 && i < int64(n) {
				s.Minutes[i].add(m)
			}
		}
		d.Models = append(d.Models, s)
	}
	for _, k := range slices.SortedFunc(maps.Keys(b.totals), func(x, y [2]string) int {
		if c := strings.Compare(x[0], y[0]); c != 0 {
			return c
		}
		return strings.Compare(x[1], y[1])
	}) {
		d.Totals = append(d.Totals, *b.totals[k])
	}
	for _, k := range slices.Sorted(maps.Keys(b.records)) {
		if i := k - first; i >= 0 && i < int64(n) {
			d.activity = append(d.activity, active{k, b.records[k]})
		}
	}
	return d
}

// priceTokens prices a record's tokens with the model's on-demand prices
// through tiering's Prices.Cost, the code the worker and submit --dry-run
// use. The record's tier is tried first, so a tier whose model shares an ID
// with another tier still prices its own jobs.
func priceTokens(tiers *tiering.Config, tier, model string, in, out float64) (usd float64, ok bool) {
	return priceUsage(tiers, tier, model, tiering.Usage{InputTokens: int(math.Round(in)), OutputTokens: int(math.Round(out))})
}

// priceUsage prices a call's usage, cache tokens included, without its
// guardrail units: sizing's costs are model tokens only. Every call is
// priced at the model's Standard (default service tier) prices, whatever
// tier served it, because that is what the commitments are compared with
// and what Reserved overflow is billed at; the recorded cost says what was
// paid.
func priceUsage(tiers *tiering.Config, tier, model string, u tiering.Usage) (usd float64, ok bool) {
	prices, ok := tiers.ModelPrices(model)
	if t, found := tiers.Tier(tier); found && t.ModelID == model {
		prices, ok = t.Prices, true
	}
	if !ok {
		return 0, false
	}
	u.GuardrailUnits = tiering.GuardrailUnits{}
	return prices.Cost(u).TotalUSD, true
}

// call is one model call of a job, as a per-call record gives it (an EMF
// call line or a result's calls entry).
type call struct {
	Time         time.Time
	Tier, Tenant string
	ModelID      string
	Usage        tiering.Usage
	// Answered is false for a call that was only throttled (then spilled
	// over to another model): it adds throttles, not a request.
	Answered  bool
	Throttles float64
	// RecordedCostUSD is the worker's own cost of the call, guardrail
	// included.
	RecordedCostUSD float64
}

// addCall records a call on its model in the minute it ended and in its
// tier and tenant's totals. The EMF and results sources both come here, so
// they attribute and price a call the same way: its tokens at the model's
// Standard prices from the tiers file (priceUsage). Without a tiers file
// (a results source built without one) the recorded model cost is used.
func (b *builder) addCall(c call, tiers *tiering.Config, recordedModelCost *float64) {
	var cost float64
	priced := true
	switch {
	case tiers != nil:
		cost, priced = priceUsage(tiers, c.Tier, c.ModelID, c.Usage)
	case recordedModelCost != nil:
		cost = *recordedModelCost
	default:
		priced = false
	}
	u := c.Usage
	b.call(job{
		Time: c.Time, Tier: c.Tier, Tenant: c.Tenant, ModelID: c.ModelID,
		InputTokens: int64(u.InputTokens), OutputTokens: int64(u.OutputTokens),
		ModelCostUSD: cost, Priced: priced, RecordedCostUSD: c.RecordedCostUSD,
	})
	if c.ModelID == "" || c.ModelID == noModel {
		return
	}
	m := Minute{
		InputTokens: float64(u.InputTokens), OutputTokens: float64(u.OutputTokens),
		CacheWriteTokens: float64(u.CacheWriteTokens), Throttles: c.Throttles, CostUSD: cost,
	}
	if c.Answered {
		m.Requests = 1
	}
	b.add(c.ModelID, c.Time, m)
	b.model(c.ModelID).CallRecords = true
	if !priced {
		b.model(c.ModelID).Priced = false
	}
}
