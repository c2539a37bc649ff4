package sizing

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

//go:embed report.html.tmpl
var reportTemplate string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"usd":  fmtUSD,
	"num":  fmtNum,
	"pct":  fmtPct,
	"days": formatDays,
	"f1":   func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"join": strings.Join,
	"deref": func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"termText":  termText,
	"cannotPay": func() string { return cannotPayText },
	"hour":      func(h int) string { return fmt.Sprintf("%02d:00", h) },
	"float":     func(n int) float64 { return float64(n) },
	"float64":   func(n int64) float64 { return float64(n) },
	"add": func(vs ...float64) float64 {
		var s float64
		for _, v := range vs {
			s += v
		}
		return s
	},
	"sub": func(a, b float64) float64 { return a - b },
	"div": func(a, b float64) float64 { return a / b },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
}).Parse(reportTemplate))

type htmlView struct {
	*Report
	Models    []modelView
	TierChart *chart
}

type modelView struct {
	ModelReport
	Charts  []*chart
	Daily   *chart
	Minutes int
}

// WriteHTML writes a self-contained HTML report: inline CSS and SVG charts,
// no script and nothing fetched, so it opens offline and can be mailed.
func (r *Report) WriteHTML(w io.Writer) error {
	v := htmlView{Report: r, TierChart: splitChart("recorded cost by tier", r.Tiers)}
	for _, m := range r.Models {
		mv := modelView{ModelReport: m, Minutes: len(m.series.Minutes)}
		if m.Sizing != nil {
			for i := range m.Sizing.Limits {
				l := &m.Sizing.Limits[i]
				if c := tokensChart(r.data, &m, l.Dimension, l, r.Headroom); c != nil {
					mv.Charts = append(mv.Charts, c)
				}
			}
		} else if c := tokensChart(r.data, &m, DimTotal, nil, r.Headroom); c != nil {
			mv.Charts = append(mv.Charts, c)
		}
		mv.Daily = dailyChart(&m)
		v.Models = append(v.Models, mv)
	}
	if err := htmlTemplate.Execute(w, v); err != nil {
		return fmt.Errorf("write sizing HTML: %w", err)
	}
	return nil
}
