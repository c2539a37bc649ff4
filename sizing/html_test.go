package sizing_test

import (
	"bytes"
	"context"
	"flag"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/sizing"
)

var (
	chromium   = flag.Bool("chromium", false, "render the sample report in headless Chromium (make report-check)")
	screenshot = flag.String("screenshot", "", "with -chromium, also write the screenshot here")
)

func TestHTMLSelfContained(t *testing.T) {
	t.Parallel()
	rep, _ := buildScenario(t, "../testdata/sizing/steady-31d")
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	// Nothing may be fetched: the report must open offline and by mail.
	for _, banned := range []string{"<script", "src=", "href=", "@import", "url(", "http://", "https://"} {
		if strings.Contains(strings.ToLower(page), banned) {
			t.Errorf("HTML report contains %q; it must be self-contained", banned)
		}
	}
	for _, want := range []string{
		"<svg",
		"input tokens per minute",       // tokens chart per sized dimension
		"P95 50,000",                    // its P95 line
		"3 units 75,000",                // its provisioned-capacity line
		"daily cost: on-demand against", // daily cost chart
		"recorded cost by tier",         // cost split
		"Buy 3 units of provisioned throughput, 6-month commitment",
		"not priced: supply provisioned[&#34;us.anthropic.claude-sonnet-4-5-20250929-v1:0&#34;].hourly_price_per_unit.one_month",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	// A polyline of a 44,640-minute trace is bucketed, not drawn per minute.
	for _, m := range regexp.MustCompile(`points="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if n := len(strings.Fields(m[1])); n > 2*600 {
			t.Errorf("a polyline has %d points, want at most 1,200 (600 buckets, or 2 per day for steps)", n)
		}
	}
	if got := strings.Count(page, "<figure>"); got != 8 {
		t.Errorf("%d charts, want 8 (Haiku input, output, daily; Sonnet input, daily; Nova total, daily; tier split)", got)
	}
}

// TestHTMLShortData renders a report from a few seconds of traffic, as the
// demo produces: the charts must cope with one minute.
func TestHTMLShortData(t *testing.T) {
	t.Parallel()
	tiers := loadTiers(t, "../testdata/sizing/steady-31d/tiers.yaml")
	dir := t.TempDir()
	emf := filepath.Join(dir, "metrics.emf")
	lines := `{"_aws":{"Timestamp":1795521601250},"Tier":"standard","ModelId":"us.anthropic.claude-haiku-4-5-20251001-v1:0","InputTokens":1200,"OutputTokens":310,"CostUSD":0.00275,"Throttles":2,"JobId":"a","Status":"succeeded","Tenant":"acme"}
{"_aws":{"Timestamp":1795521603000},"Tier":"standard","ModelId":"us.anthropic.claude-haiku-4-5-20251001-v1:0","InputTokens":800,"OutputTokens":100,"CostUSD":0.0013,"Throttles":0,"JobId":"b","Status":"succeeded","Tenant":"globex"}
`
	if err := os.WriteFile(emf, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := sizing.DefaultConfig(tiers)
	cfg.Now = fixedNow
	rep, err := sizing.Build(t.Context(), &sizing.EMFSource{Paths: []string{emf}, Tiers: tiers}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Days*1440 != 1 {
		t.Errorf("window = %v days, want one minute", rep.Days)
	}
	if !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "less than 30 days") }) {
		t.Errorf("warnings %q lack the short-data warning", rep.Warnings)
	}
	if v := rep.Models[0].Recommendation.Verdict; v != sizing.VerdictInsufficientData {
		t.Errorf("verdict = %s, want %s", v, sizing.VerdictInsufficientData)
	}
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"NaN", "Inf"} {
		if strings.Contains(buf.String(), bad) {
			t.Errorf("HTML of one minute of data contains %s", bad)
		}
	}
	if !strings.Contains(buf.String(), "<circle") {
		t.Error("one point is drawn as a dot, but the HTML has none")
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "No commitment recommendation: only 1 minute of data") {
		t.Errorf("text report lacks the no-commitment sentence:\n%s", text.String())
	}
}

// TestReportInChromium renders the sample report in headless Chromium and
// checks the screenshot shows it. It needs Debian's chromium package, so it
// runs only with -chromium (make report-check); -update refreshes
// testdata/sizing/report.png.
func TestReportInChromium(t *testing.T) {
	if !*chromium {
		t.Skip("needs -chromium (make report-check) and Debian's chromium package")
	}
	bin := os.Getenv("TIERQ_CHROMIUM")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("chromium"); err != nil {
			t.Fatalf("chromium not found (apt-get install -y chromium, or set TIERQ_CHROMIUM): %v", err)
		}
	}
	rep, _ := buildScenario(t, "../testdata/sizing/steady-31d")
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+shot, "--window-size=1280,2000",
		"file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("screenshot is %dx%d, want 1280x2000", b.Dx(), b.Dy())
	}
	// Rendered, not blank: the verdict box's CSS background and the SVG
	// daily-cost bars must both be on screen.
	for name, c := range map[string]color.RGBA{
		"verdict box (#dcfce7)":     {0xdc, 0xfc, 0xe7, 0xff},
		"daily cost bars (#60a5fa)": {0x60, 0xa5, 0xfa, 0xff},
	} {
		if n := countColor(img, c); n < 2000 {
			t.Errorf("screenshot has %d pixels of the %s, want at least 2,000: the report did not render", n, name)
		}
	}
	small := paletted(img)
	if *screenshot != "" {
		writePNG(t, *screenshot, small)
		t.Logf("screenshot: %s", *screenshot)
	}
	if *update {
		writePNG(t, "../testdata/sizing/report.png", small)
	}
}

func countColor(img image.Image, want color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == want {
				n++
			}
		}
	}
	return n
}

// paletted reduces a screenshot to its 256 most frequent colours, which
// keeps text and flat charts crisp and the file small enough to commit.
func paletted(img image.Image) *image.Paletted {
	b := img.Bounds()
	counts := map[color.RGBA]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	colors := make([]color.RGBA, 0, len(counts))
	for c := range counts {
		colors = append(colors, c)
	}
	slices.SortFunc(colors, func(a, b color.RGBA) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return int(a.R)<<16 | int(a.G)<<8 | int(a.B) - (int(b.R)<<16 | int(b.G)<<8 | int(b.B))
	})
	pal := make(color.Palette, 0, 256)
	for _, c := range colors[:min(256, len(colors))] {
		pal = append(pal, c)
	}
	out := image.NewPaletted(b, pal)
	index := map[color.RGBA]uint8{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			i, ok := index[c]
			if !ok {
				i = uint8(pal.Index(c))
				index[c] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	return out
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
