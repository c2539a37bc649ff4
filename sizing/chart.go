package sizing

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tierq/tierq/tiering"
)

// Charts are drawn as inline SVG from geometry computed here, so the HTML
// report needs no script and no network. Coordinates are in SVG user units.

const (
	chartW      = 1040.0
	chartLeft   = 72.0
	chartRight  = 150.0 // room for line labels
	chartTop    = 16.0
	chartBottom = 36.0
	// maxPoints bounds a line's points: a 31-day trace has 44,640 minutes,
	// more than a chart can show; each point is the busiest minute of its
	// bucket, so peaks survive.
	maxPoints = 600
)

var shortTerm = map[tiering.Term]string{
	tiering.TermNoCommitment: "no commitment",
	tiering.TermOneMonth:     "1 month",
	tiering.TermSixMonths:    "6 months",
}

var termColors = map[tiering.Term]string{
	tiering.TermNoCommitment: "#dc2626",
	tiering.TermOneMonth:     "#d97706",
	tiering.TermSixMonths:    "#15803d",
}

type chart struct {
	Title, Caption string
	W, H           float64
	X0, Y0, X1, Y1 float64 // plot area
	XTicks, YTicks []tick
	Lines          []line
	HLines         []hline
	Bars           []bar
	Dots           []dot
	Marks          []float64 // x of throttled buckets
	Legend         []legend
}

type tick struct {
	Pos   float64
	Label string
}

type line struct {
	Points, Color, Dash string
}

type hline struct {
	Y            float64
	Color, Dash  string
	Label, Value string
	// LabelY is where the label sits: at the line, or moved just enough
	// not to overlap a neighbour's.
	LabelY float64
}

// labelGap is the least vertical distance between two line labels.
const labelGap = 13.0

// spreadLabels places the horizontal lines' labels top to bottom without
// overlaps.
func (c *chart) spreadLabels() {
	idx := make([]int, len(c.HLines))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(c.HLines[a].Y, c.HLines[b].Y) })
	prev := math.Inf(-1)
	for _, i := range idx {
		h := &c.HLines[i]
		h.LabelY = max(h.Y, prev+labelGap)
		prev = h.LabelY
	}
	// Labels pushed below the plot move back up together.
	if over := prev - c.Y1; over > 0 {
		for _, i := range idx {
			c.HLines[i].LabelY -= over
		}
	}
}

type bar struct {
	X, Y, W, H float64
	Color      string
	Title      string
	// Label is drawn after the bar (split charts).
	Label string
}

type dot struct {
	X, Y  float64
	Color string
}

type legend struct {
	Color, Dash, Label string
	Box                bool
}

func newChart(title string, h float64) *chart {
	return &chart{Title: title, W: chartW, H: h, X0: chartLeft, Y0: chartTop, X1: chartW - chartRight, Y1: h - chartBottom}
}

// y maps a value in [0, top] to the plot.
func (c *chart) y(v, top float64) float64 { return c.Y1 - v/top*(c.Y1-c.Y0) }

// yAxis picks a round top and ticks for values up to max.
func (c *chart) yAxis(maxV float64, label func(float64) string) float64 {
	if maxV <= 0 {
		maxV = 1
	}
	step := niceStep(maxV * 1.08 / 5)
	top := math.Ceil(maxV*1.08/step) * step
	for v := 0.0; v <= top+step/2; v += step {
		c.YTicks = append(c.YTicks, tick{c.y(v, top), label(v)})
	}
	return top
}

// niceStep rounds a raw step up to 1, 2, 2.5 or 5 × 10^k.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// timeTicks labels the x axis of a time chart over [start, start+n minutes).
func (c *chart) timeTicks(start time.Time, n int) {
	span := time.Duration(n) * time.Minute
	var step time.Duration
	var layout string
	switch {
	case span >= 48*time.Hour:
		days := max(1, int(math.Ceil(span.Hours()/24/8)))
		step, layout = time.Duration(days)*24*time.Hour, "Jan 2"
	case span >= 2*time.Hour:
		hours := max(1, int(math.Ceil(span.Hours()/8)))
		step, layout = time.Duration(hours)*time.Hour, "Jan 2 15:04"
	default:
		minutes := max(1, int(math.Ceil(span.Minutes()/8)))
		step, layout = time.Duration(minutes)*time.Minute, "15:04"
	}
	first := start.Truncate(step)
	if first.Before(start) {
		first = first.Add(step)
	}
	for t := first; !t.After(start.Add(span)); t = t.Add(step) {
		x := c.X0 + t.Sub(start).Minutes()/float64(n)*(c.X1-c.X0)
		c.XTicks = append(c.XTicks, tick{x, t.Format(layout)})
	}
}

// tokensChart draws one dimension's tokens per minute with its P95, the
// required tokens and the provisioned capacity.
func tokensChart(d *Data, m *ModelReport, dim string, limit *Limit, headroom float64) *chart {
	s := m.series
	n := len(s.Minutes)
	value := func(x Minute) float64 {
		switch dim {
		case DimInput:
			return x.InputTokens
		case DimOutput:
			return x.OutputTokens
		}
		return x.Tokens()
	}
	p95 := map[string]Percentiles{DimInput: m.InputTPM, DimOutput: m.OutputTPM, DimTotal: m.TotalTPM}[dim]
	c := newChart(fmt.Sprintf("%s tokens per minute", dim), 280)
	nb := min(n, maxPoints)
	if nb == 0 {
		return nil
	}
	ys := make([]float64, nb)
	throttled := make([]bool, nb)
	for b := range nb {
		lo, hi := b*n/nb, (b+1)*n/nb
		for _, x := range s.Minutes[lo:hi] {
			ys[b] = max(ys[b], value(x))
			throttled[b] = throttled[b] || x.Throttles > 0
		}
	}
	top := p95.Max
	var capacity float64
	if limit != nil {
		capacity = float64(m.Sizing.Units) * limit.PerUnit
		top = max(top, capacity, limit.Required)
	}
	top = c.yAxis(top, fmtNum)
	xOf := func(b int) float64 { return c.X0 + (float64(b)+0.5)/float64(nb)*(c.X1-c.X0) }
	var pts strings.Builder
	for b, v := range ys {
		fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(b), c.y(v, top))
		if throttled[b] {
			c.Marks = append(c.Marks, xOf(b))
		}
	}
	color := map[string]string{DimInput: "#2563eb", DimOutput: "#ea580c", DimTotal: "#7c3aed"}[dim]
	c.Lines = append(c.Lines, line{Points: strings.TrimSpace(pts.String()), Color: color})
	if nb <= 60 {
		for b, v := range ys {
			c.Dots = append(c.Dots, dot{xOf(b), c.y(v, top), color})
		}
	}
	c.HLines = append(c.HLines, hline{Y: c.y(p95.P95, top), Color: "#475569", Dash: "6 4", Label: "P95", Value: fmtNum(p95.P95)})
	c.Legend = append(c.Legend, legend{Color: color, Label: dim + " tokens/min (busiest minute per point)"}, legend{Color: "#475569", Dash: "6 4", Label: "P95"})
	if limit != nil {
		c.HLines = append(c.HLines,
			hline{Y: c.y(limit.Required, top), Color: "#0f766e", Dash: "2 3", Label: fmt.Sprintf("P95 + %s", fmtPct(headroom)), Value: fmtNum(limit.Required)},
			hline{Y: c.y(capacity, top), Color: "#dc2626", Label: fmt.Sprintf("%d unit%s", m.Sizing.Units, plural(m.Sizing.Units)), Value: fmtNum(capacity)})
		c.Legend = append(c.Legend, legend{Color: "#0f766e", Dash: "2 3", Label: "required"}, legend{Color: "#dc2626", Label: "provisioned capacity"})
	}
	if len(c.Marks) > 0 {
		c.Legend = append(c.Legend, legend{Color: "#b91c1c", Label: "throttled", Box: true})
	}
	c.timeTicks(d.Start, n)
	c.spreadLabels()
	per := max(1, n/nb)
	c.Caption = fmt.Sprintf("Each point is the busiest minute of %s.", plainMinutes(per))
	if n <= maxPoints {
		c.Caption = "One point per minute."
	}
	return c
}

func plainMinutes(n int) string {
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}

// dailyChart draws each day's on-demand cost as bars and each priced term's
// cost for the same hours as a step line.
func dailyChart(m *ModelReport) *chart {
	if len(m.Daily) == 0 || !m.OnDemand.Priced {
		return nil
	}
	type termLine struct {
		term   tiering.Term
		hourly float64
	}
	var terms []termLine
	if m.Sizing != nil {
		for _, t := range m.Sizing.Terms {
			if t.Priced {
				terms = append(terms, termLine{t.Term, t.HourlyPerUnit * float64(m.Sizing.Units)})
			}
		}
	}
	title := "daily cost: on-demand against each priced provisioned term"
	if len(terms) == 0 {
		title = "daily on-demand cost (no provisioned term to compare: see below)"
	}
	c := newChart(title, 260)
	top := 0.0
	for _, d := range m.Daily {
		top = max(top, d.OnDemandUSD)
		for _, t := range terms {
			top = max(top, t.hourly*d.Hours)
		}
	}
	top = c.yAxis(top, func(v float64) string { return fmtUSD(v) })
	slot := (c.X1 - c.X0) / float64(len(m.Daily))
	every := max(1, int(math.Ceil(float64(len(m.Daily))/10)))
	for i, d := range m.Daily {
		x := c.X0 + float64(i)*slot
		y := c.y(d.OnDemandUSD, top)
		title := fmt.Sprintf("%s: %s on-demand", d.Day, fmtUSD(d.OnDemandUSD))
		if d.Hours < 24 {
			title += fmt.Sprintf(" (%s of the day)", formatDays(d.Hours/24))
		}
		w := min(slot*0.7, 48) // one day alone is a bar, not a wall
		c.Bars = append(c.Bars, bar{X: x + (slot-w)/2, Y: y, W: w, H: c.Y1 - y, Color: "#60a5fa", Title: title})
		if i%every == 0 {
			t, _ := time.Parse(time.DateOnly, d.Day)
			c.XTicks = append(c.XTicks, tick{x + slot/2, dayLabel(t)})
		}
	}
	c.Legend = append(c.Legend, legend{Color: "#60a5fa", Label: "on-demand", Box: true})
	for _, t := range terms {
		var pts strings.Builder
		for i, d := range m.Daily {
			x := c.X0 + float64(i)*slot
			y := c.y(t.hourly*d.Hours, top)
			fmt.Fprintf(&pts, "%.1f,%.1f %.1f,%.1f ", x, y, x+slot, y)
		}
		c.Lines = append(c.Lines, line{Points: strings.TrimSpace(pts.String()), Color: termColors[t.term]})
		full := t.hourly * 24
		c.HLines = append(c.HLines, hline{Y: c.y(full, top), Label: fmtUSD(full), Value: shortTerm[t.term]})
		c.Legend = append(c.Legend, legend{Color: termColors[t.term], Label: fmt.Sprintf("%s (%d unit%s)", termText(t.term), m.Sizing.Units, plural(m.Sizing.Units))})
	}
	c.spreadLabels()
	return c
}

// splitChart draws a cost table as horizontal bars.
func splitChart(title string, rows []CostRow) *chart {
	if len(rows) == 0 {
		return nil
	}
	const rowH = 30.0
	c := newChart(title, chartTop+rowH*float64(len(rows))+8)
	c.X0, c.Y1 = 130, chartTop+rowH*float64(len(rows))
	top := 0.0
	for _, r := range rows {
		top = max(top, r.RecordedCostUSD)
	}
	if top <= 0 {
		top = 1
	}
	for i, r := range rows {
		y := c.Y0 + float64(i)*rowH
		w := r.RecordedCostUSD / top * (c.X1 - c.X0)
		value := fmt.Sprintf("%s (%s)", fmtUSD(r.RecordedCostUSD), fmtPct(r.Share))
		c.Bars = append(c.Bars, bar{c.X0, y + 5, math.Max(w, 1), rowH - 10, "#818cf8", r.Name + " " + value, value})
		c.YTicks = append(c.YTicks, tick{y + rowH/2, r.Name})
	}
	return c
}
