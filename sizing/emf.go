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
	"time"

	"github.com/tierq/tierq/tiering"
)

// EMFSource reads the CloudWatch Embedded Metric Format lines tierq's
// workers write (pipeline/metrics.go): one "Kind":"call" line per model a
// job called and one "Kind":"job" line per finished job; older workers
// wrote job lines only, without Kind. Tokens are priced with the tiers
// file's prices, so the cost is model tokens only: EMF lines carry no
// guardrail units.
//
// In a file with call lines each call's tokens land on the model that
// spent them, in the minute the call ended, and job lines only count jobs.
// In a file without call lines (an older worker's) a job's tokens add up
// all its model calls and land on the model it finished on, as before: an
// escalated job's first-tier tokens are then priced at the later tier's
// price.
type EMFSource struct {
	// Paths are files or glob patterns (filepath.Glob). Required.
	Paths []string
	// Tiers prices the tokens. Required.
	Tiers *tiering.Config
	// Start and End, when not zero, keep only job lines timestamped in
	// [Start, End); the lines left out are counted in a warning.
	Start, End time.Time
}

// Kinds of tierq EMF line; a line without Kind is a job line of a worker
// older than per-call attribution.
const (
	kindCall = "call"
	kindJob  = "job"
)

// maxEMFLine bounds one line; EMF documents are at most 1 MB.
const maxEMFLine = 1 << 20

// maxSkipExamples bounds how many skipped lines a warning quotes.
const maxSkipExamples = 3

// emfRecord is the part of an EMF line sizing reads. Numbers are float64 so
// lines from other EMF writers (1200.0) parse too.
type emfRecord struct {
	AWS *struct {
		Timestamp *int64 `json:"Timestamp"`
	} `json:"_aws"`
	// Kind is "call", "job", or empty on lines of workers older than
	// per-call attribution (a job line).
	Kind                  string  `json:"Kind"`
	Tier                  string  `json:"Tier"`
	ModelID               string  `json:"ModelId"`
	ServiceTier           string  `json:"ServiceTier"`
	InputTokens           float64 `json:"InputTokens"`
	OutputTokens          float64 `json:"OutputTokens"`
	CacheReadInputTokens  float64 `json:"CacheReadInputTokens"`
	CacheWriteInputTokens float64 `json:"CacheWriteInputTokens"`
	CostUSD               float64 `json:"CostUSD"`
	Throttles             float64 `json:"Throttles"`
	// JobID is a pointer so that a line without it, another EMF stream
	// such as the limiter's, is told apart from a job with an empty ID.
	JobID  *string `json:"JobId"`
	Tenant string  `json:"Tenant"`
}

// Series reads every file. Only job lines count: EMF lines of other
// metrics (the limiter's, say, which share the ModelId dimension but carry
// no JobId) are ignored. A line that is not EMF at all, or is longer than
// an EMF document may be, is skipped and counted in a warning, because
// files exported from CloudWatch Logs may hold other log lines. A file with
// no job line is skipped with a warning, so one stray file in a glob does
// not cost the report; only when no file has a job line is it an error.
// A job line seen twice (same JobId and Timestamp, as when two overlapping
// exports are concatenated) counts once.
func (s *EMFSource) Series(ctx context.Context) (*Data, error) {
	if s.Tiers == nil {
		return nil, errors.New("emf source: no tiers configuration to price tokens with")
	}
	files, err := expandPaths(s.Paths)
	if err != nil {
		return nil, err
	}
	rd := &emfRead{src: s, b: newBuilder(), seen: map[jobKey]struct{}{}, seenCalls: map[callKey]struct{}{}, win: window{s.Start, s.End}}
	var skipped, empty, warnings []string
	nskipped, nlong, used := 0, 0, 0
	for _, f := range files {
		n, skips, long, err := rd.readFile(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, l := range long {
			// Quoted up to maxSkipExamples, then counted: a file of long
			// lines must not make a warning each.
			if nlong++; nlong <= maxSkipExamples {
				warnings = append(warnings, l)
			}
		}
		if n == 0 {
			empty = append(empty, f+firstSkip(skips))
			warnings = append(warnings, fmt.Sprintf("file %s has no job lines; skipped", f))
		}
		used += n
		nskipped += len(skips)
		for _, sk := range skips {
			if len(skipped) < maxSkipExamples {
				skipped = append(skipped, sk)
			}
		}
	}
	if used == 0 && rd.outside == 0 && rd.dups == 0 {
		return nil, fmt.Errorf("read EMF: no tierq EMF job lines in any file: %s", strings.Join(empty, ", "))
	}
	d := &Data{Source: "emf", Inputs: files, RecordNoun: "job line", CostBasis: emfCostBasis(rd.callFiles, len(files))}
	d.Warnings = append(d.Warnings, warnings...)
	if nlong > maxSkipExamples {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%d more line%s longer than %d bytes (the EMF limit) skipped", nlong-maxSkipExamples, plural(nlong-maxSkipExamples), maxEMFLine))
	}
	if nskipped > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%d line%s skipped as not tierq EMF job lines, e.g. %s", nskipped, plural(nskipped), strings.Join(skipped, "; ")))
	}
	if rd.dups > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%d duplicate job line%s (same JobId and Timestamp) dropped: each job is counted once", rd.dups, plural(rd.dups)))
	}
	if rd.callDups > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%d duplicate call line%s (same JobId, ModelId and Timestamp) dropped: each call is counted once", rd.callDups, plural(rd.callDups)))
	}
	d.Warnings = append(d.Warnings, rd.win.warning(rd.outside, "job line")...)
	if err := rd.b.checkSpan(); err != nil {
		return nil, fmt.Errorf("read EMF: %w", err)
	}
	return rd.b.build(d, time.Time{}, time.Time{}), nil
}

// jobKey identifies a job line: the same job written at the same instant
// is the same line, even when two exports overlap.
type jobKey struct {
	id string
	ms int64
}

// callKey identifies a call line: one job's call to one model, ended at
// one instant.
type callKey struct {
	job, model string
	ms         int64
}

// emfCostBasis says how the EMF costs were found, for files with call
// lines, without them, or a mix.
func emfCostBasis(callFiles, files int) string {
	const priced = "on-demand model cost priced from EMF token counts with the tiers file's prices at the Standard service tier (Prices.Cost); guardrail charges are not included. "
	const recorded = " Recorded cost is the workers' own CostUSD."
	switch {
	case callFiles == files:
		return priced + "Each model call is attributed to the model that made it, in the minute it ended (call lines)." + recorded
	case callFiles == 0:
		return priced + "An escalated job's tokens are all priced at the model it finished on: these files have no call lines (workers older than per-call attribution; --results has the exact cost)." + recorded
	}
	return priced + fmt.Sprintf("%d of %d files have call lines and attribute each call to its model; in the others an escalated job's tokens are all priced at the model it finished on.", callFiles, files) + recorded
}

// emfRead is one Series call's state across files: the builder, the job
// and call lines already seen and what was left out.
type emfRead struct {
	src       *EMFSource
	b         *builder
	seen      map[jobKey]struct{}
	seenCalls map[callKey]struct{}
	win       window
	dups      int
	callDups  int
	outside   int
	callFiles int
	// calls is true while reading a file with call lines: its job lines
	// then count jobs only, their tokens being in the call lines.
	calls bool
}

// hasCalls reports whether a file holds a call line. It is a cheap first
// pass (only lines mentioning "call" are decoded) so that the second knows,
// before the first job line, whether job lines carry the tokens.
func hasCalls(ctx context.Context, name string) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return false, fmt.Errorf("read EMF file: %w", err)
	}
	defer f.Close()
	lr := newLineReader(f, maxEMFLine)
	for line := 1; ; line++ {
		text, tooLong, err := lr.next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read EMF file %s at line %d: %w", name, line, err)
		}
		if line%4096 == 0 && ctx.Err() != nil {
			return false, fmt.Errorf("read EMF file %s: %w", name, context.Cause(ctx))
		}
		if tooLong || !bytes.Contains(text, []byte(`"call"`)) {
			continue
		}
		var k struct {
			Kind string `json:"Kind"`
		}
		if json.Unmarshal(text, &k) == nil && k.Kind == kindCall {
			return true, nil
		}
	}
}

func firstSkip(skips []string) string {
	if len(skips) == 0 {
		return ""
	}
	return " (" + skips[0] + ")"
}

// readFile adds one file's job lines and returns how many it used, why it
// skipped lines that are not EMF, and a warning per over-long line.
func (rd *emfRead) readFile(ctx context.Context, name string) (used int, skips, long []string, err error) {
	if rd.calls, err = hasCalls(ctx, name); err != nil {
		return 0, nil, nil, err
	}
	if rd.calls {
		rd.callFiles++
	}
	f, err := os.Open(name)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read EMF file: %w", err)
	}
	defer f.Close()
	lr := newLineReader(f, maxEMFLine)
	line := 0
	for {
		text, tooLong, err := lr.next()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return 0, nil, nil, fmt.Errorf("read EMF file %s at line %d: %w", name, line, err)
		}
		if line%4096 == 0 && ctx.Err() != nil {
			return 0, nil, nil, fmt.Errorf("read EMF file %s: %w", name, context.Cause(ctx))
		}
		if tooLong {
			long = append(long, fmt.Sprintf("%s:%d: line longer than %d bytes (the EMF limit); skipped", name, line, maxEMFLine))
			continue
		}
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		switch used1, reason := rd.addLine(text); {
		case reason != "":
			skips = append(skips, fmt.Sprintf("%s:%d: %s", name, line, reason))
		case used1:
			used++
		}
	}
	return used, skips, long, nil
}

// addLine adds a job or call line. It reports whether the line was one,
// and why it was skipped if it is not EMF or is a broken tierq line. A line
// outside the window or seen before is a tierq line that adds nothing.
func (rd *emfRead) addLine(text []byte) (isJob bool, skip string) {
	var r emfRecord
	if err := json.Unmarshal(text, &r); err != nil {
		return false, "not a JSON object"
	}
	switch {
	case r.AWS == nil || r.AWS.Timestamp == nil:
		return false, "no _aws.Timestamp"
	case r.JobID == nil:
		return false, "" // another EMF stream
	case r.Kind != "" && r.Kind != kindCall && r.Kind != kindJob:
		return false, fmt.Sprintf("unknown Kind %q", r.Kind)
	case r.ModelID == "":
		return false, "no ModelId"
	case r.InputTokens < 0 || r.OutputTokens < 0 || r.Throttles < 0 || r.CacheReadInputTokens < 0 || r.CacheWriteInputTokens < 0:
		return false, "negative token counts or Throttles"
	}
	t := time.UnixMilli(*r.AWS.Timestamp).UTC()
	if !rd.win.contains(t) {
		rd.outside++
		return true, ""
	}
	if r.Kind == kindCall {
		rd.addCall(r, t)
		return true, ""
	}
	k := jobKey{*r.JobID, *r.AWS.Timestamp}
	if _, dup := rd.seen[k]; dup {
		rd.dups++
		return true, ""
	}
	rd.seen[k] = struct{}{}
	rd.addJob(r, t)
	return true, ""
}

// addJob adds a job line: a job for the tables and, in a file without call
// lines, its tokens on the model it finished on.
func (rd *emfRead) addJob(r emfRecord, t time.Time) {
	b := rd.b
	j := job{Time: t, Tier: r.Tier, Tenant: r.Tenant, ModelID: r.ModelID, Priced: true}
	if rd.calls && r.Kind == kindJob {
		// The call lines carry this job's tokens and costs.
		b.job(j)
		return
	}
	j.InputTokens, j.OutputTokens, j.RecordedCostUSD = int64(r.InputTokens), int64(r.OutputTokens), r.CostUSD
	if r.ModelID == noModel {
		// Failed before a tier was chosen: a job for the tables, no model.
		b.job(j)
		return
	}
	cost, ok := priceTokens(rd.src.Tiers, r.Tier, r.ModelID, r.InputTokens, r.OutputTokens)
	j.ModelCostUSD, j.Priced = cost, ok
	b.job(j)
	b.add(r.ModelID, t, Minute{InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, Requests: 1, Throttles: r.Throttles, CostUSD: cost})
	b.model(r.ModelID).JobRecords = true
	if !ok {
		b.model(r.ModelID).Priced = false
	}
}

// addCall adds a call line's tokens, throttles and cost to its model in the
// minute the call ended, and to its tier and tenant's totals.
func (rd *emfRead) addCall(r emfRecord, t time.Time) {
	k := callKey{*r.JobID, r.ModelID, *r.AWS.Timestamp}
	if _, dup := rd.seenCalls[k]; dup {
		rd.callDups++
		return
	}
	rd.seenCalls[k] = struct{}{}
	u := tiering.Usage{
		InputTokens: int(r.InputTokens), OutputTokens: int(r.OutputTokens),
		CacheReadTokens: int(r.CacheReadInputTokens), CacheWriteTokens: int(r.CacheWriteInputTokens),
	}
	rd.b.addCall(call{
		Time: t, Tier: r.Tier, Tenant: r.Tenant, ModelID: r.ModelID, Usage: u,
		Answered:  r.ServiceTier != "" || u.InputTokens+u.OutputTokens > 0,
		Throttles: r.Throttles, RecordedCostUSD: r.CostUSD,
	}, rd.src.Tiers, nil)
}

// expandPaths resolves glob patterns; a pattern matching nothing is an
// error, so a typo does not yield an empty report.
func expandPaths(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, errors.New("emf source: no files given")
	}
	var files []string
	for _, p := range patterns {
		if !strings.ContainsAny(p, "*?[") {
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("EMF pattern %q: %w", p, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("EMF pattern %q matches no files", p)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}
