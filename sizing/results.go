package sizing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
	"golang.org/x/sync/errgroup"
)

// ResultsStore is the part of S3 the results source needs.
type ResultsStore interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ ResultsStore = (*s3.Client)(nil)

// DefaultResultsConcurrency is how many result objects S3Results fetches at
// once.
const DefaultResultsConcurrency = 16

// maxResultBytes bounds one result object; results are a few KB to a few
// hundred, so anything larger is not a result.
const maxResultBytes = 16 << 20

// resultsCostBasis explains the results source's costs: old results (no
// calls) as recorded, per-call results priced like EMF call lines.
func resultsCostBasis(withCalls, total int) string {
	const old = "on-demand model cost as recorded in result objects (cost.input_usd + output_usd + cache_read_usd + cache_write_usd, priced by the workers with Prices.Cost), an escalated job's all on the model it finished on"
	const calls = "each model call in a result's calls attributed to the model that made it, in the minute it ended, and its tokens priced with the tiers file's prices at the Standard service tier (Prices.Cost), as for EMF call lines"
	const tail = "; guardrail charges are left out because provisioned throughput does not replace them. Recorded cost is cost.total_usd (per call with calls), guardrail included."
	switch {
	case withCalls == 0:
		return old + tail
	case withCalls == total:
		return calls + tail
	}
	return fmt.Sprintf("%d of %d results: %s; the others: %s%s", withCalls, total, calls, old, tail)
}

// S3Results reads result objects v1 under an S3 prefix. Their costs are the
// ones the workers recorded; they carry no throttle counts, so the
// throttling signal is reported as unknown.
type S3Results struct {
	Client ResultsStore
	Bucket string
	Prefix string
	// Concurrency of GetObject calls. Default DefaultResultsConcurrency.
	Concurrency int
	// Start and End, when not zero, keep only results finished in
	// [Start, End); those left out are counted in a warning.
	Start, End time.Time
	// Tiers prices the calls of results that list them. Without it their
	// recorded model cost is used.
	Tiers *tiering.Config
}

// DirResults reads result objects v1 saved as *.json files in a folder, as
// the demo writes them.
type DirResults struct {
	Dir string
	// Start and End filter as S3Results' do.
	Start, End time.Time
	// Tiers prices calls as S3Results' does.
	Tiers *tiering.Config
}

// Series lists the prefix and reads every .json object under it.
func (s *S3Results) Series(ctx context.Context) (*Data, error) {
	if s.Client == nil || s.Bucket == "" {
		return nil, errors.New("results source: an S3 client and a bucket are required")
	}
	limit := s.Concurrency
	if limit <= 0 {
		limit = DefaultResultsConcurrency
	}
	rb := newResultsBuilder(window{s.Start, s.End}, s.Tiers)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String(s.Prefix)})
	listed := 0
	for p.HasMorePages() {
		page, err := p.NextPage(gctx)
		if err != nil {
			// A failed GetObject cancels gctx and so this listing: report
			// the first cause, not the cancellation it led to.
			if werr := g.Wait(); werr != nil {
				return nil, werr
			}
			return nil, fmt.Errorf("list results in s3://%s/%s: %w", s.Bucket, s.Prefix, err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			if !strings.HasSuffix(key, ".json") {
				continue
			}
			listed++
			g.Go(func() error {
				body, err := s.get(gctx, key)
				if err != nil {
					return err
				}
				rb.add("s3://"+s.Bucket+"/"+key, body)
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if listed == 0 {
		return nil, fmt.Errorf("no result objects (*.json) under s3://%s/%s", s.Bucket, s.Prefix)
	}
	if err := rb.b.checkSpan(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return rb.data("s3://" + s.Bucket + "/" + s.Prefix), nil
}

func (s *S3Results) get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get result s3://%s/%s: %w", s.Bucket, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, maxResultBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read result s3://%s/%s: %w", s.Bucket, key, err)
	}
	return body, nil
}

// Series reads every *.json file in the folder (not subfolders).
func (s *DirResults) Series(ctx context.Context) (*Data, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("read results folder: %w", err)
	}
	rb := newResultsBuilder(window{s.Start, s.End}, s.Tiers)
	n := 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read results folder %s: %w", s.Dir, context.Cause(ctx))
		}
		name := filepath.Join(s.Dir, e.Name())
		body, err := readCapped(name, maxResultBytes)
		if err != nil {
			return nil, fmt.Errorf("read result: %w", err)
		}
		rb.add(name, body)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no result files (*.json) in %s", s.Dir)
	}
	if err := rb.b.checkSpan(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return rb.data(s.Dir), nil
}

// resultsBuilder turns result objects into Data; add is safe for
// concurrent use.
type resultsBuilder struct {
	mu      sync.Mutex
	b       *builder
	used    int
	skipped []string
	nskip   int
	empty   []string
	win     window
	outside int
	// seen drops a result read twice (the same job_id and finished_at, as
	// when two copies of a folder are read together).
	seen map[jobKey]struct{}
	dups int
	// tiers prices calls; withCalls counts results that list them.
	tiers     *tiering.Config
	withCalls int
}

func newResultsBuilder(w window, tiers *tiering.Config) *resultsBuilder {
	return &resultsBuilder{b: newBuilder(), win: w, seen: map[jobKey]struct{}{}, tiers: tiers}
}

// add decodes one result; one that is not a v1 result is skipped and
// counted, so a stray object does not cost the whole report.
func (rb *resultsBuilder) add(name string, body []byte) {
	r, reason := decodeResult(body)
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if len(bytes.TrimSpace(body)) == 0 {
		// An empty object (a failed copy, a placeholder) is not a broken
		// result: say so plainly and go on with the others.
		rb.empty = append(rb.empty, name)
		return
	}
	if reason != "" {
		rb.nskip++
		if len(rb.skipped) < maxSkipExamples {
			rb.skipped = append(rb.skipped, name+": "+reason)
		}
		return
	}
	if !rb.win.contains(r.Timings.FinishedAt) {
		rb.outside++
		return
	}
	k := jobKey{r.JobID, r.Timings.FinishedAt.UnixMilli()}
	if _, dup := rb.seen[k]; dup {
		rb.dups++
		return
	}
	rb.seen[k] = struct{}{}
	rb.used++
	if len(r.Calls) > 0 {
		rb.addCalls(r)
		return
	}
	c := r.Cost
	j := job{
		Time: r.Timings.FinishedAt.UTC(), Tier: r.Tier, Tenant: r.Metadata["tenant"], ModelID: r.ModelID,
		InputTokens: int64(r.Usage.InputTokens), OutputTokens: int64(r.Usage.OutputTokens),
		ModelCostUSD: c.InputUSD + c.OutputUSD + c.CacheReadUSD + c.CacheWriteUSD, Priced: true, RecordedCostUSD: c.TotalUSD,
	}
	if j.Tier == "" {
		j.Tier = noModel
	}
	rb.b.job(j)
	if r.ModelID == "" || r.ModelID == noModel {
		return
	}
	rb.b.add(r.ModelID, j.Time, Minute{
		InputTokens: float64(r.Usage.InputTokens), OutputTokens: float64(r.Usage.OutputTokens),
		Requests: 1, CostUSD: j.ModelCostUSD,
	})
	rb.b.model(r.ModelID).ThrottlesKnown = false
	rb.b.model(r.ModelID).JobRecords = true
}

// addCalls adds a result that lists its calls: the job for the tables, on
// the tier it finished on, and each call on its own model and tier at the
// time it ended (the job's finish when a call has no time).
func (rb *resultsBuilder) addCalls(r jobv1.Result) {
	rb.withCalls++
	j := job{Time: r.Timings.FinishedAt.UTC(), Tier: r.Tier, Tenant: r.Metadata["tenant"], ModelID: r.ModelID, Priced: true}
	if j.Tier == "" {
		j.Tier = noModel
	}
	rb.b.job(j)
	for _, c := range r.Calls {
		at := c.At.UTC()
		if at.IsZero() {
			at = j.Time
		}
		if !rb.win.contains(at) {
			// As EMF call lines are: each call by its own time, so
			// --start and --end can leave out a stray one.
			continue
		}
		u := c.Usage
		model := c.Cost.InputUSD + c.Cost.OutputUSD + c.Cost.CacheReadUSD + c.Cost.CacheWriteUSD
		rb.b.addCall(call{
			Time: at, Tier: c.Tier, Tenant: j.Tenant, ModelID: c.ModelID, Usage: u,
			Answered:  c.ServiceTier != "" || u.InputTokens+u.OutputTokens > 0,
			Throttles: float64(c.Throttles), RecordedCostUSD: c.Cost.TotalUSD,
		}, rb.tiers, &model)
	}
}

func decodeResult(body []byte) (jobv1.Result, string) {
	var r jobv1.Result
	if len(body) > maxResultBytes {
		return r, "larger than 16 MiB"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		return r, "not a result object: " + err.Error()
	}
	switch {
	case r.Version != jobv1.ResultVersion:
		return r, fmt.Sprintf("result version %q, want %q", r.Version, jobv1.ResultVersion)
	case r.Timings.FinishedAt.IsZero():
		return r, "no timings.finished_at"
	case r.Usage.InputTokens < 0 || r.Usage.OutputTokens < 0:
		return r, "negative token counts"
	}
	for i, c := range r.Calls {
		u := c.Usage
		switch {
		case c.ModelID == "":
			return r, fmt.Sprintf("calls[%d]: no model_id", i)
		case u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWriteTokens < 0 || c.Throttles < 0:
			return r, fmt.Sprintf("calls[%d]: negative token counts or throttles", i)
		}
	}
	return r, ""
}

func (rb *resultsBuilder) data(input string) *Data {
	d := &Data{Source: "results", Inputs: []string{input}, RecordNoun: "result", CostBasis: resultsCostBasis(rb.withCalls, rb.used)}
	slices.Sort(rb.empty) // S3 reads finish in any order
	for _, name := range rb.empty {
		d.Warnings = append(d.Warnings, fmt.Sprintf("file %s is empty, no result in it; skipped", name))
	}
	if rb.nskip > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%d object%s skipped as not result v1, e.g. %s",
			rb.nskip, plural(rb.nskip), strings.Join(rb.skipped, "; ")))
	}
	if rb.dups > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%d duplicate result%s (same job_id and finished_at) dropped: each job is counted once", rb.dups, plural(rb.dups)))
	}
	d.Warnings = append(d.Warnings, rb.win.warning(rb.outside, "result")...)
	if rb.used == 0 {
		d.Warnings = append(d.Warnings, "no readable result objects")
	}
	return rb.b.build(d, time.Time{}, time.Time{})
}

// readCapped reads at most limit+1 bytes of a file, as the S3 source reads
// an object: a huge file is judged by its first bytes, never held whole.
func readCapped(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}
