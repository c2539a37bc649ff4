package tiering

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Provisioned are one model's provisioned-throughput figures. Every field is
// optional and a zero means "not given": no figure is ever defaulted, because
// a guessed throughput or price would make the advice look better founded
// than it is. Sizing names what is missing.
type Provisioned struct {
	// Tokens per minute one model unit serves: input and output separately,
	// or input plus output together. AWS DOES NOT PUBLISH THESE: get them
	// from your AWS account team or measure them on a no-commitment unit.
	// Sizing needs at least one; with several, the one needing the most
	// units decides.
	InputTokensPerMinutePerUnit  float64 `yaml:"input_tokens_per_minute_per_unit"`
	OutputTokensPerMinutePerUnit float64 `yaml:"output_tokens_per_minute_per_unit"`
	TokensPerMinutePerUnit       float64 `yaml:"tokens_per_minute_per_unit"`
	// HourlyPricePerUnit is USD per model unit per hour for each term, from
	// the Bedrock pricing page. A term left out is reported as not priced.
	HourlyPricePerUnit ProvisionedPrices `yaml:"hourly_price_per_unit"`
	// OnDemand prices a model no tier uses (one seen only in CloudWatch,
	// say), so its on-demand cost can be compared. A model a tier uses
	// takes the tier's prices, and giving both is an error: one model, one
	// price.
	OnDemand *Prices `yaml:"on_demand"`
	// Reserved prices Bedrock's Reserved service tier for the model: input
	// and output tokens per minute reserved separately, for a 1- or
	// 3-month term. Reserved is sold for few models (Claude Sonnet 4.5 at
	// its launch, through the account team); nil means not priced.
	Reserved *Reserved `yaml:"reserved"`
	// Quota describes the model's on-demand quota, for sizing's
	// quota-increase figures and its advice on bursty traffic. Optional.
	Quota Quota `yaml:"quota"`
}

// Reserved are one model's Reserved-tier prices and reservation rules. No
// price is ever defaulted: a term left out is reported as not priced. The
// minimums default to the launch note's figures (100,000 input and 10,000
// output tokens per minute) because they are rules of the offer, not
// prices; set them when your offer differs.
type Reserved struct {
	// InputPer1KTPMMonth and OutputPer1KTPMMonth are USD per 1,000 tokens
	// per minute reserved, per month, by term. Input TPM counts input
	// tokens plus cache-write tokens.
	InputPer1KTPMMonth  ReservedPrices `yaml:"input_per_1k_tpm_month"`
	OutputPer1KTPMMonth ReservedPrices `yaml:"output_per_1k_tpm_month"`
	// MinInputTPM and MinOutputTPM are the smallest reservations sold.
	// Nil takes DefaultReservedMinInputTPM and DefaultReservedMinOutputTPM.
	MinInputTPM  *float64 `yaml:"min_input_tpm"`
	MinOutputTPM *float64 `yaml:"min_output_tpm"`
	// StepTPM, when not zero, is the increment reservations are sold in:
	// sizing rounds each reservation up to a multiple of it.
	StepTPM float64 `yaml:"step_tpm"`
}

// Reserved-tier minimums from the launch note (2025-11-26): they are the
// defaults of Reserved.MinInputTPM and MinOutputTPM.
const (
	DefaultReservedMinInputTPM  = 100_000
	DefaultReservedMinOutputTPM = 10_000
)

// MinInput returns the smallest input reservation sold.
func (r Reserved) MinInput() float64 {
	if r.MinInputTPM == nil {
		return DefaultReservedMinInputTPM
	}
	return *r.MinInputTPM
}

// MinOutput returns the smallest output reservation sold.
func (r Reserved) MinOutput() float64 {
	if r.MinOutputTPM == nil {
		return DefaultReservedMinOutputTPM
	}
	return *r.MinOutputTPM
}

// ReservedPrices are USD per 1,000 tokens per minute per month, by term.
type ReservedPrices struct {
	OneMonth    float64 `yaml:"one_month"`
	ThreeMonths float64 `yaml:"three_months"`
}

// ReservedTerm is a Reserved-tier commitment term, named as in the YAML.
type ReservedTerm string

// The terms the Reserved tier is sold for.
const (
	ReservedOneMonth    ReservedTerm = "one_month"
	ReservedThreeMonths ReservedTerm = "three_months"
)

// ReservedTerms returns every Reserved term, shortest first.
func ReservedTerms() []ReservedTerm { return []ReservedTerm{ReservedOneMonth, ReservedThreeMonths} }

// Price returns the monthly price per 1,000 TPM for a term; 0 means not
// priced.
func (p ReservedPrices) Price(t ReservedTerm) float64 {
	switch t {
	case ReservedOneMonth:
		return p.OneMonth
	case ReservedThreeMonths:
		return p.ThreeMonths
	}
	return 0
}

// Quota is what sizing knows of a model's on-demand quota. Every figure is
// optional: zero means unknown, and the report says so.
type Quota struct {
	// OutputBurndown is how many quota tokens one output token takes: 5
	// for Claude 4-class models on Bedrock's token-burndown list, 1 for
	// others. It changes quota consumption, not billing. Zero means
	// unknown: sizing then reports raw tokens per minute only.
	OutputBurndown float64 `yaml:"output_burndown"`
	// TokensPerMinute and RequestsPerMinute are the account's applied
	// on-demand quotas (Service Quotas), for how long a spread batch takes.
	TokensPerMinute   float64 `yaml:"tokens_per_minute"`
	RequestsPerMinute float64 `yaml:"requests_per_minute"`
}

// ProvisionedPrices are USD per model unit per hour, by commitment term.
type ProvisionedPrices struct {
	NoCommitment float64 `yaml:"no_commitment"`
	OneMonth     float64 `yaml:"one_month"`
	SixMonths    float64 `yaml:"six_months"`
}

// Term is a provisioned-throughput commitment term, named as in the YAML.
type Term string

// The terms Bedrock sells provisioned throughput for.
const (
	TermNoCommitment Term = "no_commitment"
	TermOneMonth     Term = "one_month"
	TermSixMonths    Term = "six_months"
)

// Terms returns every term, shortest commitment first.
func Terms() []Term { return []Term{TermNoCommitment, TermOneMonth, TermSixMonths} }

// Price returns the hourly price per unit for a term; 0 means not priced.
func (p ProvisionedPrices) Price(t Term) float64 {
	switch t {
	case TermNoCommitment:
		return p.NoCommitment
	case TermOneMonth:
		return p.OneMonth
	case TermSixMonths:
		return p.SixMonths
	}
	return 0
}

// ModelPrices returns the on-demand prices of a model: those of the first
// tier using it, else of the tier it is the fallback of, else
// provisioned.<model>.on_demand. ok is false when the configuration prices
// the model nowhere.
func (c *Config) ModelPrices(modelID string) (p Prices, ok bool) {
	for _, t := range c.Tiers {
		if t.ModelID == modelID {
			return t.Prices, true
		}
	}
	for _, t := range c.Tiers {
		if t.FallbackModelID != "" && t.FallbackModelID == modelID {
			p, _ := t.CallPrices(modelID, "")
			return p, true
		}
	}
	if pr, found := c.Provisioned[modelID]; found && pr.OnDemand != nil {
		return *pr.OnDemand, true
	}
	return Prices{}, false
}

// validateProvisioned checks only that given figures are usable numbers;
// missing ones are left for sizing to name, because a file may hold prices
// before anyone has measured a unit's throughput.
func (c *Config) validateProvisioned() []error {
	var errs []error
	for _, model := range slices.Sorted(maps.Keys(c.Provisioned)) {
		pr := c.Provisioned[model]
		p := fmt.Sprintf("provisioned[%q]", model)
		if strings.TrimSpace(model) == "" {
			errs = append(errs, errors.New("provisioned: empty model ID"))
		}
		check := func(field string, v float64) {
			if !(v >= 0) || math.IsInf(v, 0) {
				errs = append(errs, fmt.Errorf("%s.%s: must be a finite number >= 0 (got %v)", p, field, v))
			}
		}
		check("input_tokens_per_minute_per_unit", pr.InputTokensPerMinutePerUnit)
		check("output_tokens_per_minute_per_unit", pr.OutputTokensPerMinutePerUnit)
		check("tokens_per_minute_per_unit", pr.TokensPerMinutePerUnit)
		for _, t := range Terms() {
			check("hourly_price_per_unit."+string(t), pr.HourlyPricePerUnit.Price(t))
		}
		if r := pr.Reserved; r != nil {
			for _, t := range ReservedTerms() {
				check("reserved.input_per_1k_tpm_month."+string(t), r.InputPer1KTPMMonth.Price(t))
				check("reserved.output_per_1k_tpm_month."+string(t), r.OutputPer1KTPMMonth.Price(t))
			}
			check("reserved.min_input_tpm", r.MinInput())
			check("reserved.min_output_tpm", r.MinOutput())
			check("reserved.step_tpm", r.StepTPM)
		}
		check("quota.tokens_per_minute", pr.Quota.TokensPerMinute)
		check("quota.requests_per_minute", pr.Quota.RequestsPerMinute)
		if b := pr.Quota.OutputBurndown; b != 0 && !(b >= 1 && b <= 100) {
			errs = append(errs, fmt.Errorf("%s.quota.output_burndown: must be between 1 and 100, or 0 for unknown (got %v); Claude 4-class models burn 5", p, b))
		}
		if pr.OnDemand == nil {
			continue
		}
		if i := slices.IndexFunc(c.Tiers, func(t Tier) bool { return t.ModelID == model }); i >= 0 {
			errs = append(errs, fmt.Errorf("%s.on_demand: tiers[%d] (%s) already prices this model; remove one of the two", p, i, c.Tiers[i].Name))
		} else if i := slices.IndexFunc(c.Tiers, func(t Tier) bool { return t.FallbackModelID == model }); i >= 0 {
			errs = append(errs, fmt.Errorf("%s.on_demand: tiers[%d] (%s) already prices this model as its fallback; remove one of the two", p, i, c.Tiers[i].Name))
		}
		errs = append(errs, validatePrices(p+".on_demand", *pr.OnDemand)...)
	}
	return errs
}
