package ops

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/tierq/tierq/jobv1"
)

// WriteStatus prints a Status for a person.
func WriteStatus(w io.Writer, s *Status) error {
	p := &printer{w: w}
	p.f("job queue      %s\n", s.Queue.URL)
	p.f("  %s\n", depth(s.Queue))
	p.f("  oldest message: %s\n", age(s.Queue))

	d := s.DeadLetters
	p.f("dead letters   %s\n", d.URL)
	p.f("  %s\n", depth(d.QueueStatus))
	if d.OldestAgeSeconds != nil {
		p.f("  oldest message: %s\n", age(d.QueueStatus))
	}
	switch {
	case d.NotRead != "":
		p.f("  reasons: not read: %s\n", d.NotRead)
	case d.Read == 0 && !d.Complete:
		p.f("  reasons: none could be received: they are in flight (another reader holds them, or received them moments ago)\n")
	case d.Read == 0:
	default:
		scope := "all of them"
		if !d.Complete {
			scope = "not all: counts are of those read"
		}
		p.f("  read %d (%s) and made visible again; each one's receive count is now one higher\n", d.Read, scope)
		tw := newTable(w)
		fmt.Fprintf(tw, "  reason\tcount\t  example\n")
		for _, r := range d.Reasons {
			ex := r.Example
			if r.Class == ReasonNone {
				ex = noReasonNote
			}
			fmt.Fprintf(tw, "  %s\t%d\t  %s\n", r.Class, r.Count, oneLine(shortReason(ex), 100))
		}
		p.err(tw.Flush())
		if d.OldestSentAt != nil {
			p.f("  oldest dead letter read: sent %s (%s ago)\n", d.OldestSentAt.Format(time.RFC3339), short(s.At.Sub(*d.OldestSentAt)))
		}
	}

	r := s.Results
	p.f("results        %s\n", r.Location)
	p.f("  %d results", r.Results)
	if r.ClaimsWithoutResult > 0 {
		p.f(", %d claimed without a result yet (running, or their worker died within the claim lease)", r.ClaimsWithoutResult)
	}
	if r.Unreadable > 0 {
		p.f(", %d .json objects that are not result v1", r.Unreadable)
	}
	if r.Other > 0 {
		p.f(", %d other objects", r.Other)
	}
	p.f("\n")
	if r.Results > 0 {
		tw := newTable(w)
		fmt.Fprintf(tw, "  status\tjobs\tinput tokens\toutput tokens\tcost USD\t\n")
		for _, g := range r.ByStatus {
			writeGroup(tw, g)
		}
		fmt.Fprintf(tw, "  \t\t\t\t\t\n  tier\tjobs\tinput tokens\toutput tokens\tcost USD\t\n")
		for _, g := range r.ByTier {
			writeGroup(tw, g)
		}
		p.err(tw.Flush())
		if len(r.FailedByCode) > 0 {
			parts := make([]string, len(r.FailedByCode))
			for i, c := range r.FailedByCode {
				parts[i] = fmt.Sprintf("%s %d", oneLine(c.Name, 100), c.Count)
			}
			p.f("  failed by code: %s\n", strings.Join(parts, ", "))
		}
		p.f("  total cost %s USD (as recorded in the results)\n", usd(r.TotalCostUSD))
		p.f("  throughput: %s\n", throughput(r))
	}
	return p.e
}

// table aligns columns to the right, as numbers read best, and trims the
// padding tabwriter leaves at the end of lines.
type table struct {
	*tabwriter.Writer
	buf bytes.Buffer
	w   io.Writer
}

func newTable(w io.Writer) *table {
	t := &table{w: w}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	return t
}

func (t *table) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(t.buf.String(), "\n")
	for i, l := range lines {
		if strings.HasSuffix(l, "\n") {
			lines[i] = strings.TrimRight(l, " \n") + "\n"
		}
	}
	_, err := io.WriteString(t.w, strings.Join(lines, ""))
	return err
}

// notAJob is how the pipeline opens a dead-letter reason (pipeline.go:
// "message ID is not a job: ..."); the message ID is known from elsewhere,
// so the rest is what a person needs.
var notAJob = regexp.MustCompile(`^message \S+ is not a job: `)

func shortReason(s string) string { return notAJob.ReplaceAllString(s, "") }

func writeGroup(w io.Writer, g Group) {
	fmt.Fprintf(w, "  %s\t%d\t%d\t%d\t%s\t\n", oneLine(g.Name, 100), g.Jobs, g.InputTokens, g.OutputTokens, usd(g.CostUSD))
}

func depth(q QueueStatus) string {
	return fmt.Sprintf("%d visible, %d in flight, %d delayed", q.Visible, q.InFlight, q.Delayed)
}

func age(q QueueStatus) string {
	if q.OldestAgeSeconds == nil {
		return q.OldestAgeSource
	}
	return fmt.Sprintf("%s (%s)", short(time.Duration(*q.OldestAgeSeconds*float64(time.Second))), q.OldestAgeSource)
}

func throughput(r ResultsStatus) string {
	if r.JobsPerMinute == nil {
		if r.FirstFinished != nil {
			return fmt.Sprintf("unknown: every result finished at %s", r.FirstFinished.Format(time.RFC3339))
		}
		return "unknown"
	}
	span := r.LastFinished.Sub(*r.FirstFinished)
	return fmt.Sprintf("%.1f jobs/min: %d results finished over %s (%s to %s)", *r.JobsPerMinute, r.Results, short(span),
		r.FirstFinished.Format(time.RFC3339), r.LastFinished.Format(time.RFC3339))
}

// short rounds a duration for reading: 3m12s, 2h5m, 1.2s.
func short(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// usd prints a cost to the micro-dollar, which distinguishes single cheap
// jobs; sums are taken before rounding.
func usd(v float64) string { return strconv.FormatFloat(jobv1.RoundUSD(v), 'f', 6, 64) }

// exactUSD prints a cost as the result records it (to 1e-12 USD): one
// job's cost is often below a micro-dollar.
func exactUSD(v float64) string { return strconv.FormatFloat(jobv1.RoundUSD(v), 'f', -1, 64) }

// printer writes and keeps the first error.
type printer struct {
	w io.Writer
	e error
}

func (p *printer) f(format string, args ...any) {
	if p.e == nil {
		_, p.e = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) err(err error) {
	if p.e == nil {
		p.e = err
	}
}

// Printable makes text from a result, a reason or a model safe for a
// terminal: control characters other than newline and tab (an escape
// sequence could rewrite the screen) are shown as \x1b-style escapes, and
// invalid UTF-8 as U+FFFD.
func Printable(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, string(utf8.RuneError)) {
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oneLine is Printable text on one line, cut to limit characters.
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(Printable(s)), " ")
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit-1]) + "…"
	}
	return s
}

// noReasonNote explains a dead letter without a tierq reason.
const noReasonNote = "(no tierq reason: the job queue's redrive policy moved it, or it was sent by hand)"

// WriteRedrive prints what a redrive did, or for a dry run what it would
// move, one line per dead letter.
func WriteRedrive(w io.Writer, s RedriveSummary, dryRun bool, now time.Time) error {
	p := &printer{w: w}
	if dryRun {
		p.f("would move %d dead letters (dry run: nothing moved; each one read has a receive count one higher)\n", len(s.WouldMove))
		for _, d := range s.WouldMove {
			job := d.JobID
			if job == "" {
				job = "-"
			}
			sent := "-"
			if !d.SentAt.IsZero() {
				sent = short(now.Sub(d.SentAt)) + " ago"
			}
			reason := d.Reason
			if d.Class == ReasonNone {
				reason = noReasonNote
			}
			p.f("  %s  job %s  %s  sent %s  %s\n", d.MessageID, job, d.Class, sent, oneLine(shortReason(reason), 100))
		}
		p.f("skipped %d (not matching --reason, or beyond --max)\n", s.Skipped)
		return p.e
	}
	p.f("moved %d, skipped %d, failed %d", s.Moved, s.Skipped, s.Failed)
	if s.InBoth > 0 {
		p.f(", in both queues %d", s.InBoth)
	}
	p.f("\n")
	if s.Failed > 0 {
		p.f("failed messages could not be sent and are still in the dead-letter queue\n")
	}
	if s.InBoth > 0 {
		p.f("messages in both queues were sent but not deleted from the dead-letter queue: the next redrive sends them again,\n" +
			"and the worker answers a job's second delivery from its result (one result and one model call per job_id)\n")
	}
	if s.Interrupted {
		p.f("interrupted: every message is in exactly one queue; run the same command again to move the rest\n")
	}
	return p.e
}
