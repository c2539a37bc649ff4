package sizing

import (
	"fmt"
	"time"
)

// edgeWarnings reports data at the window's edges that stretches it: the
// first (or last) records separated from the rest by a long stretch with
// none (at least gap), when they are fewer than the rest. The window of a
// file source runs from the first record to the last, so such a stretch
// counts as quiet minutes in every percentile and per-day cost; the
// warning names the records and the --start (or --end) that leaves them
// out. Up to isolated records beyond the gap are called isolated (a stray
// test, a clock error); more are an early or late stretch of the workload.
// A window given explicitly (CloudWatch) is also checked for a long empty
// stretch at either end.
func edgeWarnings(d *Data, gap time.Duration, isolated int) []string {
	act := d.activity
	if len(act) == 0 {
		return nil
	}
	gapMin := int64(gap / time.Minute)
	noun := d.RecordNoun
	if noun == "" {
		noun = "active minute"
	}
	startMin, endMin := unixMinute(d.Start), unixMinute(d.End) // end exclusive
	var out []string
	if lead := act[0].minute - startMin; lead >= gapMin {
		out = append(out, fmt.Sprintf("no %ss in the window's first %s (%s to %s): they count as quiet minutes in every percentile and per-day cost; pass --start %s to leave them out",
			noun, formatDays(float64(lead)/1440), fmtMinute(startMin), fmtMinute(act[0].minute), startFlag(startMin, act[0].minute)))
	}
	total := 0
	for _, a := range act {
		total += a.n
	}
	// The latest long gap with fewer records before it than after, and the
	// earliest with fewer after than before: the stretches to cut.
	cutStart, cutEnd := -1, -1
	before := 0
	// Only files strand records: CloudWatch's window is the one asked for,
	// and its data is the service's own, not a stray line.
	for i := 0; d.RecordNoun != "" && i+1 < len(act); i++ {
		before += act[i].n
		if act[i+1].minute-act[i].minute < gapMin {
			continue
		}
		if before < total-before {
			cutStart = i
		} else if cutEnd < 0 && total-before < before {
			cutEnd = i
		}
	}
	if cutStart >= 0 {
		n := 0
		for _, a := range act[:cutStart+1] {
			n += a.n
		}
		first, last, next := act[0].minute, act[cutStart].minute, act[cutStart+1].minute
		out = append(out, edgeText(noun, n, isolated, first, last, next-last, "before the next", "from the first",
			"--start "+startFlag(last, next)))
	}
	if cutEnd >= 0 {
		n := 0
		for _, a := range act[cutEnd+1:] {
			n += a.n
		}
		prev, first, last := act[cutEnd].minute, act[cutEnd+1].minute, act[len(act)-1].minute
		out = append(out, edgeText(noun, n, isolated, first, last, first-prev, "after the one before", "to the last",
			"--end "+endFlag(prev, first)))
	}
	if tail := endMin - 1 - act[len(act)-1].minute; tail >= gapMin {
		last := act[len(act)-1].minute
		out = append(out, fmt.Sprintf("no %ss in the window's last %s (after %s): they count as quiet minutes in every percentile and per-day cost; pass --end %s to leave them out",
			noun, formatDays(float64(tail)/1440), fmtMinute(last), endFlag(last, endMin)))
	}
	return out
}

// edgeText words one edge warning.
func edgeText(noun string, n, isolated int, first, last, gapMinutes int64, where, edge, flag string) string {
	when := "on " + fmtDay(first)
	if fmtDay(first) != fmtDay(last) {
		when = fmt.Sprintf("from %s to %s", fmtDay(first), fmtDay(last))
	}
	gap := formatDays(float64(gapMinutes) / 1440)
	if n <= isolated {
		verb, it := "is", "it"
		if n != 1 {
			verb, it = "are", "them"
		}
		return fmt.Sprintf("%d %s%s %s %s %s %s; the window runs %s %s — pass %s to leave %s out",
			n, noun, plural(n), when, verb, gap, where, edge, noun, flag, it)
	}
	verb := "are"
	if n == 1 {
		verb = "is"
	}
	return fmt.Sprintf("%s %s%s %s %s %s %s, with none in between: the window runs %s %s, so the empty %s count as quiet minutes in every percentile and per-day cost — pass %s to leave them out",
		fmtDec(float64(n), 0), noun, plural(n), when, verb, gap, where, edge, noun, gap, flag)
}

// startFlag is the --start that keeps next and leaves out last: next's day
// when that day begins after last, else next's minute.
func startFlag(last, next int64) string {
	day := time.Unix(next*60, 0).UTC().Truncate(24 * time.Hour)
	if unixMinute(day) > last {
		return day.Format(time.DateOnly)
	}
	return fmtMinute(next)
}

// endFlag is the (exclusive) --end that keeps prev and leaves out next:
// the day after prev's when that is not after next, else the minute after
// prev.
func endFlag(prev, next int64) string {
	day := time.Unix(prev*60, 0).UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	if unixMinute(day) <= next {
		return day.Format(time.DateOnly)
	}
	return fmtMinute(prev + 1)
}

func fmtMinute(m int64) string { return time.Unix(m*60, 0).UTC().Format(time.RFC3339) }
func fmtDay(m int64) string    { return time.Unix(m*60, 0).UTC().Format(time.DateOnly) }
