package tiering

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tierq/tierq/jobv1"
)

// EstimateTokens estimates how many tokens a model will count for text:
// one token per 4 characters (runes), rounded up, so any non-empty text is at
// least 1 token. Four characters per token is the usual rule of thumb for
// English prose; code, digits and non-Latin scripts take more tokens per
// character, so treat the figure as a low estimate for them (the
// non-ASCII signal moves such text up a tier partly for this reason). It is
// only for choosing a tier and for dry-run costs: billing uses the counts
// Bedrock returns.
func EstimateTokens(text string) int {
	n := utf8.RuneCountInString(text)
	return (n + 3) / 4
}

// Signals are cheap facts about a document's content that hint at how hard
// it is for a small model. Each is computed by ComputeSignals in one pass.
type Signals struct {
	// Tables: at least three consecutive lines share a column delimiter
	// the same number of times (markdown or ASCII '|' tables, tab- or
	// comma-/semicolon-separated rows). Field extraction from tables is
	// where small models mix up rows and columns.
	Tables bool `json:"tables" yaml:"tables"`
	// CodeBlocks: the text has a fenced code block (``` or ~~~). Code and
	// config need exact copying, which small models paraphrase.
	CodeBlocks bool `json:"code_blocks" yaml:"code_blocks"`
	// DigitShare is digits / non-space characters, 0..1. A high share means
	// figures (statements, invoices, logs), where a wrong digit is a wrong answer.
	DigitShare float64 `json:"digit_share" yaml:"digit_share"`
	// NonASCIIShare is letters outside ASCII / all letters, 0..1. A high
	// share means a non-Latin script: small models are weaker there and the
	// 4-characters-per-token estimate undercounts.
	NonASCIIShare float64 `json:"non_ascii_share" yaml:"non_ascii_share"`
}

// ComputeSignals computes Signals for a document. It is pure and linear in
// the length of text.
func ComputeSignals(text string) Signals {
	var s Signals
	var nonSpace, digits, letters, nonASCII int
	for _, r := range text {
		switch {
		case unicode.IsSpace(r):
			continue
		case r >= '0' && r <= '9':
			digits++
		case unicode.IsLetter(r):
			letters++
			if r > unicode.MaxASCII {
				nonASCII++
			}
		}
		nonSpace++
	}
	if nonSpace > 0 {
		s.DigitShare = float64(digits) / float64(nonSpace)
	}
	if letters > 0 {
		s.NonASCIIShare = float64(nonASCII) / float64(letters)
	}

	tables := newTableDetector()
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			s.CodeBlocks = true
		}
		if !s.Tables && tables.add(trimmed) {
			s.Tables = true
		}
	}
	return s
}

// tableRows is how many consecutive lines must agree before we call it a table.
const tableRows = 3

// tableDelims are the column delimiters tried, with the fewest occurrences a
// row needs. Commas and semicolons need two, because ordinary prose often
// has one per line; a '|' or a tab in prose is rare.
var tableDelims = []struct {
	delim byte
	min   int
}{{'|', 1}, {'\t', 1}, {',', 2}, {';', 2}}

// tableDetector tracks, per delimiter, how many consecutive lines had the
// same count of it.
type tableDetector struct {
	last []int // count of the delimiter on the previous line
	run  []int // consecutive lines with that same count
}

func newTableDetector() *tableDetector {
	return &tableDetector{last: make([]int, len(tableDelims)), run: make([]int, len(tableDelims))}
}

// add feeds the next line (already trimmed) and reports whether a table has
// been seen.
func (d *tableDetector) add(line string) bool {
	for i, td := range tableDelims {
		n := strings.Count(line, string(td.delim))
		switch {
		case n < td.min:
			d.run[i] = 0
		case n == d.last[i]:
			d.run[i]++
		default:
			d.run[i] = 1
		}
		d.last[i] = n
		if d.run[i] >= tableRows {
			return true
		}
	}
	return false
}

// PromptTokens estimates the input tokens a job puts in its prompt: the
// document and every other part that came from the job (instructions,
// labels, fields, schema; jobv1.Job.PromptParts) with tierq's fixed opening,
// without the tier's system prompt (added per tier). The worker, its limiter
// and submit --dry-run count with it, so a 6-token document with a 700 KB
// schema is not mistaken for a small job.
func PromptTokens(job jobv1.Job, doc string) int { return PartsTokens(job.PromptParts(doc)) }

// PartsTokens is PromptTokens for parts already made by PromptParts.
func PartsTokens(parts []string) int {
	n := EstimateTokens(jobv1.UserIntro)
	for _, p := range parts {
		n += EstimateTokens(p)
	}
	return n
}
