package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tierq/tierq/tiering"
)

// ErrByReference: a job whose document is already in S3 (document_uri).
// A dry run does not fetch documents, so it cannot classify or price it.
var ErrByReference = errors.New("by reference: size unknown, not estimated")

// Plan is a dry run's result: where each job would go and what it would cost.
type Plan struct {
	// Tiers has one row per configured tier, in configuration order, even
	// for tiers no job uses.
	Tiers []TierPlan
	// Total sums the rows. Its costs are sums of the unrounded figures.
	Total TierPlan
	// Jobs are the valid jobs in input order, planned or not.
	Jobs []JobPlan
}

// TierPlan sums the jobs planned on one tier.
type TierPlan struct {
	Tier string
	Jobs int
	// InputTokens sums the jobs' estimated prompt tokens
	// (tiering.PromptTokens: the document and the job's other parts); the
	// costs add system prompts and answers.
	InputTokens int
	// Low and High sum tiering.Config.Estimate over the jobs: as
	// configured, at each tier's service tier and with its prompt caching.
	Low, High tiering.Cost
	// StandardLow and StandardHigh are the same at the default service
	// tier without caching, to show what those save.
	StandardLow, StandardHigh tiering.Cost
}

// JobPlan is one job's plan.
type JobPlan struct {
	JobID  string
	Source string
	// Decision is the tier, the rule that chose it and why.
	Decision                  tiering.Decision
	EstimatedTokens           int
	Low, High                 tiering.Cost
	StandardLow, StandardHigh tiering.Cost
	// Upload says the document is over the inline limit, so it would be
	// uploaded to the input bucket and sent by reference.
	Upload bool
	// Err says why the job was not planned: it cannot run (wraps
	// tiering.ErrTooLarge or tiering.ErrUnknownTier), it cannot be sent
	// (ErrMessageTooLarge), or it is ErrByReference. nil when planned.
	Err error
}

// dryRun builds the plan with the same reading, validation and message
// building as a real run, so it predicts that run; only the AWS calls are
// left out.
func (r *runner) dryRun(ctx context.Context, ins []input, out io.Writer) error {
	cfg := r.deps.Tiers
	plan := &Plan{Total: TierPlan{Tier: "TOTAL"}}
	row := make(map[string]int, len(cfg.Tiers))
	for i, t := range cfg.Tiers {
		plan.Tiers = append(plan.Tiers, TierPlan{Tier: t.Name})
		row[t.Name] = i
	}
	// Plan uploads even without a bucket, so the estimate stays useful; the
	// plan warns that such jobs would fail to send.
	opts := r.opts
	if opts.InputBucket == "" {
		opts.InputBucket = "input-bucket"
	}
	for _, in := range ins {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		j, err := r.job(in)
		if err != nil {
			r.skip(in.source, j.JobID, err)
			continue
		}
		jp := JobPlan{JobID: j.JobID, Source: in.source}
		m, err := buildMessage(j, in.source, opts)
		switch {
		case err != nil:
			jp.Err = err
		case j.Text == "":
			jp.Err = ErrByReference
		default:
			jp.Upload = m.doc != nil
			// The same facts as the worker's.
			f := tiering.JobFacts(j, j.Text)
			jp.EstimatedTokens = f.EstimatedTokens
			var e tiering.Estimate
			e, jp.Err = cfg.Estimate(f)
			jp.Decision, jp.Low, jp.High, jp.StandardLow, jp.StandardHigh = e.Decision, e.Low, e.High, e.StandardLow, e.StandardHigh
		}
		if jp.Err == nil {
			for _, t := range []*TierPlan{&plan.Tiers[row[jp.Decision.Tier]], &plan.Total} {
				t.Jobs++
				t.InputTokens += jp.EstimatedTokens
				t.Low = t.Low.Add(jp.Low)
				t.High = t.High.Add(jp.High)
				t.StandardLow = t.StandardLow.Add(jp.StandardLow)
				t.StandardHigh = t.StandardHigh.Add(jp.StandardHigh)
			}
		}
		if jp.Upload {
			r.sum.Uploaded++
		}
		plan.Jobs = append(plan.Jobs, jp)
	}
	r.sum.Plan = plan
	r.writePlan(out, plan)
	fmt.Fprintf(r.p.w, "submit: dry run: planned %d, not planned %d, skipped %d; nothing sent\n",
		plan.Total.Jobs, len(plan.Jobs)-plan.Total.Jobs, len(r.sum.Skipped))
	return nil
}

func (r *runner) writePlan(out io.Writer, plan *Plan) {
	if out == nil {
		out = io.Discard
	}
	fmt.Fprintf(out, "Dry run: %d jobs planned of %d valid, %d inputs skipped. Nothing was sent.\n\n",
		plan.Total.Jobs, len(plan.Jobs), len(r.sum.Skipped))

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIER\tJOBS\tEST. INPUT TOKENS\tCOST LOW (USD)\tCOST HIGH (USD)")
	for _, t := range slices.Concat(plan.Tiers, []TierPlan{plan.Total}) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", t.Tier, t.Jobs, commas(t.InputTokens), usd(t.Low.TotalUSD), usd(t.High.TotalUSD))
	}
	tw.Flush()
	fmt.Fprintln(out, "\nInput tokens are the jobs' prompts: document, instructions, labels, fields, schema (4 characters per token)."+
		"\nLow: one call with a short answer;"+
		"\nhigh: a full-length answer plus escalation to the next tier where it can happen.")
	if tot := plan.Total; tot.StandardLow != tot.Low || tot.StandardHigh != tot.High {
		fmt.Fprintf(out, "\nService tiers and prompt caching as configured (%s): %s to %s USD; at the default service tier\n"+
			"without caching the same jobs cost %s to %s USD. Low: %s; high: %s.\n"+
			"Low assumes the cached system prompt is read, high that it is written (a write costs more than plain input).\n",
			r.featureList(), usd(tot.Low.TotalUSD), usd(tot.High.TotalUSD), usd(tot.StandardLow.TotalUSD), usd(tot.StandardHigh.TotalUSD),
			saving(tot.StandardLow.TotalUSD, tot.Low.TotalUSD), saving(tot.StandardHigh.TotalUSD, tot.High.TotalUSD))
	}

	var notPlanned []JobPlan
	for _, j := range plan.Jobs {
		if j.Err != nil {
			notPlanned = append(notPlanned, j)
		}
	}
	if len(notPlanned) > 0 {
		fmt.Fprintf(out, "\nNot planned (%d):\n", len(notPlanned))
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  JOB ID\tSOURCE\tREASON")
		for _, j := range notPlanned {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", j.JobID, j.Source, notPlannedReason(j.Err))
		}
		tw.Flush()
	}

	if n := r.sum.Uploaded; n > 0 {
		if r.opts.InputBucket == "" {
			fmt.Fprintf(out, "\nWARNING: %s over the inline limit of %d bytes and no input bucket is set: they would fail to send.\n",
				plural(n, "job is", "jobs are"), r.opts.InlineLimit)
		} else {
			fmt.Fprintf(out, "\n%s over the inline limit of %d bytes would be uploaded to s3://%s/%s and sent by reference.\n",
				plural(n, "document", "documents"), r.opts.InlineLimit, r.opts.InputBucket, r.opts.InputPrefix)
		}
	}

	if r.opts.Verbose && len(plan.Jobs) > 0 {
		fmt.Fprintln(out, "\nJobs:")
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  JOB ID\tTIER\tRULE\tCOST LOW (USD)\tCOST HIGH (USD)\tREASON")
		for _, j := range plan.Jobs {
			if j.Err != nil {
				fmt.Fprintf(tw, "  %s\t-\t-\t-\t-\t%s\n", j.JobID, notPlannedReason(j.Err))
				continue
			}
			reason := j.Decision.Reason
			if j.Upload {
				reason += " (sent by reference)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", j.JobID, j.Decision.Tier, j.Decision.Rule, usd(j.Low.TotalUSD), usd(j.High.TotalUSD), reason)
		}
		tw.Flush()
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// notPlannedReason names the class of problem before tiering's detail.
func notPlannedReason(err error) string {
	switch {
	case errors.Is(err, tiering.ErrTooLarge), errors.Is(err, tiering.ErrUnknownTier):
		return "cannot run: " + err.Error()
	case errors.Is(err, ErrMessageTooLarge):
		return "cannot send: " + err.Error()
	default:
		return err.Error()
	}
}

// usd formats a cost with at least 4 decimals and, below 0.001, enough to
// keep 4 significant digits: a per-job cost is often a fraction of a cent.
func usd(v float64) string {
	if v == 0 {
		return "0.0000"
	}
	decimals := max(4, 3-int(math.Floor(math.Log10(math.Abs(v)))))
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// commas formats n with thousands separators, as people read token counts.
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// featureList names the tiers' service tiers and prompt caches, for the
// saving line.
func (r *runner) featureList() string {
	var parts []string
	for _, t := range r.deps.Tiers.Tiers {
		var fs []string
		if st := t.RequestedServiceTier(); st != "" {
			fs = append(fs, st)
		}
		// Only a prompt long enough to be cached counts.
		if slices.ContainsFunc([]string{tiering.TaskSummarize, tiering.TaskClassify, tiering.TaskExtract, tiering.TaskCustom},
			func(task string) bool { return tiering.CachedPrefixTokens(t, task) > 0 }) {
			ttl := t.PromptCache.TTL
			if ttl == "" {
				ttl = tiering.CacheTTL5m
			}
			fs = append(fs, "cache "+ttl)
		}
		if len(fs) > 0 {
			parts = append(parts, t.Name+": "+strings.Join(fs, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// saving says how a configured cost compares with the standard one.
func saving(standard, configured float64) string {
	pct := func(d float64) string {
		if standard == 0 {
			return "0%"
		}
		return strconv.FormatFloat(100*d/standard, 'f', 1, 64) + "%"
	}
	switch d := standard - configured; {
	case d > 0:
		return "saves " + usd(d) + " USD (" + pct(d) + ")"
	case d < 0:
		return "costs " + usd(-d) + " USD (" + pct(-d) + ") more"
	default:
		return "the same"
	}
}
