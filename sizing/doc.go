// Package sizing answers tierq's money questions from a workload's own data:
// what it costs per model, tier and tenant; when Bedrock provisioned
// throughput (model units) or the Reserved service tier (tokens per minute
// reserved) would cost less than on-demand; and what to ask for in a quota
// increase.
//
// It is for: reading usage from a Source (tierq's EMF lines, result objects
// in S3 or a folder, or CloudWatch AWS/Bedrock metrics) into per-minute
// series per model; analysing them (per-minute token percentiles over every
// minute of the window, peak hours, throttled minutes, on-demand cost per
// day and per 730-hour month); sizing model units with the operators' rule
// (P95 tokens per minute × (1 + headroom) ÷ tokens per minute per unit,
// rounded up, per capacity dimension given); sizing Reserved input and
// output TPM separately (P95 × (1 + headroom), at least the minimums,
// rounded up to the reservation step; input counts cache writes), with the
// overflow above the reservation priced on-demand; comparing each term's
// monthly cost with on-demand; the quota-increase figures (steady = P50 of
// the active minutes, peak = the busiest minute, TPM raw and with the output
// burndown when configured, RPM, average tokens per request); and writing
// the answer as terminal tables, JSON and a self-contained HTML report with
// SVG charts.
//
// Attribution. Workers write a record per model call (EMF "Kind":"call"
// lines, a result's calls): each call's tokens land on the model that made
// them, in the minute the call ended, so an escalated job's first attempt
// counts on the cheaper model. Older records (EMF lines without Kind,
// results without calls) are read as before: a job's tokens on the model it
// finished on. In the cost tables, jobs count under the tier they finished
// on and, with per-call records, tokens and costs under the tier of each
// call.
//
// On-demand cost always comes from tiering.Prices.Cost, the code the worker
// and submit --dry-run use: tokens from EMF, CloudWatch and results' calls
// are priced with the tiers file at the model's Standard prices (what a
// commitment replaces and what Reserved overflow is billed at), and old
// results carry the cost the workers recorded with it. Commitment figures
// come from the same tiers file (tiering.Config.Provisioned). AWS does not
// publish tokens per minute per model unit nor Reserved prices, so sizing
// never guesses one: a missing figure or price is named in the report, and
// fewer than 30 days of data give no commitment recommendation; a term whose
// break-even needs its capacity more than 100% busy is marked as unable to
// pay and never recommended.
//
// Sizing never advises silently on bad data. Input that is not usage (a
// file without job lines, a line over the 1 MiB EMF limit, a job line, call
// line or result read twice, records outside --start/--end) is left out with
// a warning, never silently and never by aborting. Records stranded at an
// edge of the data (a stretch of Config.EdgeGap without records between
// them and a larger rest; isolated when at most Config.IsolatedRecords) are
// named with the --start or --end that leaves them out. Bursty traffic (the
// busiest minute over Config.BurstRatio × the P95, or any throttled minute)
// gets its own advice with both costs: spread the work through the queue
// and the limiter, or size for the peak.
//
// It is not for: buying or calling provisioned throughput or Reserved
// capacity, forecasting growth, or billing. Its costs are model tokens
// (guardrail charges are shown in the tables but are not replaced by a
// commitment). The arithmetic (Percentile, Units, ReservedTPM, MonthlyCost,
// ProjectMonthly, BreakEven) is pure and table-tested; sources do the I/O.
package sizing
