package sizing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/tierq/tierq/tiering"
)

// MetricDataAPI is the part of CloudWatch the CloudWatch source needs.
type MetricDataAPI interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

var _ MetricDataAPI = (*cloudwatch.Client)(nil)

// CloudWatch retention (GetMetricData docs): 1-minute data points for 15
// days, 5-minute for 63 days, hourly for 455 days. Older parts of a window
// must be asked for at the coarser period or CloudWatch returns nothing.
const (
	fineRetention   = 15 * 24 * time.Hour
	mediumRetention = 63 * 24 * time.Hour
	maxQueries      = 500 // per GetMetricData call
	bedrockNS       = "AWS/Bedrock"
)

// cwMetrics are the AWS/Bedrock metrics read per ModelId, all as Sum.
var cwMetrics = []struct {
	id, name string
	set      func(*Minute, float64)
}{
	{"in", "InputTokenCount", func(m *Minute, v float64) { m.InputTokens = v }},
	{"out", "OutputTokenCount", func(m *Minute, v float64) { m.OutputTokens = v }},
	{"inv", "Invocations", func(m *Minute, v float64) { m.Requests = v }},
	{"thr", "InvocationThrottles", func(m *Minute, v float64) { m.Throttles = v }},
	{"tpm", "EstimatedTPMQuotaUsage", func(m *Minute, v float64) { m.EstimatedTPM = v }},
}

// CloudWatchSource reads Bedrock's own AWS/Bedrock metrics per ModelId
// through GetMetricData, for deployments whose EMF or results are not at
// hand. Tokens are priced with the tiers file's prices. CloudWatch has no
// tenant or tier, so there are no cost tables, and InvocationThrottles
// counts SDK retries too.
type CloudWatchSource struct {
	Client MetricDataAPI
	// ModelIDs are the ModelId dimension values to read. Required.
	ModelIDs []string
	// Start and End bound the window (End exclusive), rounded down to the
	// minute. Required.
	Start, End time.Time
	// Tiers prices the tokens. Required.
	Tiers *tiering.Config
	// Now decides which part of the window CloudWatch still holds at
	// 1-minute resolution. Default time.Now.
	Now func() time.Time
}

// segment is part of the window read at one period.
type segment struct {
	start, end time.Time
	period     time.Duration
}

// segments splits [start, end) by what CloudWatch still keeps at each
// period, oldest first. Boundaries are rounded up to the hour so that every
// segment starts inside its retention.
func segments(start, end, now time.Time) []segment {
	fineFrom := ceilHour(now.Add(-fineRetention))
	mediumFrom := ceilHour(now.Add(-mediumRetention))
	var out []segment
	add := func(from, to time.Time, period time.Duration) {
		from, to = maxTime(from, start), minTime(to, end)
		if to.After(from) {
			out = append(out, segment{from.Truncate(period), to, period})
		}
	}
	add(start, mediumFrom, time.Hour)
	add(mediumFrom, fineFrom, 5*time.Minute)
	add(fineFrom, end, time.Minute)
	return out
}

func ceilHour(t time.Time) time.Time {
	h := t.Truncate(time.Hour)
	if h.Equal(t) {
		return h
	}
	return h.Add(time.Hour)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Series reads every model's metrics over the window.
func (s *CloudWatchSource) Series(ctx context.Context) (*Data, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	start, end := s.Start.UTC().Truncate(time.Minute), s.End.UTC().Truncate(time.Minute)
	var errs []error
	if s.Client == nil {
		errs = append(errs, errors.New("a CloudWatch client is required"))
	}
	if s.Tiers == nil {
		errs = append(errs, errors.New("a tiers configuration is required to price tokens"))
	}
	if len(s.ModelIDs) == 0 {
		errs = append(errs, errors.New("at least one model ID is required"))
	}
	if !end.After(start) {
		errs = append(errs, fmt.Errorf("end %s must be after start %s", end.Format(time.RFC3339), start.Format(time.RFC3339)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cloudwatch source:\n%w", err)
	}
	models := slices.Compact(slices.Sorted(slices.Values(s.ModelIDs)))

	b := newBuilder()
	for _, m := range models {
		b.model(m)
	}
	d := &Data{
		Source: "cloudwatch",
		Inputs: []string{fmt.Sprintf("%s %s, %s to %s", bedrockNS, strings.Join(models, ", "), start.Format(time.RFC3339), end.Format(time.RFC3339))},
		CostBasis: "on-demand model cost priced from CloudWatch InputTokenCount and OutputTokenCount with the tiers file's prices (Prices.Cost); " +
			"guardrail charges are not included.",
	}
	warn := map[string]bool{}
	coarse := 0
	for _, seg := range segments(start, end, now().UTC()) {
		if seg.period > time.Minute {
			coarse += int(minTime(seg.end, end).Sub(maxTime(seg.start, start)) / time.Minute)
		}
		for chunk := range slices.Chunk(models, maxQueries/len(cwMetrics)) {
			if err := s.read(ctx, seg, chunk, b, warn); err != nil {
				return nil, err
			}
		}
	}
	for _, m := range models {
		ms := b.model(m)
		ms.CoarseMinutes = coarse
		if _, ok := s.Tiers.ModelPrices(m); !ok {
			ms.Priced = false
		}
	}
	d.Warnings = append(d.Warnings, slices.Sorted(maps.Keys(warn))...)
	// A minute with tokens or invocations is active, for the edge checks.
	for _, mins := range b.minutes {
		for k, m := range mins {
			if m.Tokens() > 0 || m.Requests > 0 {
				b.records[k] = max(b.records[k], 1)
			}
		}
	}
	return b.build(d, start, end), nil
}

// read fetches one segment for some models, following NextToken.
func (s *CloudWatchSource) read(ctx context.Context, seg segment, models []string, b *builder, warn map[string]bool) error {
	type target struct {
		model  string
		metric int
	}
	targets := map[string]target{}
	var queries []types.MetricDataQuery
	for i, m := range models {
		for k, met := range cwMetrics {
			id := fmt.Sprintf("m%d_%s", i, met.id)
			targets[id] = target{m, k}
			queries = append(queries, types.MetricDataQuery{
				Id: aws.String(id),
				MetricStat: &types.MetricStat{
					Metric: &types.Metric{
						Namespace:  aws.String(bedrockNS),
						MetricName: aws.String(met.name),
						Dimensions: []types.Dimension{{Name: aws.String("ModelId"), Value: aws.String(m)}},
					},
					Period: aws.Int32(int32(seg.period / time.Second)),
					Stat:   aws.String("Sum"),
				},
				ReturnData: aws.Bool(true),
			})
		}
	}
	in := &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(seg.start), EndTime: aws.Time(seg.end),
		MetricDataQueries: queries, ScanBy: types.ScanByTimestampAscending,
	}
	spread := int(seg.period / time.Minute)
	p := cloudwatch.NewGetMetricDataPaginator(s.Client, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("get %s metrics %s to %s: %w", bedrockNS, seg.start.Format(time.RFC3339), seg.end.Format(time.RFC3339), err)
		}
		for _, msg := range out.Messages {
			warn[fmt.Sprintf("CloudWatch: %s: %s", aws.ToString(msg.Code), aws.ToString(msg.Value))] = true
		}
		for _, r := range out.MetricDataResults {
			tg, ok := targets[aws.ToString(r.Id)]
			if !ok {
				continue
			}
			met := cwMetrics[tg.metric]
			if r.StatusCode == types.StatusCodeInternalError {
				return fmt.Errorf("get %s %s for %s: CloudWatch returned InternalError", bedrockNS, met.name, tg.model)
			}
			for _, msg := range r.Messages {
				warn[fmt.Sprintf("CloudWatch %s for %s: %s: %s", met.name, tg.model, aws.ToString(msg.Code), aws.ToString(msg.Value))] = true
			}
			if len(r.Timestamps) != len(r.Values) {
				return fmt.Errorf("get %s %s for %s: %d timestamps but %d values", bedrockNS, met.name, tg.model, len(r.Timestamps), len(r.Values))
			}
			for i, ts := range r.Timestamps {
				v := r.Values[i]
				if v < 0 {
					continue
				}
				if met.id == "tpm" {
					b.model(tg.model).EstimatedTPMKnown = true
				}
				var m Minute
				met.set(&m, v)
				switch met.id {
				case "in":
					m.CostUSD, _ = priceTokens(s.Tiers, "", tg.model, v, 0)
				case "out":
					m.CostUSD, _ = priceTokens(s.Tiers, "", tg.model, 0, v)
				}
				// A coarse data point is spread evenly over its minutes:
				// CloudWatch no longer knows which minute was busiest.
				m = m.scale(1 / float64(spread))
				for k := range spread {
					b.add(tg.model, ts.Add(time.Duration(k)*time.Minute), m)
				}
			}
		}
	}
	return nil
}
