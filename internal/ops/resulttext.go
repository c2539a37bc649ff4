package ops

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tierq/tierq/jobv1"
)

// DefaultOutputChars is how much of a result's output text WriteResult
// prints unless asked for all of it.
const DefaultOutputChars = 600

// WriteResult prints a result for a person. Output text longer than
// outputChars characters is cut (outputChars <= 0 prints all of it). Every
// string from the result goes through Printable: model output can hold
// terminal escape sequences.
func WriteResult(w io.Writer, r jobv1.Result, outputChars int) error {
	p := &printer{w: w}
	line := func(label, format string, args ...any) { p.f("%-12s %s\n", label, fmt.Sprintf(format, args...)) }
	one := func(s string) string { return oneLine(s, 300) }

	line("job", "%s", one(r.JobID))
	line("status", "%s", one(r.Status))
	if r.Task != "" {
		line("task", "%s", one(r.Task))
	}
	if r.Error != nil {
		line("error", "%s: %s", one(r.Error.Code), one(r.Error.Message))
	}
	if r.Tier != "" {
		line("tier", "%s (rule %s: %s)", one(r.Tier), one(r.TierRule), one(r.TierReason))
	}
	if r.ModelID != "" {
		m := one(r.ModelID)
		if r.ServiceTier != "" {
			m += ", service tier " + one(r.ServiceTier)
		}
		line("model", "%s", m)
	}
	if r.Spillover != nil {
		line("spillover", "%s → %s after %d ms throttled", one(r.Spillover.From), one(r.Spillover.To), r.Spillover.After)
	}
	if r.StopReason != "" {
		line("stop reason", "%s", one(r.StopReason))
	}
	if g := r.Guardrail; g != nil {
		s := one(g.Action)
		for _, part := range []struct {
			name string
			list []string
		}{{"policies", g.Policies}, {"pii", g.PIITypes}, {"topics", g.Topics}, {"filters", g.Filters}} {
			if len(part.list) > 0 {
				s += fmt.Sprintf("; %s %s", part.name, one(strings.Join(part.list, ", ")))
			}
		}
		line("guardrail", "%s (%s version %s)", s, one(g.ID), one(g.Version))
	}
	c := r.Cost
	line("cost", "%s USD (input %s, output %s, cache read %s, cache write %s, guardrail %s)",
		exactUSD(c.TotalUSD), exactUSD(c.InputUSD), exactUSD(c.OutputUSD), exactUSD(c.CacheReadUSD), exactUSD(c.CacheWriteUSD), exactUSD(c.GuardrailUSD))
	u := r.Usage
	gu := u.GuardrailUnits
	line("usage", "input %d, output %d, cache read %d, cache write %d tokens; guardrail text units: content %d, topics %d, sensitive info %d, word %d",
		u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWriteTokens, gu.Content, gu.Topics, gu.SensitiveInfo, gu.Word)
	line("attempts", "%d model call(s), %d answered", r.Attempts, answered(r.Calls))
	for i, call := range r.Calls {
		served := call.ServiceTier
		if served == "" {
			served = "no answer"
		}
		extra := ""
		if call.Throttles > 0 {
			extra += fmt.Sprintf(", %d throttled before", call.Throttles)
		}
		if call.Fallback != "" {
			extra += ", without " + one(call.Fallback)
		}
		line("", "%d. %s %s on %s (%s): in %d, out %d tokens, %s USD%s", i+1, stamp(call.At), one(call.Tier), one(call.ModelID),
			one(served), call.Usage.InputTokens, call.Usage.OutputTokens, exactUSD(call.Cost.TotalUSD), extra)
	}
	for _, e := range r.Escalations {
		s := fmt.Sprintf("%s → %s: %s", one(e.FromTier), one(e.ToTier), one(e.Reason))
		if e.Failed != "" {
			s += " (failed: " + one(e.Failed) + ")"
		}
		line("escalation", "%s", s)
	}
	t := r.Timings
	line("timings", "enqueued %s, started %s, finished %s; queue %d ms, model %d ms, total %d ms",
		stamp(t.EnqueuedAt), stamp(t.StartedAt), stamp(t.FinishedAt), t.QueueMs, t.ModelMs, t.TotalMs)
	line("worker", "%s (version %s), delivery %d", one(r.Worker.ID), one(r.Worker.Version), r.Worker.ReceiveCount)
	if len(r.Metadata) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
			kv = append(kv, k+"="+r.Metadata[k])
		}
		line("metadata", "%s", one(strings.Join(kv, " ")))
	}
	if r.Output != nil {
		text, cut := clip(Printable(r.Output.Text), outputChars)
		p.f("output:\n%s\n", indent(text))
		if cut > 0 {
			p.f("  [… %d more characters; --full prints all of it, --json the raw result]\n", cut)
		}
	}
	return p.e
}

func answered(calls []jobv1.Call) int {
	n := 0
	for _, c := range calls {
		if c.ServiceTier != "" {
			n++
		}
	}
	return n
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// clip cuts s to limit characters and says how many were left out.
func clip(s string, limit int) (string, int) {
	n := utf8.RuneCountInString(s)
	if limit <= 0 || n <= limit {
		return s, 0
	}
	return string([]rune(s)[:limit]), n - limit
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
