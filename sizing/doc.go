// Package sizing answers tierq's two money questions from a workload's own
// data: what it costs per model, tier and tenant, and when Bedrock
// provisioned throughput would cost less than on-demand.
//
// It is for: reading usage from a Source (tierq's EMF lines, result objects
// in S3 or a folder, or CloudWatch AWS/Bedrock metrics) into per-minute
// series per model; analysing them (per-minute token percentiles over every
// minute of the window, peak hours, throttled minutes, on-demand cost per
// day and per 730-hour month); sizing model units with the operators' rule
// (P95 tokens per minute × (1 + headroom) ÷ tokens per minute per unit,
// rounded up, per capacity dimension given); comparing each commitment
// term's monthly cost with on-demand; and writing the answer as terminal
// tables, JSON and a self-contained HTML report with SVG charts.
//
// On-demand cost always comes from tiering.Prices.Cost, the code the worker
// and submit --dry-run use: tokens from EMF and CloudWatch are priced with
// the tiers file, and results carry the cost the workers recorded with it.
// Provisioned-throughput figures come from the same tiers file
// (tiering.Config.Provisioned). AWS does not publish tokens per minute per
// model unit, so sizing never guesses one: a missing figure or price is
// named in the report, and fewer than 30 days of data give no commitment
// recommendation; a term whose break-even needs its units more than 100%
// busy is marked as unable to pay and never recommended. Input that is not
// usage (a file without job lines, a line over the 1 MiB EMF limit, a job
// line or result read twice, records outside --start/--end) is left out
// with a warning in the report, never silently and never by aborting.
//
// It is not for: buying or calling provisioned throughput, forecasting
// growth, or billing. Its costs are model tokens (guardrail charges are
// shown in the tables but are not replaced by provisioned throughput), and
// an escalated job's tokens are attributed to the model it finished on.
// The arithmetic (Percentile, Units, MonthlyCost, ProjectMonthly,
// BreakEven) is pure and table-tested; sources do the I/O.
package sizing
