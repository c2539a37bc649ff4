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
			return t.Prices, true
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
