package sizing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
)

var (
	update = flag.Bool("update", false, "rewrite testdata/sizing/*/report.txt (and with -chromium testdata/sizing/report.png)")
	emfOut = flag.String("emf-out", "", "also keep each scenario's generated EMF as DIR/<scenario>.emf, to run tierq sizing on it")
)

// scenario is a golden scenario: a synthetic trace described compactly, and
// the answers computed by hand (in the YAML's comments).
type scenario struct {
	Start    time.Time `yaml:"start"`
	Days     int       `yaml:"days"`
	Headroom *float64  `yaml:"headroom"`
	// Format is "jobs" (the default: one job line per stream-minute, as
	// workers before per-call attribution wrote) or "calls" (a call line
	// and a Kind=job line per job, as workers write now).
	Format  string   `yaml:"format"`
	Streams []stream `yaml:"streams"`
	Expect  struct {
		Days            float64                   `yaml:"days"`
		Warnings        *int                      `yaml:"warnings"`
		WarningsContain []string                  `yaml:"warnings_contain"`
		Models          map[string]map[string]any `yaml:"models"`
		Tiers           map[string]any            `yaml:"tiers"`
		Tenants         map[string]any            `yaml:"tenants"`
		Text            []string                  `yaml:"text"`
	} `yaml:"expect"`
}

// stream is one model/tier/tenant's traffic, the same every day: a level
// every minute, overridden by blocks.
type stream struct {
	ModelID     string  `yaml:"model_id"`
	Tier        string  `yaml:"tier"`
	Tenant      string  `yaml:"tenant"`
	EveryMinute *level  `yaml:"every_minute"`
	Blocks      []block `yaml:"blocks"`
}

type level struct {
	Input     int `yaml:"input"`
	Output    int `yaml:"output"`
	Throttles int `yaml:"throttles"`
	// CacheWrite and Requests apply to the calls format: the minute's
	// tokens are split evenly over Requests jobs (default 1), and the
	// throttles go on the first.
	CacheWrite int `yaml:"cache_write"`
	Requests   int `yaml:"requests"`
}

type block struct {
	At      string `yaml:"at"`
	Minutes int    `yaml:"minutes"`
	level   `yaml:",inline"`
}

// at returns the stream's usage in a minute of the day.
func (s stream) at(minuteOfDay int) (level, error) {
	var l level
	if s.EveryMinute != nil {
		l = *s.EveryMinute
	}
	for _, b := range s.Blocks {
		t, err := time.Parse("15:04", b.At)
		if err != nil {
			return level{}, fmt.Errorf("block at %q: %w", b.At, err)
		}
		from := t.Hour()*60 + t.Minute()
		if minuteOfDay >= from && minuteOfDay < from+b.Minutes {
			l = b.level
		}
	}
	return l, nil
}

func loadScenario(dir string) (scenario, *tiering.Config, error) {
	var sc scenario
	raw, err := os.ReadFile(filepath.Join(dir, "scenario.yaml"))
	if err != nil {
		return sc, nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		return sc, nil, fmt.Errorf("scenario.yaml: %w", err)
	}
	tiersYAML, err := os.ReadFile(filepath.Join(dir, "tiers.yaml"))
	if err != nil {
		return sc, nil, err
	}
	tiers, err := tiering.Load(tiersYAML)
	if err != nil {
		return sc, nil, fmt.Errorf("tiers.yaml: %w", err)
	}
	return sc, tiers, nil
}

func loadTiers(t *testing.T, path string) *tiering.Config {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tiers, err := tiering.Load(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tiers
}

// writeEMF writes the trace as EMF lines, one per stream per minute with
// traffic, stamped 30 s into the minute. CostUSD is what a worker would
// record without a guardrail: the tokens priced with the tiers file.
func writeEMF(sc scenario, tiers *tiering.Config, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var buf []byte
	for day := range sc.Days {
		for minute := range 1440 {
			ts := sc.Start.Add(time.Duration(day)*24*time.Hour + time.Duration(minute)*time.Minute + 30*time.Second)
			for i, s := range sc.Streams {
				l, err := s.at(minute)
				if err != nil {
					return err
				}
				if l.Input == 0 && l.Output == 0 && l.Throttles == 0 && l.CacheWrite == 0 {
					continue
				}
				if sc.Format == "calls" {
					buf = appendCalls(buf, tiers, s, l, ts, fmt.Sprintf("s%d-%d-%d", i, day, minute))
					continue
				}
				var cost float64
				if p, ok := tiers.ModelPrices(s.ModelID); ok {
					cost = p.Cost(tiering.Usage{InputTokens: l.Input, OutputTokens: l.Output}).TotalUSD
				}
				buf = fmt.Appendf(buf, `{"_aws":{"Timestamp":%d},"Tier":%q,"ModelId":%q,"InputTokens":%d,"OutputTokens":%d,"CostUSD":%s,"Throttles":%d,"Attempts":%d,"JobId":"s%d-%d-%d","Status":"succeeded","Tenant":%q}`+"\n",
					ts.UnixMilli(), s.Tier, s.ModelID, l.Input, l.Output, strconv.FormatFloat(cost, 'g', -1, 64), l.Throttles, 1+l.Throttles, i, day, minute, s.Tenant)
			}
		}
		if _, err := f.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	return f.Close()
}

// appendCalls writes one stream-minute in the calls format: per job a
// call line, then its Kind=job line a millisecond later.
func appendCalls(buf []byte, tiers *tiering.Config, s stream, l level, ts time.Time, id string) []byte {
	n := max(l.Requests, 1)
	for r := range n {
		u := tiering.Usage{InputTokens: l.Input / n, OutputTokens: l.Output / n, CacheWriteTokens: l.CacheWrite / n}
		var cost float64
		if p, ok := tiers.ModelPrices(s.ModelID); ok {
			cost = p.Cost(u).TotalUSD
		}
		throttles := 0
		if r == 0 {
			throttles = l.Throttles
		}
		costText := strconv.FormatFloat(cost, 'g', -1, 64)
		buf = fmt.Appendf(buf, `{"_aws":{"Timestamp":%d},"Kind":"call","Tier":%q,"ModelId":%q,"ServiceTier":"default","InputTokens":%d,"OutputTokens":%d,"CacheReadInputTokens":0,"CacheWriteInputTokens":%d,"CostUSD":%s,"Throttles":%d,"JobId":"%s-%d","Tenant":%q}`+"\n",
			ts.UnixMilli(), s.Tier, s.ModelID, u.InputTokens, u.OutputTokens, u.CacheWriteTokens, costText, throttles, id, r, s.Tenant)
		buf = fmt.Appendf(buf, `{"_aws":{"Timestamp":%d},"Kind":"job","Tier":%q,"ModelId":%q,"InputTokens":%d,"OutputTokens":%d,"CostUSD":%s,"Throttles":%d,"Attempts":%d,"JobId":"%s-%d","Status":"succeeded","Tenant":%q}`+"\n",
			ts.UnixMilli()+1, s.Tier, s.ModelID, u.InputTokens, u.OutputTokens, costText, throttles, 1+throttles, id, r, s.Tenant)
	}
	return buf
}

// fixedNow stamps golden reports.
func fixedNow() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) }

// built caches each scenario's report: several tests read the same one, and
// generating and parsing a 31-day trace is the slow part of this package's
// tests under -race.
var built sync.Map // dir → *builtScenario

type builtScenario struct {
	once sync.Once
	rep  *sizing.Report
	sc   scenario
	err  error
}

// buildScenario generates the scenario's EMF file and builds its report.
// The report is shared: callers must not change it.
func buildScenario(t *testing.T, dir string) (*sizing.Report, scenario) {
	t.Helper()
	v, _ := built.LoadOrStore(dir, &builtScenario{})
	b := v.(*builtScenario)
	b.once.Do(func() { b.rep, b.sc, b.err = build(dir) })
	if b.err != nil {
		t.Fatalf("%s: %v", dir, b.err)
	}
	return b.rep, b.sc
}

func build(dir string) (*sizing.Report, scenario, error) {
	sc, tiers, err := loadScenario(dir)
	if err != nil {
		return nil, sc, err
	}
	tmp, err := os.MkdirTemp("", "sizing-scenario-")
	if err != nil {
		return nil, sc, err
	}
	defer os.RemoveAll(tmp)
	emf := filepath.Join(tmp, "metrics.emf")
	if *emfOut != "" {
		if err := os.MkdirAll(*emfOut, 0o755); err != nil {
			return nil, sc, err
		}
		emf = filepath.Join(*emfOut, filepath.Base(dir)+".emf")
	}
	if err := writeEMF(sc, tiers, emf); err != nil {
		return nil, sc, err
	}
	cfg := sizing.DefaultConfig(tiers)
	cfg.Now = fixedNow
	if sc.Headroom != nil {
		cfg.Headroom = *sc.Headroom
	}
	rep, err := sizing.Build(context.Background(), &sizing.EMFSource{Paths: []string{emf}, Tiers: tiers}, cfg)
	if err != nil {
		return nil, sc, fmt.Errorf("Build: %w", err)
	}
	// The golden text names the input; a temporary path differs per run.
	rep.Inputs = []string{filepath.Join(dir, "scenario.yaml") + " (as EMF)"}
	return rep, sc, nil
}

func TestGoldenScenarios(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("../testdata/sizing/*/scenario.yaml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no scenarios found: %v", err)
	}
	for _, path := range dirs {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			rep, sc := buildScenario(t, dir)
			var doc map[string]any
			raw, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			if got := doc["days"].(float64); math.Abs(got-sc.Expect.Days) > 1e-9 {
				t.Errorf("days = %v, want %v", got, sc.Expect.Days)
			}
			warnings, _ := doc["warnings"].([]any)
			if w := sc.Expect.Warnings; w != nil && len(warnings) != *w {
				t.Errorf("%d warnings, want %d: %v", len(warnings), *w, warnings)
			}
			for _, want := range sc.Expect.WarningsContain {
				if !slices.ContainsFunc(warnings, func(w any) bool { return strings.Contains(w.(string), want) }) {
					t.Errorf("no warning contains %q; warnings: %v", want, warnings)
				}
			}
			models := map[string]any{}
			for _, m := range doc["models"].([]any) {
				models[m.(map[string]any)["model_id"].(string)] = m
			}
			for id, fields := range sc.Expect.Models {
				m, ok := models[id]
				if !ok {
					t.Errorf("no model %s in the report", id)
					continue
				}
				checkFields(t, id, m, fields)
			}
			checkFields(t, "tiers", doc["tiers"], sc.Expect.Tiers)
			checkFields(t, "tenants", doc["tenants"], sc.Expect.Tenants)

			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, want := range sc.Expect.Text {
				if !strings.Contains(text.String(), want) {
					t.Errorf("text report lacks %q", want)
				}
			}
			golden(t, filepath.Join(dir, "report.txt"), text.Bytes())
		})
	}
}

// checkFields compares dotted paths into a decoded JSON value with
// expected values. A string ending in "..." is a truncated decimal: the
// value must start with those digits.
func checkFields(t *testing.T, what string, doc any, fields map[string]any) {
	t.Helper()
	for _, path := range slices.Sorted(mapsKeys(fields)) {
		want := fields[path]
		got, ok := lookup(doc, path)
		if !ok {
			t.Errorf("%s: %s missing from the report", what, path)
			continue
		}
		if !matches(got, want) {
			t.Errorf("%s: %s = %v, want %v", what, path, got, want)
		}
	}
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func lookup(doc any, path string) (any, bool) {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[part]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func matches(got, want any) bool {
	switch w := want.(type) {
	case int:
		return matches(got, float64(w))
	case float64:
		g, ok := got.(float64)
		return ok && math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w))
	case string:
		if prefix, ok := strings.CutSuffix(w, "..."); ok {
			g, ok := got.(float64)
			lo, err := strconv.ParseFloat(prefix, 64)
			if !ok || err != nil {
				return false
			}
			decimals := 0
			if _, frac, found := strings.Cut(prefix, "."); found {
				decimals = len(frac)
			}
			return g >= lo && g < lo+math.Pow10(-decimals)
		}
		return got == w
	default:
		return got == want
	}
}

// golden compares got with a file, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./sizing/ -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (go test ./sizing/ -update rewrites it); got:\n%s", path, got)
	}
}
