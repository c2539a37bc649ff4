package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sivchari/kumo"
)

func TestSizingHelpDocumentsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"sizing", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	help := errOut.String()
	for _, flag := range []string{"emf FILE/GLOB", "results s3://bucket/prefix", "cloudwatch", "region REGION", "start WHEN", "end WHEN",
		"model-ids ID,...", "tiers FILE", "headroom float", "json FILE", "html FILE", "tables TABLES", "s3-path-style"} {
		if !strings.Contains(help, "-"+flag+" ") && !strings.Contains(help, "-"+flag+"\n") {
			t.Errorf("help does not document --%s:\n%s", flag, help)
		}
	}
	for _, want := range []string{"AWS DOES NOT PUBLISH TOKENS PER MINUTE PER MODEL UNIT", "provisioned:", "TIERQ_TIERS_FILE",
		"(default 0.2)", "Fewer than 30 days", "730 h", "--start and --end apply to every source"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if !strings.Contains(run2usage(t), "sizing") {
		t.Error("top-level usage does not list sizing")
	}
}

func TestSizingRejectsBadUsageBeforeAWS(t *testing.T) {
	t.Setenv("TIERQ_TIERS_FILE", "")
	cases := map[string]struct {
		args []string
		want []string
	}{
		"no source":   {[]string{"sizing"}, []string{"give exactly one of --emf, --results or --cloudwatch"}},
		"two sources": {[]string{"sizing", "--emf", "x", "--results", "d"}, []string{"exactly one"}},
		"every problem at once": {
			[]string{"sizing", "--emf", "x", "--model-ids", "m", "--start", "soon", "--tables", "tenants", "--headroom", "-1", "--tiers", "/nonexistent.yaml"},
			[]string{"--model-ids applies only to --cloudwatch", `--start: "soon"`, `--tables "tenants"`, "read tiers file"},
		},
		"bad headroom":         {[]string{"sizing", "--emf", "x", "--headroom", "11"}, []string{"headroom: must be between 0 and 10"}},
		"bad window":           {[]string{"sizing", "--cloudwatch", "--start", "yesterday"}, []string{`--start: "yesterday": want RFC 3339`}},
		"window backwards":     {[]string{"sizing", "--cloudwatch", "--start", "2026-10-02", "--end", "2026-10-01"}, []string{"is not after --start"}},
		"emf window backwards": {[]string{"sizing", "--emf", "x", "--start", "2026-10-02", "--end", "2026-10-01"}, []string{"is not after --start"}},
		"bad s3 url":           {[]string{"sizing", "--results", "s3:///prefix"}, []string{"want s3://bucket/prefix"}},
		"stray args":           {[]string{"sizing", "metrics.emf"}, []string{"give EMF files with --emf"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), c.args, &out, &errOut); code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, errOut.String())
			}
			for _, w := range c.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
		})
	}
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 12, 30, 0, 0, time.UTC)
	tests := []struct {
		start, end string
		from, to   time.Time
	}{
		{"", "", now.Add(-31 * 24 * time.Hour), now},
		{"30d", "", now.Add(-30 * 24 * time.Hour), now},
		{"12h", "2026-11-01", time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-10-01T00:00:00Z", "2026-11-01T00:00:00+01:00", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC)},
		{"1.5d", "1h", now.Add(-time.Hour - 36*time.Hour), now.Add(-time.Hour)},
	}
	for _, tt := range tests {
		from, to, err := parseWindow(tt.start, tt.end, now)
		if err != nil || !from.Equal(tt.from) || !to.Equal(tt.to) {
			t.Errorf("parseWindow(%q, %q) = %s, %s, %v; want %s, %s", tt.start, tt.end, from, to, err, tt.from, tt.to)
		}
	}
}

// emfLines are two jobs on the default tiers' models.
const emfLines = `{"_aws":{"Timestamp":1795521601250},"Tier":"standard","ModelId":"us.anthropic.claude-haiku-4-5-20251001-v1:0","InputTokens":1200,"OutputTokens":310,"CostUSD":0.00395,"Throttles":2,"Attempts":3,"JobId":"job-42","Status":"succeeded","Tenant":"acme"}
{"_aws":{"Timestamp":1795521611250},"Tier":"economy","ModelId":"us.amazon.nova-micro-v1:0","InputTokens":1000,"OutputTokens":100,"CostUSD":0.000049,"Throttles":0,"Attempts":1,"JobId":"job-43","Status":"succeeded","Tenant":"globex"}
`

func TestSizingEMFWritesEveryFormat(t *testing.T) {
	t.Setenv("TIERQ_TIERS_FILE", "")
	dir := t.TempDir()
	emf := filepath.Join(dir, "metrics.emf")
	if err := os.WriteFile(emf, []byte(emfLines), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonPath, htmlPath := filepath.Join(dir, "sizing.json"), filepath.Join(dir, "sizing.html")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"sizing", "--emf", filepath.Join(dir, "*.emf"), "--json", jsonPath, "--html", htmlPath, "--tables", "tenant"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{"WARNING: less than 30 days of data (1 minute)", "RECOMMENDATION (cannot-size)", "COST BY TENANT"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("tables lack %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "COST BY TIER") {
		t.Error("--tables tenant printed the tier table too")
	}
	if !strings.Contains(errOut.String(), "wrote "+jsonPath) || !strings.Contains(errOut.String(), "wrote "+htmlPath) {
		t.Errorf("stderr does not name the files written:\n%s", errOut.String())
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Source string
		Models []struct {
			ModelID string `json:"model_id"`
		}
		Tenants []struct{ Name string }
	}
	if err := json.Unmarshal(raw, &rep); err != nil || rep.Source != "emf" || len(rep.Models) != 2 || len(rep.Tenants) != 2 {
		t.Errorf("JSON report = %+v (%v), want emf with 2 models and 2 tenants", rep, err)
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil || !bytes.Contains(page, []byte("<svg")) {
		t.Errorf("HTML report missing or without charts (%v)", err)
	}

	// --json - prints JSON instead of the tables.
	out.Reset()
	if code := run(context.Background(), []string{"sizing", "--emf", emf, "--json", "-"}, &out, &errOut); code != 0 || !json.Valid(out.Bytes()) {
		t.Errorf("--json -: exit %d, stdout valid JSON %v", code, json.Valid(out.Bytes()))
	}
}

// --start and --end filter the file sources' jobs by timestamp.
func TestSizingEMFStartEnd(t *testing.T) {
	t.Setenv("TIERQ_TIERS_FILE", "")
	emf := filepath.Join(t.TempDir(), "metrics.emf")
	if err := os.WriteFile(emf, []byte(emfLines), 0o644); err != nil {
		t.Fatal(err)
	}
	// The lines are at 12:00:01.25 and 12:00:11.25 on 2026-11-24.
	for name, tc := range map[string]struct {
		args     []string
		wantJobs int
		warning  string
	}{
		"no window":  {nil, 2, ""},
		"start":      {[]string{"--start", "2026-11-24T12:00:05Z"}, 1, "1 job line outside --start 2026-11-24T12:00:05Z / --end open left out"},
		"end":        {[]string{"--end", "2026-11-24T12:00:05Z"}, 1, "1 job line outside --start open / --end 2026-11-24T12:00:05Z left out"},
		"both, none": {[]string{"--start", "2026-11-25", "--end", "2026-11-26"}, 0, "2 job lines outside --start 2026-11-25T00:00:00Z / --end 2026-11-26T00:00:00Z left out"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"sizing", "--emf", emf, "--json", "-"}, tc.args...)
			if code := run(context.Background(), args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
			}
			var rep struct {
				Tenants  []struct{ Jobs int }
				Warnings []string
			}
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			jobs := 0
			for _, r := range rep.Tenants {
				jobs += r.Jobs
			}
			if jobs != tc.wantJobs {
				t.Errorf("%d jobs, want %d", jobs, tc.wantJobs)
			}
			if tc.warning != "" && !strings.Contains(strings.Join(rep.Warnings, "\n"), tc.warning) {
				t.Errorf("warnings %q lack %q", rep.Warnings, tc.warning)
			}
		})
	}
}

func TestSizingResultsFolder(t *testing.T) {
	t.Setenv("TIERQ_TIERS_FILE", "")
	dir := t.TempDir()
	goldens, _ := filepath.Glob("../../testdata/results/result-*.json")
	for _, g := range goldens {
		raw, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(g)), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"sizing", "--results", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	// The goldens list their calls: each is priced with the tiers file and
	// carries its throttles, so they are known.
	for _, want := range []string{"tierq sizing: results (" + dir + ")", "each model call in a result's calls attributed to the model that made it", "throttled minutes 0 of", "COST BY TIER"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSizingAWSSources runs --results s3:// and --cloudwatch end to end
// against kumo through the AWS SDK's own environment settings.
func TestSizingAWSSources(t *testing.T) {
	srv := kumo.NewServer()
	defer srv.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": srv.URL, "AWS_REGION": "", "TIERQ_TIERS_FILE": "",
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "", "TIERQ_S3_PATH_STYLE": "true",
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")

	// Results under a prefix.
	s3c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: creds, UsePathStyle: true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired, ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
	bucket := fmt.Sprintf("tierq-cmd-sizing-%d", time.Now().UnixNano())
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../testdata/results/result-escalated.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("results/a.json"), Body: bytes.NewReader(raw)}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"sizing", "--results", "s3://" + bucket + "/results/"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "no AWS Region: give --region") {
		t.Errorf("without a Region: exit %d, stderr %q; want 1 and a message naming --region", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"sizing", "--results", "s3://" + bucket + "/results/", "--region", "us-east-1"}, &out, &errOut); code != 0 {
		t.Fatalf("--results s3://: exit %d; stderr:\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "us.anthropic.claude-haiku-4-5-20251001-v1:0 (tier standard)") || !strings.Contains(out.String(), "acme") {
		t.Errorf("--results s3:// output lacks the model or tenant:\n%s", out.String())
	}

	// CloudWatch: kumo stamps points with the time they are put.
	cw := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: creds,
		DisableRequestCompression: true}) // kumo does not read gzip bodies
	model := fmt.Sprintf("test.cmd-sizing-%d", time.Now().UnixNano())
	for name, v := range map[string]float64{"InputTokenCount": 50000, "OutputTokenCount": 5000, "InvocationThrottles": 1} {
		_, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/Bedrock"), MetricData: []cwtypes.MetricDatum{{
			MetricName: aws.String(name), Value: aws.Float64(v),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("ModelId"), Value: aws.String(model)}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	errOut.Reset()
	end := time.Now().UTC().Add(2 * time.Minute).Format(time.RFC3339)
	if code := run(ctx, []string{"sizing", "--cloudwatch", "--region", "us-east-1", "--model-ids", model, "--start", "10m", "--end", end}, &out, &errOut); code != 0 {
		t.Fatalf("--cloudwatch: exit %d; stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{"tierq sizing: cloudwatch", "== " + model, "50,000", "throttled minutes 1 of", "on-demand: unknown, no on-demand price for " + model} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--cloudwatch output lacks %q:\n%s", want, out.String())
		}
	}
}
