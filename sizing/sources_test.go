package sizing_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
)

// kumoURL is the one kumo server of the test binary; kumo instances share
// one storage, so every test uses its own bucket.
var kumoURL string

func TestMain(m *testing.M) { os.Exit(emulator.RunTests(m, &kumoURL)) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// pinnedTiers is the shipped default with Haiku's token prices pinned at
// $1 in and $5 out per million, the prices this package's hand-computed
// expectations use, whatever the shipped default lists today.
func pinnedTiers() *tiering.Config {
	c := tiering.Default()
	for i := range c.Tiers {
		if c.Tiers[i].ModelID == haiku {
			c.Tiers[i].Prices.InputPerMTok, c.Tiers[i].Prices.OutputPerMTok = 1, 5
		}
	}
	return c
}

const (
	haiku = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
	nova  = "us.amazon.nova-micro-v1:0"
)

// TestEMFSourcePipelineLines reads the EMF golden the pipeline's own tests
// keep (testdata/results/emf-lines.jsonl), so a change to the line format
// breaks here too.
func TestEMFSourcePipelineLines(t *testing.T) {
	t.Parallel()
	d, err := (&sizing.EMFSource{Paths: []string{"../testdata/results/emf-lines.jsonl"}, Tiers: pinnedTiers()}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Models) != 1 || d.Models[0].ModelID != haiku {
		t.Fatalf("models = %v, want only %s (the failed job has ModelId none)", modelIDs(d), haiku)
	}
	var sum sizing.Minute
	for _, m := range d.Models[0].Minutes {
		sum.InputTokens += m.InputTokens
		sum.OutputTokens += m.OutputTokens
		sum.Throttles += m.Throttles
		sum.Requests += m.Requests
		sum.CostUSD += m.CostUSD
	}
	// 1,200 × $1/M + 310 × $5/M = 0.0012 + 0.00155 = 0.00275.
	if sum.InputTokens != 1200 || sum.OutputTokens != 310 || sum.Throttles != 2 || sum.Requests != 1 || !near(sum.CostUSD, 0.00275) {
		t.Errorf("Haiku totals = %+v, want 1,200 in, 310 out, 2 throttles, 1 request, $0.00275", sum)
	}
	want := []sizing.JobTotals{
		{Tier: "none", Tenant: "", Jobs: 1}, // the failed job: no model, sorted first
		{Tier: "standard", Tenant: "acme", Jobs: 1, InputTokens: 1200, OutputTokens: 310, ModelCostUSD: 0.00275, RecordedCostUSD: 0.00275},
	}
	if len(d.Totals) != len(want) {
		t.Fatalf("job totals %+v, want %+v", d.Totals, want)
	}
	for i, w := range want {
		g := d.Totals[i]
		if g.Tier != w.Tier || g.Tenant != w.Tenant || g.Jobs != w.Jobs || g.InputTokens != w.InputTokens || g.OutputTokens != w.OutputTokens ||
			!near(g.ModelCostUSD, w.ModelCostUSD) || !near(g.RecordedCostUSD, w.RecordedCostUSD) || g.Unpriced != 0 {
			t.Errorf("totals[%d] = %+v, want %+v", i, g, w)
		}
	}
	if got := d.End.Sub(d.Start); got != time.Minute {
		t.Errorf("window = %v, want one minute", got)
	}
}

func modelIDs(d *sizing.Data) []string {
	var ids []string
	for _, m := range d.Models {
		ids = append(ids, m.ModelID)
	}
	return ids
}

func TestEMFSourceSkipsAndErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"_aws":{"Timestamp":1795521601250},"Tier":"economy","ModelId":"` + nova + `","InputTokens":1000.0,"OutputTokens":100,"CostUSD":0.1,"Throttles":0,"JobId":"a","Status":"succeeded","Tenant":"t"}`
	// The limiter's EMF lines share ModelId but carry no JobId: ignored,
	// not counted as skipped.
	limiter := `{"_aws":{"Timestamp":1795567466292,"CloudWatchMetrics":[{"Namespace":"tierq","Dimensions":[["ModelId"]],"Metrics":[{"Name":"InFlight","Unit":"Count"}]}]},"ModelId":"` + nova + `","InFlight":0}`
	mixed := write("mixed.emf", "starting worker\n"+good+"\n\n{\"ModelId\":\"x\"}\n"+`{"_aws":{"Timestamp":1},"JobId":"z","ModelId":""}`+"\n"+limiter+"\n")
	write("b.emf", strings.Replace(good, `"JobId":"a"`, `"JobId":"b"`, 1)+"\n") // another job: the same line twice is a duplicate
	onlyNoise := write("noise.log", "hello\nworld\n")

	d, err := (&sizing.EMFSource{Paths: []string{mixed}, Tiers: pinnedTiers()}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Warnings) != 1 || !contains(d.Warnings[0], "3 lines skipped as not tierq EMF job lines") || !contains(d.Warnings[0], "mixed.emf:1: not a JSON object") {
		t.Errorf("warnings = %q, want 3 skipped lines with the first quoted", d.Warnings)
	}
	// 1,000 × 0.035/M + 100 × 0.14/M: the tokens' price, not the line's CostUSD.
	if got := d.Models[0].Minutes[0].CostUSD; !near(got, 0.000049) {
		t.Errorf("cost = %v, want 0.000049 from the tiers' prices", got)
	}

	glob := filepath.Join(dir, "*.emf")
	d, err = (&sizing.EMFSource{Paths: []string{glob, mixed}, Tiers: pinnedTiers()}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Inputs) != 2 || len(d.Totals) != 1 || d.Totals[0].Jobs != 2 {
		t.Errorf("glob read %v with totals %+v, want 2 files (mixed.emf once) and 2 jobs", d.Inputs, d.Totals)
	}

	for name, tc := range map[string]struct {
		src  sizing.EMFSource
		want string
	}{
		"no files":       {sizing.EMFSource{Tiers: pinnedTiers()}, "no files given"},
		"glob no match":  {sizing.EMFSource{Paths: []string{filepath.Join(dir, "*.none")}, Tiers: pinnedTiers()}, "matches no files"},
		"missing file":   {sizing.EMFSource{Paths: []string{filepath.Join(dir, "absent.emf")}, Tiers: pinnedTiers()}, "no such file"},
		"no EMF in file": {sizing.EMFSource{Paths: []string{onlyNoise}, Tiers: pinnedTiers()}, "no tierq EMF job lines in any file: " + onlyNoise + " (" + onlyNoise + ":1: not a JSON object)"},
		"no tiers":       {sizing.EMFSource{Paths: []string{mixed}}, "no tiers configuration"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.src.Series(t.Context())
			if err == nil || !contains(err.Error(), tc.want) {
				t.Errorf("Series() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEMFSourceUnpricedModel(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "m.emf")
	line := `{"_aws":{"Timestamp":1795521601250},"Tier":"x","ModelId":"mystery","InputTokens":10,"OutputTokens":1,"CostUSD":0.5,"Throttles":0,"JobId":"a","Status":"succeeded","Tenant":""}` + "\n"
	if err := os.WriteFile(p, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := (&sizing.EMFSource{Paths: []string{p}, Tiers: pinnedTiers()}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tot := d.Totals[0]; d.Models[0].Priced || tot.Unpriced != 1 || tot.ModelCostUSD != 0 || tot.RecordedCostUSD != 0.5 {
		t.Errorf("model priced %v, totals %+v; want unpriced with the recorded cost kept", d.Models[0].Priced, tot)
	}
}

// TestDirResults reads the result goldens the pipeline's tests keep.
func TestDirResults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	goldens, err := filepath.Glob("../testdata/results/result-*.json")
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no result goldens: %v", err)
	}
	for _, g := range goldens {
		raw, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(g)), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"notes.txt": "not a result", "v2.json": `{"version":"2","job_id":"x"}`} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	d, err := (&sizing.DirResults{Dir: dir}).Series(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkResultsData(t, d, len(goldens))
	if len(d.Warnings) != 1 || !contains(d.Warnings[0], `1 object skipped as not result v1, e.g. `+filepath.Join(dir, "v2.json")+`: result version "2", want "1"`) {
		t.Errorf("warnings = %q, want v2.json skipped (notes.txt is not *.json)", d.Warnings)
	}

	_, err = (&sizing.DirResults{Dir: t.TempDir()}).Series(t.Context())
	if err == nil || !contains(err.Error(), "no result files (*.json)") {
		t.Errorf("empty folder: Series() = %v, want a no-result-files error", err)
	}
}

// checkResultsData checks what the result goldens must give, whichever
// store they came from.
func checkResultsData(t *testing.T, d *sizing.Data, files int) {
	t.Helper()
	if d.Source != "results" || !contains(d.CostBasis, "each model call in a result's calls attributed to the model that made it") {
		t.Errorf("source %q, cost basis %q; want results, per call", d.Source, d.CostBasis)
	}
	jobs := 0
	var escalated *sizing.JobTotals
	for i, tot := range d.Totals {
		jobs += tot.Jobs
		if tot.Tier == "standard" && tot.Tenant == "acme" {
			escalated = &d.Totals[i]
		}
	}
	if jobs != files {
		t.Errorf("%d jobs, want %d (one per golden)", jobs, files)
	}
	// Only result-escalated.json finished on standard, so the job counts
	// there; of its two calls only the second ran on standard: Haiku, 83 in
	// and 100 out, recorded cost.total_usd 0.0012913 of which guardrail
	// 0.00065, so model cost 0.0000913 + 0.00055 = 0.0006413. (Without a
	// tiers file the recorded model cost is used.)
	if escalated == nil || escalated.Jobs != 1 || escalated.InputTokens != 83 || escalated.OutputTokens != 100 ||
		!near(escalated.RecordedCostUSD, 0.0012913) || !near(escalated.ModelCostUSD, 0.0006413) {
		t.Errorf("standard/acme totals = %+v; want 1 job, its standard call only: 83 in, 100 out, recorded 0.0012913, model 0.0006413", escalated)
	}
	byTier := map[string]int{}
	for _, tot := range d.Totals {
		byTier[tot.Tier] += tot.Jobs
	}
	if byTier["none"] != 1 || byTier["economy"] != 4 {
		t.Errorf("jobs by tier %v, want the failed job under none and 4 on economy", byTier)
	}
	for _, m := range d.Models {
		// The calls record throttles, so zero means none, not unknown.
		if !m.ThrottlesKnown || !m.CallRecords || m.JobRecords {
			t.Errorf("model %s: throttles known %v, call records %v, job records %v; want true, true, false (every golden lists its calls)",
				m.ModelID, m.ThrottlesKnown, m.CallRecords, m.JobRecords)
		}
	}
}

func TestS3Results(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := emulator.S3(kumoURL)
	bucket := emulator.Name(t, "sizing")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	goldens, _ := filepath.Glob("../testdata/results/result-*.json")
	put := func(key string, body []byte) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range goldens {
		raw, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		put("results/"+filepath.Base(g), raw)
	}
	put("results/broken.json", []byte("{"))
	put("results/readme.txt", []byte("ignored"))
	put("other/result-x.json", []byte("{}")) // outside the prefix

	d, err := (&sizing.S3Results{Client: c, Bucket: bucket, Prefix: "results/", Concurrency: 3}).Series(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkResultsData(t, d, len(goldens))
	if len(d.Warnings) != 1 || !contains(d.Warnings[0], "s3://"+bucket+"/results/broken.json: not a result object") {
		t.Errorf("warnings = %q, want broken.json skipped", d.Warnings)
	}
	if d.Inputs[0] != "s3://"+bucket+"/results/" {
		t.Errorf("inputs = %v, want the prefix", d.Inputs)
	}

	_, err = (&sizing.S3Results{Client: c, Bucket: bucket, Prefix: "nothing/"}).Series(ctx)
	if err == nil || !contains(err.Error(), "no result objects (*.json) under s3://"+bucket+"/nothing/") {
		t.Errorf("empty prefix: Series() = %v, want a no-results error", err)
	}
	_, err = (&sizing.S3Results{Client: c, Bucket: emulator.Name(t, "sizing")}).Series(ctx)
	if err == nil || !contains(err.Error(), "list results in s3://") {
		t.Errorf("missing bucket: Series() = %v, want a list error naming the bucket", err)
	}
}

// failingStore fails GetObject, to check the first error wins over the
// cancellation it causes.
type failingStore struct {
	*s3.Client
}

func (failingStore) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return nil, errors.New("access denied")
}

func TestS3ResultsGetError(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := emulator.S3(kumoURL)
	bucket := emulator.Name(t, "sizing")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("r/a.json"), Body: bytes.NewReader([]byte("{}"))}); err != nil {
		t.Fatal(err)
	}
	_, err := (&sizing.S3Results{Client: failingStore{c}, Bucket: bucket, Prefix: "r/"}).Series(ctx)
	if err == nil || !contains(err.Error(), "get result s3://"+bucket+"/r/a.json: access denied") {
		t.Errorf("Series() = %v, want the GetObject error naming the key", err)
	}
}
