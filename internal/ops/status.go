package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/tierq/tierq/jobv1"
)

// Defaults of StatusConfig.
const (
	// DefaultDLQScan bounds the dead letters status reads: 100 receives,
	// a few seconds, and a bound on the receive counts it adds.
	DefaultDLQScan = 1000
	// DefaultHide is how long a dead letter read by status or redrive
	// stays hidden before it is released again (or deleted, once moved).
	// It must outlast one pass over what is read, so that a pass sees each
	// message once; status releases them as soon as it is done.
	DefaultHide = 30 * time.Second
	// DefaultConcurrency is how many result objects are read at once.
	DefaultConcurrency = 16
	// DefaultProgressEvery is how many result objects are read between
	// progress lines.
	DefaultProgressEvery = 1000
)

// maxResultBytes bounds one result object: results are a few KB to a few
// hundred, so anything larger is not a result.
const maxResultBytes = 16 << 20

// StatusConfig says what tierq status reads.
type StatusConfig struct {
	Queue    Queue
	QueueURL string
	DLQURL   string
	Store    Store
	Bucket   string
	Prefix   string
	// Metrics, when set, reads each queue's ApproximateAgeOfOldestMessage
	// from CloudWatch; without it the job queue's oldest age is unknown.
	Metrics Metrics
	// DLQScan is the most dead letters read to group them by reason; 0
	// reads none (only the counts). Default DefaultDLQScan when negative.
	DLQScan int
	// Hide is how long each dead letter read stays hidden; default
	// DefaultHide.
	Hide time.Duration
	// Concurrency of result reads; default DefaultConcurrency.
	Concurrency int
	// Progress receives a line every ProgressEvery result objects read
	// (default DefaultProgressEvery) and one at the end; nil for none.
	Progress      io.Writer
	ProgressEvery int
	// Now is the clock for ages; default time.Now.
	Now func() time.Time
}

// Status is what tierq status prints.
type Status struct {
	At          time.Time     `json:"at"`
	Queue       QueueStatus   `json:"queue"`
	DeadLetters DLQStatus     `json:"dead_letters"`
	Results     ResultsStatus `json:"results"`
}

// QueueStatus is a queue's depth, from SQS's approximate counts.
type QueueStatus struct {
	URL      string `json:"url"`
	Visible  int    `json:"visible"`
	InFlight int    `json:"in_flight"`
	Delayed  int    `json:"delayed"`
	// OldestAgeSeconds is CloudWatch's ApproximateAgeOfOldestMessage, nil
	// when unknown; OldestAgeSource says where it came from or why not.
	OldestAgeSeconds *float64 `json:"oldest_age_seconds"`
	OldestAgeSource  string   `json:"oldest_age_source"`
}

// DLQStatus is the dead-letter queue: its depth and what was read of it.
type DLQStatus struct {
	QueueStatus
	// Read is how many dead letters were read; Complete says whether that
	// was all of them (the read stops at StatusConfig.DLQScan).
	Read     int           `json:"read"`
	Complete bool          `json:"complete"`
	NotRead  string        `json:"not_read,omitempty"`
	Reasons  []ReasonCount `json:"reasons"`
	// OldestSentAt is the earliest SentTimestamp among those read.
	OldestSentAt *time.Time `json:"oldest_sent_at,omitempty"`
}

// ReasonCount is how many dead letters read have a reason class, with one
// reason of the class as an example.
type ReasonCount struct {
	Class   string `json:"class"`
	Count   int    `json:"count"`
	Example string `json:"example,omitempty"`
}

// ResultsStatus is what the result objects say.
type ResultsStatus struct {
	Location string `json:"location"`
	Results  int    `json:"results"`
	// Unreadable are .json objects that are not result v1.
	Unreadable int `json:"unreadable"`
	// ClaimsWithoutResult are jobs claimed by a worker with no result yet:
	// running now, or their worker died and the lease has not run out.
	ClaimsWithoutResult int `json:"claims_without_result"`
	// Other objects under the prefix (neither result nor claim).
	Other        int     `json:"other_objects"`
	ByStatus     []Group `json:"by_status"`
	ByTier       []Group `json:"by_tier"`
	FailedByCode []Count `json:"failed_by_code"`
	TotalCostUSD float64 `json:"total_cost_usd"`
	// FirstFinished and LastFinished bound the results' finished_at;
	// JobsPerMinute is Results over the minutes between them, nil when the
	// span is zero.
	FirstFinished *time.Time `json:"first_finished_at,omitempty"`
	LastFinished  *time.Time `json:"last_finished_at,omitempty"`
	JobsPerMinute *float64   `json:"jobs_per_minute"`
}

// Group sums results by a key (a status, a tier).
type Group struct {
	Name         string  `json:"name"`
	Jobs         int     `json:"jobs"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

// Count is a named count.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Collect reads the queue, the dead-letter queue and the results.
// API calls: 2 GetQueueAttributes; with Metrics 2 GetMetricStatistics;
// for the dead letters, one ReceiveMessage per 10 read (plus one or two
// that come back empty) and one ChangeMessageVisibilityBatch per 10; for
// the results, one ListObjectsV2 per 1,000 objects and one GetObject per
// result.
func Collect(ctx context.Context, c StatusConfig) (*Status, error) {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Hide <= 0 {
		c.Hide = DefaultHide
	}
	if c.DLQScan < 0 {
		c.DLQScan = DefaultDLQScan
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	st := &Status{At: c.Now().UTC()}
	var err error
	if st.Queue, _, err = queueStatus(ctx, c, c.QueueURL); err != nil {
		return nil, err
	}
	var policy string
	if st.DeadLetters.QueueStatus, policy, err = queueStatus(ctx, c, c.DLQURL); err != nil {
		return nil, err
	}
	if err := readDeadLetters(ctx, c, policy, &st.DeadLetters); err != nil {
		return nil, err
	}
	if st.Results, err = readResults(ctx, c); err != nil {
		return nil, err
	}
	return st, nil
}

func queueStatus(ctx context.Context, c StatusConfig, url string) (QueueStatus, string, error) {
	a, err := readQueueAttrs(ctx, c.Queue, url)
	if err != nil {
		return QueueStatus{}, "", err
	}
	qs := QueueStatus{URL: url, Visible: a.visible, InFlight: a.inFlight, Delayed: a.delayed}
	qs.OldestAgeSeconds, qs.OldestAgeSource, err = oldestAge(ctx, c, url)
	return qs, a.redrivePolicy, err
}

// oldestAge reads AWS/SQS ApproximateAgeOfOldestMessage, the only source
// of a queue's oldest message age: SQS has no such queue attribute, and
// looking at the messages themselves would receive them.
func oldestAge(ctx context.Context, c StatusConfig, url string) (*float64, string, error) {
	if c.Metrics == nil {
		return nil, "unknown: SQS has no oldest-message attribute; --cloudwatch reads AWS/SQS ApproximateAgeOfOldestMessage", nil
	}
	name := url[strings.LastIndex(url, "/")+1:]
	now := c.Now().UTC()
	out, err := c.Metrics.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
		Namespace:  aws.String("AWS/SQS"),
		MetricName: aws.String("ApproximateAgeOfOldestMessage"),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("QueueName"), Value: aws.String(name)}},
		StartTime:  aws.Time(now.Add(-15 * time.Minute)),
		EndTime:    aws.Time(now),
		Period:     aws.Int32(60),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum},
	})
	if err != nil {
		return nil, "", fmt.Errorf("read ApproximateAgeOfOldestMessage of %s from CloudWatch: %w", name, err)
	}
	var latest *cwtypes.Datapoint
	for i, p := range out.Datapoints {
		if p.Maximum != nil && p.Timestamp != nil && (latest == nil || p.Timestamp.After(*latest.Timestamp)) {
			latest = &out.Datapoints[i]
		}
	}
	if latest == nil {
		return nil, "unknown: no CloudWatch datapoint in the last 15 minutes (SQS publishes only for active queues)", nil
	}
	v := *latest.Maximum
	return &v, "CloudWatch AWS/SQS ApproximateAgeOfOldestMessage, minute of " + latest.Timestamp.UTC().Format(time.RFC3339), nil
}

func readDeadLetters(ctx context.Context, c StatusConfig, policy string, ds *DLQStatus) error {
	total := ds.Visible + ds.InFlight + ds.Delayed
	// Messages counted in flight are read too: another reader may hold
	// them, but a released message can also be counted in flight until
	// its next receive (kumo does so), and an empty receive costs 1 s.
	switch {
	case total == 0:
		ds.Complete = true
		return nil
	case c.DLQScan == 0:
		ds.NotRead = "reading disabled (--dlq-scan 0)"
		return nil
	case policy != "":
		ds.NotRead = errDLQRedrivePolicy(c.DLQURL, policy).Error()
		return nil
	}
	r := newDLQReader(c.Queue, c.DLQURL, c.Hide)
	var read []*DeadLetter
	var err error
	full := false
	for !full {
		var batch []*DeadLetter
		if batch, err = r.next(ctx); err != nil || len(batch) == 0 {
			break
		}
		read = append(read, batch...)
		full = len(read) >= c.DLQScan
	}
	// Release before reporting a receive error: what was read must not
	// stay hidden for long.
	if rerr := release(ctx, c.Queue, c.DLQURL, read); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	ds.Read = len(read)
	ds.Complete = !full && len(read) >= total
	ds.Reasons = groupReasons(read)
	for _, d := range read {
		if !d.SentAt.IsZero() && (ds.OldestSentAt == nil || d.SentAt.Before(*ds.OldestSentAt)) {
			t := d.SentAt
			ds.OldestSentAt = &t
		}
	}
	return nil
}

// groupReasons counts dead letters per class, most first, keeping the
// first reason seen in each as an example.
func groupReasons(dls []*DeadLetter) []ReasonCount {
	idx := map[string]int{}
	var out []ReasonCount
	for _, d := range dls {
		i, ok := idx[d.Class]
		if !ok {
			i = len(out)
			idx[d.Class] = i
			out = append(out, ReasonCount{Class: d.Class, Example: d.Reason})
		}
		out[i].Count++
	}
	slices.SortStableFunc(out, func(a, b ReasonCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Class, b.Class)
	})
	return out
}

// resultTally sums results; add is safe for concurrent use.
type resultTally struct {
	mu       sync.Mutex
	s        ResultsStatus
	byStatus map[string]*Group
	byTier   map[string]*Group
	byCode   map[string]int
}

func (t *resultTally) add(body []byte) {
	var r jobv1.Result
	err := json.NewDecoder(bytes.NewReader(body)).Decode(&r)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil || r.Version != jobv1.ResultVersion || r.Status == "" || r.Timings.FinishedAt.IsZero() {
		t.s.Unreadable++
		return
	}
	t.s.Results++
	t.s.TotalCostUSD += r.Cost.TotalUSD
	tier := r.Tier
	if tier == "" {
		tier = "none"
	}
	for _, g := range []*Group{group(t.byStatus, r.Status), group(t.byTier, tier)} {
		g.Jobs++
		g.InputTokens += int64(r.Usage.InputTokens)
		g.OutputTokens += int64(r.Usage.OutputTokens)
		g.CostUSD += r.Cost.TotalUSD
	}
	if r.Status == jobv1.StatusFailed {
		code := "unknown"
		if r.Error != nil && r.Error.Code != "" {
			code = r.Error.Code
		}
		t.byCode[code]++
	}
	f := r.Timings.FinishedAt.UTC()
	if t.s.FirstFinished == nil || f.Before(*t.s.FirstFinished) {
		t.s.FirstFinished = &f
	}
	if t.s.LastFinished == nil || f.After(*t.s.LastFinished) {
		l := f
		t.s.LastFinished = &l
	}
}

func group(m map[string]*Group, name string) *Group {
	g, ok := m[name]
	if !ok {
		g = &Group{Name: name}
		m[name] = g
	}
	return g
}

// statusOrder puts the statuses in the order people read them.
var statusOrder = []string{jobv1.StatusSucceeded, jobv1.StatusBlocked, jobv1.StatusFailed}

func (t *resultTally) finish() ResultsStatus {
	s := t.s
	for _, name := range statusOrder {
		if g, ok := t.byStatus[name]; ok {
			s.ByStatus = append(s.ByStatus, *g)
			delete(t.byStatus, name)
		}
	}
	s.ByStatus = append(s.ByStatus, sortedGroups(t.byStatus)...)
	s.ByTier = sortedGroups(t.byTier)
	for code, n := range t.byCode {
		s.FailedByCode = append(s.FailedByCode, Count{code, n})
	}
	slices.SortFunc(s.FailedByCode, func(a, b Count) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Name, b.Name)
	})
	if s.FirstFinished != nil && s.LastFinished.After(*s.FirstFinished) {
		perMin := float64(s.Results) / s.LastFinished.Sub(*s.FirstFinished).Minutes()
		s.JobsPerMinute = &perMin
	}
	return s
}

func sortedGroups(m map[string]*Group) []Group {
	out := make([]Group, 0, len(m))
	for _, g := range m {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// readResults lists the results prefix and reads every result, at most
// Concurrency at a time. A claim is listed just before its job's result
// (".claim" < ".json"), but other jobs' keys can fall between the two, so
// claims wait in a set until their result is listed.
func readResults(ctx context.Context, c StatusConfig) (ResultsStatus, error) {
	t := &resultTally{byStatus: map[string]*Group{}, byTier: map[string]*Group{}, byCode: map[string]int{}}
	t.s.Location = "s3://" + c.Bucket + "/" + c.Prefix
	claims := map[string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.Concurrency)
	var mu sync.Mutex
	listed, read := 0, 0
	start := c.Now()
	p := s3.NewListObjectsV2Paginator(c.Store, &s3.ListObjectsV2Input{Bucket: aws.String(c.Bucket), Prefix: aws.String(c.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(gctx)
		if err != nil {
			if werr := g.Wait(); werr != nil {
				return ResultsStatus{}, werr
			}
			return ResultsStatus{}, fmt.Errorf("list %s: %w", t.s.Location, err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			name := strings.TrimPrefix(key, c.Prefix)
			switch {
			case strings.HasSuffix(name, jobv1.ClaimSuffix) && !strings.Contains(name, "/"):
				claims[strings.TrimSuffix(name, jobv1.ClaimSuffix)] = true
				continue
			case !jobv1.IsResultKey(key) || strings.Contains(name, "/"):
				t.mu.Lock()
				t.s.Other++
				t.mu.Unlock()
				continue
			}
			delete(claims, strings.TrimSuffix(name, ".json"))
			mu.Lock() // the progress line reads listed
			listed++
			mu.Unlock()
			g.Go(func() error {
				body, err := getCapped(gctx, c.Store, c.Bucket, key)
				if err != nil {
					return err
				}
				t.add(body)
				mu.Lock()
				defer mu.Unlock()
				if read++; read%c.ProgressEvery == 0 && c.Progress != nil {
					fmt.Fprintf(c.Progress, "status: read %d result objects (%d listed so far)\n", read, listed)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return ResultsStatus{}, err
	}
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "status: read %d result objects in %s\n", read, c.Now().Sub(start).Round(time.Millisecond))
	}
	t.s.ClaimsWithoutResult = len(claims)
	return t.finish(), nil
}

func getCapped(ctx context.Context, s Store, bucket, key string) ([]byte, error) {
	out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, maxResultBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	// A body cut at the cap does not decode: counted as unreadable.
	return body, nil
}
