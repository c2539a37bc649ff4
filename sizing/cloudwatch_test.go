package sizing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
)

type point struct {
	t time.Time
	v float64
}

// seriesKey names one metric of one model at one period.
type seriesKey struct {
	model, metric string
	period        int32
}

// fakeCloudWatch answers GetMetricData from canned series. It returns each
// series' first point on a first page and the rest on a second, so the
// source must merge pages by query Id.
type fakeCloudWatch struct {
	data     map[seriesKey][]point
	messages []types.MessageData
	status   types.StatusCode
	err      error

	mu    sync.Mutex
	calls []*cloudwatch.GetMetricDataInput
}

func (f *fakeCloudWatch) GetMetricData(_ context.Context, in *cloudwatch.GetMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	f.mu.Lock()
	f.calls = append(f.calls, in)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	second := aws.ToString(in.NextToken) == "page2"
	out := &cloudwatch.GetMetricDataOutput{}
	if !second {
		out.NextToken = aws.String("page2")
		out.Messages = f.messages
	}
	for _, q := range in.MetricDataQueries {
		ms := q.MetricStat
		key := seriesKey{aws.ToString(ms.Metric.Dimensions[0].Value), aws.ToString(ms.Metric.MetricName), aws.ToInt32(ms.Period)}
		pts := f.data[key]
		if second {
			pts = pts[min(1, len(pts)):]
		} else {
			pts = pts[:min(1, len(pts))]
		}
		r := types.MetricDataResult{Id: q.Id, StatusCode: types.StatusCodeComplete}
		if f.status != "" {
			r.StatusCode = f.status
		}
		for _, p := range pts {
			if p.t.Before(*in.StartTime) || !p.t.Before(*in.EndTime) {
				continue
			}
			r.Timestamps = append(r.Timestamps, p.t)
			r.Values = append(r.Values, p.v)
		}
		out.MetricDataResults = append(out.MetricDataResults, r)
	}
	return out, nil
}

var cwNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func TestCloudWatchSource(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	fake := &fakeCloudWatch{
		data: map[seriesKey][]point{
			// 20 days ago is past CloudWatch's 15 days of 1-minute data:
			// that part comes at 5 minutes and is spread over 5 minutes.
			{haiku, "InputTokenCount", 300}:       {{at("2026-11-05T00:00:00Z"), 5000}},
			{haiku, "InputTokenCount", 60}:        {{at("2026-11-20T10:00:00Z"), 60000}, {at("2026-11-20T10:02:00Z"), 30000}},
			{haiku, "OutputTokenCount", 60}:       {{at("2026-11-20T10:00:00Z"), 6000}},
			{haiku, "Invocations", 60}:            {{at("2026-11-20T10:00:00Z"), 12}},
			{haiku, "InvocationThrottles", 60}:    {{at("2026-11-20T10:01:00Z"), 3}},
			{haiku, "EstimatedTPMQuotaUsage", 60}: {{at("2026-11-20T10:00:00Z"), 90000}},
			{"mystery", "InputTokenCount", 60}:    {{at("2026-11-20T10:00:00Z"), 100}},
		},
		messages: []types.MessageData{{Code: aws.String("MaxQueryTimeRangeExceed"), Value: aws.String("range trimmed")}},
	}
	src := &sizing.CloudWatchSource{
		Client: fake, ModelIDs: []string{haiku, "mystery", haiku}, Tiers: pinnedTiers(),
		Start: cwNow.Add(-20 * 24 * time.Hour), End: cwNow, Now: func() time.Time { return cwNow },
	}
	d, err := src.Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	// Two segments, each over two pages: four calls.
	if len(fake.calls) != 4 {
		t.Fatalf("%d GetMetricData calls, want 4", len(fake.calls))
	}
	fineFrom := at("2026-11-09T12:00:00Z") // now − 15 days, on the hour
	for i, want := range []struct {
		start, end time.Time
		period     int32
	}{
		{src.Start, fineFrom, 300},
		{src.Start, fineFrom, 300},
		{fineFrom, cwNow, 60},
		{fineFrom, cwNow, 60},
	} {
		in := fake.calls[i]
		if !in.StartTime.Equal(want.start) || !in.EndTime.Equal(want.end) {
			t.Errorf("call %d window %s–%s, want %s–%s", i, in.StartTime, in.EndTime, want.start, want.end)
		}
		if len(in.MetricDataQueries) != 10 {
			t.Errorf("call %d has %d queries, want 5 metrics × 2 models", i, len(in.MetricDataQueries))
		}
		for _, q := range in.MetricDataQueries {
			ms := q.MetricStat
			if aws.ToInt32(ms.Period) != want.period || aws.ToString(ms.Stat) != "Sum" || aws.ToString(ms.Metric.Namespace) != "AWS/Bedrock" ||
				aws.ToString(ms.Metric.Dimensions[0].Name) != "ModelId" {
				t.Errorf("call %d query %s = period %d %s %s %s, want period %d Sum AWS/Bedrock ModelId", i, aws.ToString(q.Id),
					aws.ToInt32(ms.Period), aws.ToString(ms.Stat), aws.ToString(ms.Metric.Namespace), aws.ToString(ms.Metric.Dimensions[0].Name), want.period)
			}
		}
	}
	for i, want := range []string{"", "page2", "", "page2"} {
		if got := aws.ToString(fake.calls[i].NextToken); got != want {
			t.Errorf("call %d NextToken = %q, want %q", i, got, want)
		}
	}

	if d.Minutes() != 20*1440 || !d.Start.Equal(src.Start) {
		t.Errorf("window %s + %d minutes, want %s + 28,800", d.Start, d.Minutes(), src.Start)
	}
	if len(d.Models) != 2 || d.Models[0].ModelID != "mystery" || d.Models[1].ModelID != haiku {
		t.Fatalf("models = %v, want mystery and Haiku once each", modelIDs(d))
	}
	if d.Models[0].Priced {
		t.Error("mystery model priced, want unpriced (no tier uses it)")
	}
	h := d.Models[1]
	if h.CoarseMinutes != 5*1440 || !h.ThrottlesKnown || !h.EstimatedTPMKnown || !h.Priced {
		t.Errorf("Haiku coarse %d, throttles known %v, est. TPM %v, priced %v; want 7,200, true, true, true",
			h.CoarseMinutes, h.ThrottlesKnown, h.EstimatedTPMKnown, h.Priced)
	}
	minute := func(s string) sizing.Minute { return h.Minutes[int(at(s).Sub(d.Start)/time.Minute)] }
	for _, c := range []struct {
		at   string
		want sizing.Minute
	}{
		{"2026-11-05T00:00:00Z", sizing.Minute{InputTokens: 1000, CostUSD: 0.001}}, // 5,000 ÷ 5, at $1/M
		{"2026-11-05T00:04:00Z", sizing.Minute{InputTokens: 1000, CostUSD: 0.001}},
		{"2026-11-05T00:05:00Z", sizing.Minute{}},
		// 60,000 × $1/M + 6,000 × $5/M = 0.06 + 0.03.
		{"2026-11-20T10:00:00Z", sizing.Minute{InputTokens: 60000, OutputTokens: 6000, Requests: 12, CostUSD: 0.09, EstimatedTPM: 90000}},
		{"2026-11-20T10:01:00Z", sizing.Minute{Throttles: 3}},
		{"2026-11-20T10:02:00Z", sizing.Minute{InputTokens: 30000, CostUSD: 0.03}}, // from the second page
	} {
		got := minute(c.at)
		if got.InputTokens != c.want.InputTokens || got.OutputTokens != c.want.OutputTokens || got.Requests != c.want.Requests ||
			got.Throttles != c.want.Throttles || !near(got.CostUSD, c.want.CostUSD) || got.EstimatedTPM != c.want.EstimatedTPM {
			t.Errorf("Haiku at %s = %+v, want %+v", c.at, got, c.want)
		}
	}
	if len(d.Warnings) != 1 || d.Warnings[0] != "CloudWatch: MaxQueryTimeRangeExceed: range trimmed" {
		t.Errorf("warnings = %q, want the CloudWatch message", d.Warnings)
	}
	if len(d.Totals) != 0 {
		t.Errorf("job totals %v, want none: CloudWatch has no per-job records", d.Totals)
	}

	// The report carries the coarse-data caveat and the estimated quota.
	rep, err := sizing.Analyze(d, sizing.DefaultConfig(pinnedTiers()))
	if err != nil {
		t.Fatal(err)
	}
	// 5 active minutes on 2026-11-05, then none for 15 days, then 2 on
	// 2026-11-20: in a file that would strand the later ones, but a
	// CloudWatch window is the one asked for, and no edge of it is empty
	// for 7 days (first data a day in, last 4 days before the end).
	for _, w := range rep.Warnings {
		if strings.Contains(w, "active minute") {
			t.Errorf("warning %q, want no edge warning for this CloudWatch window", w)
		}
	}
	for _, m := range rep.Models {
		if m.ModelID != haiku {
			continue
		}
		if m.EstimatedTPM == nil || m.EstimatedTPM.Max != 90000 || m.ThrottledMinutes != 1 {
			t.Errorf("Haiku estimated TPM %+v, throttled %d; want max 90,000 and 1", m.EstimatedTPM, m.ThrottledMinutes)
		}
		if !strings.Contains(strings.Join(m.Notes, "\n"), "5 days of the window came from 5-minute or hourly CloudWatch data") {
			t.Errorf("notes %q lack the coarse-data caveat", m.Notes)
		}
		// Throttles from CloudWatch are named by their metric.
		const metric = "1 of 28,800 minutes were throttled (CloudWatch InvocationThrottles, which counts SDK retries too)"
		if m.Burst == nil || !strings.Contains(m.Burst.Headline, metric) {
			t.Errorf("burst advice %+v, want the headline to say %q", m.Burst, metric)
		}
		if m.Quota == nil || m.Quota.RequestsAre != "invocations" || !strings.Contains(strings.Join(m.Quota.Notes, "\n"), "InvocationThrottles") {
			t.Errorf("quota figures %+v, want requests counted as invocations and InvocationThrottles named", m.Quota)
		}
	}
}

func TestCloudWatchHourlyAndChunks(t *testing.T) {
	t.Parallel()
	// 100 days back: the oldest part is hourly, then 5-minute, then 1-minute.
	fake := &fakeCloudWatch{}
	models := make([]string, 101)
	for i := range models {
		models[i] = fmt.Sprintf("model-%03d", i)
	}
	src := &sizing.CloudWatchSource{
		Client: fake, ModelIDs: models, Tiers: pinnedTiers(),
		Start: cwNow.Add(-100 * 24 * time.Hour), End: cwNow, Now: func() time.Time { return cwNow },
	}
	if _, err := src.Series(t.Context()); err != nil {
		t.Fatal(err)
	}
	// 3 segments × 2 chunks (100 + 1 models) × 2 pages.
	if len(fake.calls) != 12 {
		t.Fatalf("%d calls, want 12", len(fake.calls))
	}
	periods := map[int32]int{}
	for _, in := range fake.calls {
		if n := len(in.MetricDataQueries); n > 500 {
			t.Errorf("a call has %d queries, more than GetMetricData's 500", n)
		}
		periods[aws.ToInt32(in.MetricDataQueries[0].MetricStat.Period)]++
	}
	if periods[3600] != 4 || periods[300] != 4 || periods[60] != 4 {
		t.Errorf("calls by period = %v, want 4 each of 3600, 300, 60", periods)
	}
}

func TestCloudWatchErrors(t *testing.T) {
	t.Parallel()
	base := func(f *fakeCloudWatch) *sizing.CloudWatchSource {
		return &sizing.CloudWatchSource{Client: f, ModelIDs: []string{haiku}, Tiers: pinnedTiers(),
			Start: cwNow.Add(-time.Hour), End: cwNow, Now: func() time.Time { return cwNow }}
	}
	tests := []struct {
		name string
		src  *sizing.CloudWatchSource
		want string
	}{
		{"API error", base(&fakeCloudWatch{err: errors.New("AccessDenied")}), "get AWS/Bedrock metrics 2026-11-24T11:00:00Z to 2026-11-24T12:00:00Z: AccessDenied"},
		{"internal error", base(&fakeCloudWatch{status: types.StatusCodeInternalError}), "CloudWatch returned InternalError"},
		{"bad input", &sizing.CloudWatchSource{Start: cwNow, End: cwNow}, "a CloudWatch client is required\na tiers configuration is required to price tokens\nat least one model ID is required\nend 2026-11-24T12:00:00Z must be after start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.src.Series(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Series() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestCloudWatchSourceKumo reads AWS/Bedrock metrics through the real SDK
// client (RPC v2 CBOR) from kumo's CloudWatch. kumo stamps data points with
// the time they are put (it cannot read a CBOR Timestamp) and returns them
// unaggregated, so the test checks totals over a window around now.
func TestCloudWatchSourceKumo(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := cloudwatch.New(cloudwatch.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(kumoURL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		// The SDK gzips PutMetricData bodies; kumo does not read gzip.
		DisableRequestCompression: true,
	})
	// kumo keeps one metric store per process: a model ID of our own.
	model := "test." + emulator.Name(t, "sizing")
	put := func(name string, v float64) {
		t.Helper()
		_, err := c.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
			Namespace: aws.String("AWS/Bedrock"),
			MetricData: []types.MetricDatum{{
				MetricName: aws.String(name), Value: aws.Float64(v),
				Dimensions: []types.Dimension{{Name: aws.String("ModelId"), Value: aws.String(model)}},
			}},
		})
		if err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}
	start := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
	put("InputTokenCount", 40000)
	put("OutputTokenCount", 4000)
	put("Invocations", 8)
	put("InvocationThrottles", 2)
	end := time.Now().UTC().Truncate(time.Minute).Add(2 * time.Minute)

	tiers := tiering.Default()
	tiers.Provisioned = map[string]tiering.Provisioned{model: {OnDemand: &tiering.Prices{InputPerMTok: 1, OutputPerMTok: 5}}}
	d, err := (&sizing.CloudWatchSource{Client: c, ModelIDs: []string{model}, Tiers: tiers, Start: start, End: end}).Series(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Models) != 1 || d.Models[0].ModelID != model {
		t.Fatalf("models %v, want %s", modelIDs(d), model)
	}
	var sum sizing.Minute
	throttled := 0
	for _, x := range d.Models[0].Minutes {
		sum.InputTokens += x.InputTokens
		sum.OutputTokens += x.OutputTokens
		sum.Requests += x.Requests
		sum.CostUSD += x.CostUSD
		if x.Throttles > 0 {
			throttled++
		}
	}
	// 40,000 × $1/M + 4,000 × $5/M = 0.04 + 0.02, priced from provisioned.on_demand.
	if sum.InputTokens != 40000 || sum.OutputTokens != 4000 || sum.Requests != 8 || !near(sum.CostUSD, 0.06) || throttled != 1 {
		t.Errorf("totals %+v with %d throttled minutes; want 40,000 in, 4,000 out, 8 requests, $0.06, 1", sum, throttled)
	}
}

// TestCloudWatchEmptyEdges: a CloudWatch window whose first 9.9 days and
// last 8.5 days have no data says so, with the --start and --end that
// leave them out: they would count as quiet minutes.
func TestCloudWatchEmptyEdges(t *testing.T) {
	t.Parallel()
	// Window 2026-11-04 12:00 to 2026-11-24 12:00 (now). Data only at
	// 2026-11-14 10:00 and 2026-11-16 00:00 (1-minute data: within 15 days).
	fake := &fakeCloudWatch{data: map[seriesKey][]point{
		{haiku, "InputTokenCount", 60}: {
			{time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC), 1000},
			{time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC), 1000},
		},
	}}
	src := &sizing.CloudWatchSource{
		Client: fake, ModelIDs: []string{haiku}, Tiers: pinnedTiers(),
		Start: cwNow.Add(-20 * 24 * time.Hour), End: cwNow, Now: func() time.Time { return cwNow },
	}
	rep, err := sizing.Build(t.Context(), src, sizing.DefaultConfig(pinnedTiers()))
	if err != nil {
		t.Fatal(err)
	}
	// Lead: 11-04 12:00 to 11-14 10:00 = 9 days 22 h = 9.9 days (never
	// rounded up). Tail: 11-16 00:00 to 11-24 11:59 = 8 days 11 h 59 min
	// = 8.49 days → 8.5.
	want := []string{
		"no active minutes in the window's first 9.9 days (2026-11-04T12:00:00Z to 2026-11-14T10:00:00Z): they count as quiet minutes in every percentile and per-day cost; pass --start 2026-11-14 to leave them out",
		"no active minutes in the window's last 8.5 days (after 2026-11-16T00:00:00Z): they count as quiet minutes in every percentile and per-day cost; pass --end 2026-11-17 to leave them out",
	}
	got := strings.Join(rep.Warnings, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("warnings lack %q:\n%s", w, got)
		}
	}
}
