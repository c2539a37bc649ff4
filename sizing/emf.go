package sizing

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tierq/tierq/tiering"
)

// EMFSource reads the CloudWatch Embedded Metric Format lines tierq's
// workers write, one per finished job (pipeline/metrics.go). Tokens are
// priced with the tiers file's prices, so the cost is model tokens only:
// EMF lines carry no guardrail units. A job's tokens add up all its model
// calls and are priced at the model it finished on, so an escalated job's
// first-tier tokens are priced at the later tier's price.
type EMFSource struct {
	// Paths are files or glob patterns (filepath.Glob). Required.
	Paths []string
	// Tiers prices the tokens. Required.
	Tiers *tiering.Config
}

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
	Tier         string  `json:"Tier"`
	ModelID      string  `json:"ModelId"`
	InputTokens  float64 `json:"InputTokens"`
	OutputTokens float64 `json:"OutputTokens"`
	CostUSD      float64 `json:"CostUSD"`
	Throttles    float64 `json:"Throttles"`
	// JobID is a pointer so that a line without it, another EMF stream
	// such as the limiter's, is told apart from a job with an empty ID.
	JobID  *string `json:"JobId"`
	Tenant string  `json:"Tenant"`
}

// Series reads every file. Only job lines count: EMF lines of other
// metrics (the limiter's, say, which share the ModelId dimension but carry
// no JobId) are ignored. A line that is not EMF at all is skipped and
// counted in a warning, because files exported from CloudWatch Logs may
// hold other log lines; a file with no job line is an error.
func (s *EMFSource) Series(ctx context.Context) (*Data, error) {
	if s.Tiers == nil {
		return nil, errors.New("emf source: no tiers configuration to price tokens with")
	}
	files, err := expandPaths(s.Paths)
	if err != nil {
		return nil, err
	}
	b := newBuilder()
	var skipped []string
	nskipped := 0
	for _, f := range files {
		n, skips, err := s.readFile(ctx, f, b)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("read EMF file %s: no tierq EMF job lines in it%s", f, firstSkip(skips))
		}
		nskipped += len(skips)
		for _, sk := range skips {
			if len(skipped) < maxSkipExamples {
				skipped = append(skipped, sk)
			}
		}
	}
	d := &Data{
		Source: "emf", Inputs: files,
		CostBasis: "on-demand model cost priced from EMF token counts with the tiers file's prices (Prices.Cost); guardrail charges are not included, " +
			"and an escalated job's tokens are all priced at the model it finished on (--results has the exact cost). Recorded cost is the workers' own CostUSD.",
	}
	if nskipped > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%d line%s skipped as not tierq EMF job lines, e.g. %s", nskipped, plural(nskipped), strings.Join(skipped, "; ")))
	}
	return b.build(d, time.Time{}, time.Time{}), nil
}

func firstSkip(skips []string) string {
	if len(skips) == 0 {
		return ""
	}
	return " (" + skips[0] + ")"
}

// readFile adds one file's job lines to b and returns how many it used and
// why it skipped lines that are not EMF.
func (s *EMFSource) readFile(ctx context.Context, name string, b *builder) (used int, skips []string, err error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, nil, fmt.Errorf("read EMF file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxEMFLine)
	line := 0
	for sc.Scan() {
		line++
		if line%4096 == 0 && ctx.Err() != nil {
			return 0, nil, fmt.Errorf("read EMF file %s: %w", name, context.Cause(ctx))
		}
		text := sc.Bytes()
		if len(strings.TrimSpace(string(text))) == 0 {
			continue
		}
		switch used1, reason := s.addLine(text, b); {
		case reason != "":
			skips = append(skips, fmt.Sprintf("%s:%d: %s", name, line, reason))
		case used1:
			used++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, nil, fmt.Errorf("read EMF file %s after line %d: %w", name, line, err)
	}
	return used, skips, nil
}

// addLine adds a job line. It reports whether the line was one, and why it
// was skipped if it is not EMF or is a broken job line.
func (s *EMFSource) addLine(text []byte, b *builder) (isJob bool, skip string) {
	var r emfRecord
	if err := json.Unmarshal(text, &r); err != nil {
		return false, "not a JSON object"
	}
	switch {
	case r.AWS == nil || r.AWS.Timestamp == nil:
		return false, "no _aws.Timestamp"
	case r.JobID == nil:
		return false, "" // another EMF stream
	case r.ModelID == "":
		return false, "no ModelId"
	case r.InputTokens < 0 || r.OutputTokens < 0 || r.Throttles < 0:
		return false, "negative InputTokens, OutputTokens or Throttles"
	}
	t := time.UnixMilli(*r.AWS.Timestamp).UTC()
	j := job{
		Time: t, Tier: r.Tier, Tenant: r.Tenant, ModelID: r.ModelID,
		InputTokens: int64(r.InputTokens), OutputTokens: int64(r.OutputTokens), RecordedCostUSD: r.CostUSD, Priced: true,
	}
	if r.ModelID == noModel {
		// Failed before a tier was chosen: a job for the tables, no model.
		b.job(j)
		return true, ""
	}
	cost, ok := priceTokens(s.Tiers, r.Tier, r.ModelID, r.InputTokens, r.OutputTokens)
	j.ModelCostUSD, j.Priced = cost, ok
	b.job(j)
	b.add(r.ModelID, t, Minute{InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, Requests: 1, Throttles: r.Throttles, CostUSD: cost})
	if !ok {
		b.model(r.ModelID).Priced = false
	}
	return true, ""
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
