package submit

import (
	"fmt"
	"io"
	"strings"
)

// barWidth is the number of cells in the terminal progress bar.
const barWidth = 20

// progress reports a run's progress. On a terminal it redraws one line in
// place; elsewhere (CI logs, files) it writes a line at each tenth, because
// carriage returns make a log unreadable. It is used from one goroutine.
type progress struct {
	w        io.Writer
	terminal bool
	total    int

	done, uploaded, failed, skipped int
	bytes                           int64

	tenth int // the last tenth reported when not on a terminal
	drawn int // length of the bar line on screen, 0 if none
}

func newProgress(w io.Writer, terminal bool, total int) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, terminal: terminal, total: total}
}

func (p *progress) line() string {
	return fmt.Sprintf("%d/%d jobs  %d uploaded  %d failed  %s", p.done, p.total, p.uploaded, p.failed, formatBytes(p.bytes))
}

// update reports the counters after a change.
func (p *progress) update() {
	if p.total == 0 {
		return
	}
	if p.terminal {
		p.redraw(bar(p.done, p.total) + " " + p.line())
		return
	}
	if t := p.done * 10 / p.total; t > p.tenth {
		p.tenth = t
		fmt.Fprintf(p.w, "submit: %3d%%  %s\n", p.done*100/p.total, p.line())
	}
}

// note prints a line of its own (a skipped input, a failed job) without
// breaking the bar.
func (p *progress) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.terminal && p.drawn > 0 {
		p.redraw(msg)
		fmt.Fprintln(p.w)
		p.drawn = 0 // the caller's next update draws the bar below
		return
	}
	fmt.Fprintln(p.w, msg)
}

// redraw replaces the bar line, blanking what a longer previous one left.
func (p *progress) redraw(s string) {
	pad := max(0, p.drawn-len(s))
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
	p.drawn = len(s)
}

// finish ends the bar and writes the summary line, always.
func (p *progress) finish(s Summary) {
	if p.terminal && p.drawn > 0 {
		fmt.Fprintln(p.w)
		p.drawn = 0
	}
	fmt.Fprintf(p.w, "submit: sent %d, uploaded %d, skipped %d, failed %d", s.Sent, s.Uploaded, len(s.Skipped), len(s.Failed))
	if s.NotSent > 0 {
		fmt.Fprintf(p.w, ", not sent %d (stopped early)", s.NotSent)
	}
	fmt.Fprintf(p.w, " (%s)\n", formatBytes(s.Bytes))
	if ids := s.FailedJobIDs(); len(ids) > 0 {
		fmt.Fprintf(p.w, "submit: failed job IDs: %s\n", strings.Join(ids, " "))
	}
}

// bar draws [=====>    ] for done of total.
func bar(done, total int) string {
	filled := min(barWidth, done*barWidth/max(total, 1))
	var b strings.Builder
	b.WriteByte('[')
	switch {
	case filled == barWidth:
		b.WriteString(strings.Repeat("=", barWidth))
	case filled > 0:
		b.WriteString(strings.Repeat("=", filled-1) + ">" + strings.Repeat(" ", barWidth-filled))
	default:
		b.WriteString(strings.Repeat(" ", barWidth))
	}
	b.WriteByte(']')
	return b.String()
}

// formatBytes shows a byte count as people read transfer sizes.
func formatBytes(n int64) string {
	switch {
	case n < 1<<20:
		return fmt.Sprintf("%d KiB", (n+512)>>10)
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}
