package sizing

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// fmtDec formats v with at most decimals decimals, trailing zeros dropped,
// and thousands separated by commas: 60000 → "60,000", 2.40 → "2.4".
func fmtDec(v float64, decimals int) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if hasFrac {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out
}

// fmtNum formats a token count or rate: whole above 100, else 2 decimals.
func fmtNum(v float64) string {
	if math.Abs(v) >= 100 {
		return fmtDec(v, 0)
	}
	return fmtDec(v, 2)
}

// strconvFloat formats a ratio or hour count to 4 decimals at most.
func strconvFloat(v float64) string { return fmtDec(v, 4) }

// fmtUSD formats dollars: cents from a dollar up, else enough decimals to
// show the amount (a job's cost is often under a cent).
func fmtUSD(v float64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	if v >= 1 || v == 0 {
		s := fmtDec(v, 2)
		if !strings.Contains(s, ".") {
			s += ".00"
		} else if len(s)-strings.Index(s, ".") == 2 {
			s += "0"
		}
		return sign + "$" + s
	}
	s := fmtDec(v, 6)
	if len(s) < 4 { // "0.6" → "0.60"
		s += strings.Repeat("0", 4-len(s))
	}
	return sign + "$" + s
}

// fmtPct formats a share: 0.2 → "20%", 0.12333 → "12.3%".
func fmtPct(v float64) string { return fmtDec(v*100, 1) + "%" }

// formatDays says how long a window is in the unit a person would use.
// Days never round up across a whole day: the 30-day rule compares the
// exact figure, and 29.96 days must not print as "30 days" beside "fewer
// than 30", so it prints as 29.9.
func formatDays(days float64) string {
	switch minutes := days * 1440; {
	case minutes < 120:
		n := math.Round(minutes)
		return fmt.Sprintf("%s minute%s", fmtDec(n, 0), plural(int(n)))
	case days < 2:
		return fmtDec(days*24, 1) + " hours"
	default:
		shown := math.Round(days*10) / 10
		if math.Floor(shown) > math.Floor(days) {
			shown = math.Floor(days*10) / 10
		}
		return fmtDec(shown, 1) + " days"
	}
}
