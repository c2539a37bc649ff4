package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/sizing"
	"github.com/tierq/tierq/tiering"
)

// sizingNow is the clock for --cloudwatch's default window and the report's
// stamp; tests replace it.
var sizingNow = time.Now

// defaultSizingStart is how far back --cloudwatch reads without --start: the
// sizing rule's 30 days, plus one so a partial first day still leaves 30.
const defaultSizingStart = "31d"

// listFlag collects a repeatable flag; each use may also hold a comma list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}

func runSizing(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tierq sizing", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var emf listFlag
	fs.Var(&emf, "emf", "tierq EMF output: a `FILE/GLOB` (quote globs); repeat or comma-separate for more")
	results := fs.String("results", "", "result objects v1: `s3://bucket/prefix`, or a folder of *.json result files (such as demo-out/results)")
	useCW := fs.Bool("cloudwatch", false, "read CloudWatch AWS/Bedrock metrics per ModelId (InputTokenCount, OutputTokenCount, Invocations, InvocationThrottles, EstimatedTPMQuotaUsage)")
	region := fs.String("region", "", "`REGION` for --cloudwatch and s3:// --results (default: AWS_REGION or the shared config)")
	start := fs.String("start", "", "window start, `WHEN`: RFC 3339 (2026-10-01T00:00:00Z), a date (2026-10-01, UTC), or a duration before --end (30d, 12h); for --emf and --results it keeps only jobs at or after it (default: all), for --cloudwatch the default is 31d")
	end := fs.String("end", "", "window end, exclusive, `WHEN` in the same forms as --start; for --emf and --results it keeps only jobs before it (default: all), for --cloudwatch the default is now")
	var modelIDs listFlag
	fs.Var(&modelIDs, "model-ids", "--cloudwatch ModelId values, `ID,...` (default: the tiers' model IDs)")
	tiersFile := fs.String("tiers", os.Getenv("TIERQ_TIERS_FILE"), "tier configuration YAML `FILE` with prices and provisioned: figures (env TIERQ_TIERS_FILE; default: the built-in tiers, which have no provisioned figures)")
	headroom := fs.Float64("headroom", sizing.DefaultHeadroom, "share added to the P95 peak before converting to model units (0.2 = 20%)")
	jsonOut := fs.String("json", "", "also write the report as JSON to `FILE` ('-' writes JSON to stdout instead of the tables)")
	htmlOut := fs.String("html", "", "also write a self-contained HTML report with charts to `FILE`")
	tables := fs.String("tables", "tier,tenant", "cost `TABLES` to include: tier, tenant, both (tier,tenant) or none")
	edgeGap := fs.String("edge-gap", fmt.Sprintf("%gd", sizing.DefaultEdgeGap.Hours()/24), "a stretch without records this long (`DURATION`: 7d, 36h) at an edge of the data is reported with the --start/--end that leaves it out")
	isolated := fs.Int("isolated", sizing.DefaultIsolatedRecords, "at most this many records beyond such a stretch are reported as isolated outliers")
	burstRatio := fs.Float64("burst-ratio", sizing.DefaultBurstRatio, "traffic whose busiest minute exceeds this many times the P95 minute (or with any throttled minute) gets the burst advice")
	pathStyle, err := envBool("TIERQ_S3_PATH_STYLE")
	if err != nil {
		return err
	}
	s3PathStyle := fs.Bool("s3-path-style", pathStyle, "address S3 as http://host/bucket (env TIERQ_S3_PATH_STYLE; for LocalStack and emulators)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: tierq sizing (--emf FILE/GLOB... | --results s3://bucket/prefix | --cloudwatch) [flags]

Answers two money questions from the workload's own data: what it costs per
model, tier and tenant, and whether Bedrock provisioned throughput would cost
less than on-demand. Give exactly one usage source:
  --emf          tierq's EMF lines (the worker's stdout, or the demo's
                 demo-out/metrics.emf); tokens are priced with the tiers file
  --results      result objects; their recorded cost is used (no throttles)
  --cloudwatch   AWS/Bedrock metrics, with --region and --model-ids;
                 tokens are priced with the tiers file
--start and --end apply to every source: with --emf and --results they keep
only the jobs timestamped in [start, end) (EMF _aws.Timestamp, result
timings.finished_at) and the report says how many were left out.

The sizing rule: take 30 days or more, the P95 of tokens per minute (every
minute counts, quiet ones as zero), add --headroom, divide by the tokens per
minute one model unit serves, round up; compare each term's monthly cost
(hourly price per unit × units × 730 h) with the on-demand cost projected to
730 h. Throttled minutes are the signal that provisioned throughput is worth
evaluating at all.

AWS DOES NOT PUBLISH TOKENS PER MINUTE PER MODEL UNIT. Give them, with the
hourly prices per unit, in the tiers file:

  provisioned:
    us.anthropic.claude-haiku-4-5-20251001-v1:0:
      input_tokens_per_minute_per_unit: ...    # from your AWS account team
      output_tokens_per_minute_per_unit: ...   # (or tokens_per_minute_per_unit)
      hourly_price_per_unit: {no_commitment: ..., one_month: ..., six_months: ...}

For the Reserved service tier (input and output tokens per minute reserved
separately, 1 or 3 months; sold for few models, Claude Sonnet 4.5 at launch):

      reserved:
        input_per_1k_tpm_month: {one_month: ..., three_months: ...}
        output_per_1k_tpm_month: {one_month: ..., three_months: ...}
        min_input_tpm: 100000     # default, from the launch note
        min_output_tpm: 10000     # default
        step_tpm: ...             # optional reservation increment
      quota: {output_burndown: 5, tokens_per_minute: ..., requests_per_minute: ...}

A missing figure is named in the report, never defaulted. Fewer than 30 days
of data give a warning and no commitment recommendation. The report also
gives each model's quota-increase figures (steady and peak TPM and RPM,
average tokens per request), advice for bursty traffic (peak minute over
--burst-ratio × P95, or throttled minutes), and warns of records stranded at
the edges of the data (--edge-gap, --isolated).

Output: tables on stdout; --json FILE for automation; --html FILE for a
report with charts that opens offline.

Environment: TIERQ_TIERS_FILE, TIERQ_S3_PATH_STYLE (flags override them); AWS
credentials, AWS_REGION and AWS_ENDPOINT_URL* come from the AWS SDK's usual
sources.

flags:
`)
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args, "give EMF files with --emf"); err != nil {
		return err
	}

	// Every usage mistake at once, before any AWS client is built.
	var errs []error
	sources := 0
	for _, given := range []bool{len(emf) > 0, *results != "", *useCW} {
		if given {
			sources++
		}
	}
	if sources != 1 {
		errs = append(errs, errors.New("give exactly one of --emf, --results or --cloudwatch"))
	}
	if !*useCW && len(modelIDs) > 0 {
		errs = append(errs, errors.New("--model-ids applies only to --cloudwatch"))
	}
	tierTable, tenantTable, err := parseTables(*tables)
	errs = append(errs, err)
	now := sizingNow().UTC()
	var from, to time.Time
	if *useCW {
		from, to, err = parseWindow(*start, *end, now)
	} else {
		from, to, err = parseFilter(*start, *end, now)
	}
	errs = append(errs, err)
	tiers, err := app.LoadTiers(*tiersFile)
	errs = append(errs, err)
	cfg := sizing.DefaultConfig(tiers)
	cfg.Headroom, cfg.TierTable, cfg.TenantTable = *headroom, tierTable, tenantTable
	cfg.Now = sizingNow
	cfg.IsolatedRecords, cfg.BurstRatio = *isolated, *burstRatio
	if cfg.EdgeGap, err = parseSpan(*edgeGap); err != nil {
		errs = append(errs, fmt.Errorf("--edge-gap: %w", err))
	}
	if tiers != nil {
		errs = append(errs, cfg.Validate())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid options:\n%w", err)
	}

	var src sizing.Source
	switch {
	case len(emf) > 0:
		src = &sizing.EMFSource{Paths: emf, Tiers: tiers, Start: from, End: to}
	case *results != "" && !strings.HasPrefix(*results, "s3://"):
		src = &sizing.DirResults{Dir: *results, Start: from, End: to, Tiers: tiers}
	case *results != "":
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(*results, "s3://"), "/")
		if bucket == "" {
			return fmt.Errorf("--results %q: want s3://bucket/prefix", *results)
		}
		cfgAWS, err := loadAWSConfig(ctx, *region, true, nil)
		if err != nil {
			return err
		}
		src = &sizing.S3Results{Bucket: bucket, Prefix: prefix, Start: from, End: to, Tiers: tiers, Client: s3.NewFromConfig(cfgAWS, func(o *s3.Options) {
			o.UsePathStyle = *s3PathStyle
		})}
	default:
		cfgAWS, err := loadAWSConfig(ctx, *region, true, nil)
		if err != nil {
			return err
		}
		ids := []string(modelIDs)
		if len(ids) == 0 {
			ids = tierModelIDs(tiers)
		}
		src = &sizing.CloudWatchSource{Client: cloudwatch.NewFromConfig(cfgAWS), ModelIDs: ids, Start: from, End: to, Tiers: tiers, Now: sizingNow}
	}

	rep, err := sizing.Build(ctx, src, cfg)
	if err != nil {
		return err
	}
	if *jsonOut == "-" {
		return rep.WriteJSON(stdout)
	}
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if err := rep.WriteFiles(*jsonOut, *htmlOut); err != nil {
		return err
	}
	for _, p := range []string{*jsonOut, *htmlOut} {
		if p != "" {
			fmt.Fprintf(stderr, "wrote %s\n", p)
		}
	}
	return nil
}

// tierModelIDs lists the tiers' model IDs once each, in tier order.
func tierModelIDs(c *tiering.Config) []string {
	var ids []string
	seen := map[string]bool{}
	for _, t := range c.Tiers {
		if !seen[t.ModelID] {
			seen[t.ModelID] = true
			ids = append(ids, t.ModelID)
		}
	}
	return ids
}

func parseTables(v string) (tier, tenant bool, err error) {
	for _, t := range splitList(v) {
		switch t {
		case "tier":
			tier = true
		case "tenant":
			tenant = true
		case "none":
		default:
			return false, false, fmt.Errorf("--tables %q: want tier, tenant, tier,tenant or none", v)
		}
	}
	return tier, tenant, nil
}

// parseWindow reads --start and --end: each RFC 3339, a date (UTC midnight)
// or, for --start, a duration before the end (30d, 12h); --end may also be
// a duration before now.
func parseWindow(start, end string, now time.Time) (from, to time.Time, err error) {
	if start == "" {
		start = defaultSizingStart
	}
	if from, to, err = parseFilter(start, end, now); err != nil {
		return time.Time{}, time.Time{}, err
	}
	if to.IsZero() {
		to = now
	}
	if !to.After(from) {
		return time.Time{}, time.Time{}, fmt.Errorf("--end %s is not after --start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return from, to, nil
}

// parseFilter reads --start and --end for the file sources, where each is
// optional and a missing bound is open (zero): unlike CloudWatch, a file
// holds its own window. A duration --start counts back from --end, or from
// now without one.
func parseFilter(start, end string, now time.Time) (from, to time.Time, err error) {
	if end != "" {
		if to, err = parseWhen(end, now); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("--end: %w", err)
		}
	}
	if start != "" {
		ref := now
		if !to.IsZero() {
			ref = to
		}
		if from, err = parseWhen(start, ref); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("--start: %w", err)
		}
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return time.Time{}, time.Time{}, fmt.Errorf("--end %s is not after --start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return from, to, nil
}

// parseSpan reads a duration in days (7d) or Go's form (36h).
func parseSpan(v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.ParseFloat(d, 64); err == nil && n > 0 {
			return time.Duration(n * 24 * float64(time.Hour)), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q: want a duration such as 7d or 36h", v)
}

// parseWhen reads a time, or a duration before ref.
func parseWhen(v string, ref time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if d, err := parseSpan(v); err == nil {
		return ref.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-10-01T00:00:00Z), a date (2026-10-01) or a duration such as 30d or 12h", v)
}
