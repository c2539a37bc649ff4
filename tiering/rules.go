package tiering

import (
	"fmt"
)

// Rules holds the classification thresholds. A zero value means the default.
type Rules struct {
	// EconomyMaxTokens is the largest document (estimated tokens) that goes
	// to the first tier by size. Default 2,000.
	EconomyMaxTokens int `yaml:"economy_max_tokens"`
	// StandardMaxTokens is the largest document on which the standard tier
	// is trusted with the tasks whose mistakes nothing catches: a custom
	// task, and an extract task on a structured document. Larger ones go to
	// the last tier. Default 20,000.
	//
	// It used to send every document above it to the last tier, whatever
	// the task. It no longer does: a long summary, a long classification or
	// an extraction from long unstructured text fits the standard tier's
	// window and suits its model, so they stay there; only the context-window
	// check moves them, and only when they do not fit. The key and its
	// default are unchanged, so existing files load as before.
	StandardMaxTokens int `yaml:"standard_max_tokens"`
	// ClassifyEconomyMaxTokens is the largest document a classify task sends
	// to the first tier: choosing one label is within a small model's reach
	// on longer text than summarizing is. Default 8,000.
	ClassifyEconomyMaxTokens int `yaml:"classify_economy_max_tokens"`
	// DenseDigitsShare is the share of non-space characters that are digits
	// from which a document counts as structured (figures, accounts). Default 0.20.
	DenseDigitsShare float64 `yaml:"dense_digits_share"`
	// NonASCIIShare is the share of letters outside ASCII from which a
	// document counts as non-Latin text. Default 0.30.
	NonASCIIShare float64 `yaml:"non_ascii_share"`
}

// Defaults of the classification thresholds.
const (
	DefaultEconomyMaxTokens         = 2000
	DefaultStandardMaxTokens        = 20000
	DefaultClassifyEconomyMaxTokens = 8000
	DefaultDenseDigitsShare         = 0.20
	DefaultNonASCIIShare            = 0.30
)

// applyDefaults fills the thresholds left at zero.
func (r *Rules) applyDefaults() {
	if r.EconomyMaxTokens == 0 {
		r.EconomyMaxTokens = DefaultEconomyMaxTokens
	}
	if r.StandardMaxTokens == 0 {
		r.StandardMaxTokens = DefaultStandardMaxTokens
	}
	if r.ClassifyEconomyMaxTokens == 0 {
		r.ClassifyEconomyMaxTokens = DefaultClassifyEconomyMaxTokens
	}
	if r.DenseDigitsShare == 0 {
		r.DenseDigitsShare = DefaultDenseDigitsShare
	}
	if r.NonASCIIShare == 0 {
		r.NonASCIIShare = DefaultNonASCIIShare
	}
}

// validate reports every threshold out of range.
func (r Rules) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if r.EconomyMaxTokens < 1 {
		add("rules.economy_max_tokens: must be positive (got %d)", r.EconomyMaxTokens)
	}
	// The token bands must nest: below economy_max_tokens a job may go to
	// the first tier, above standard_max_tokens custom and structured
	// extract jobs go to the last. Crossed, a custom job of a size in
	// between would be both small enough for the first tier and long enough
	// for the last: a file that says that is a mistake, not a policy.
	if r.StandardMaxTokens < r.EconomyMaxTokens {
		add("rules.standard_max_tokens: %d is below rules.economy_max_tokens %d", r.StandardMaxTokens, r.EconomyMaxTokens)
	}
	if r.ClassifyEconomyMaxTokens < 1 {
		add("rules.classify_economy_max_tokens: must be positive (got %d)", r.ClassifyEconomyMaxTokens)
	}
	if !(r.DenseDigitsShare > 0 && r.DenseDigitsShare <= 1) {
		add("rules.dense_digits_share: must be in (0, 1] (got %v)", r.DenseDigitsShare)
	}
	if !(r.NonASCIIShare > 0 && r.NonASCIIShare <= 1) {
		add("rules.non_ascii_share: must be in (0, 1] (got %v)", r.NonASCIIShare)
	}
	return errs
}
