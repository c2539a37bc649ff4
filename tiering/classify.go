package tiering

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tierq/tierq/jobv1"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrUnknownTier: a job's override names no configured tier.
	ErrUnknownTier = errors.New("unknown tier")
	// ErrTooLarge: the document does not fit any tier's context window.
	// Retrying cannot help.
	ErrTooLarge = errors.New("document too large")
	// ErrUnknownTask: the job's task is not one of the tasks tierq runs.
	ErrUnknownTask = errors.New("unknown task")
)

// Tasks a job can ask for: the wire contract's (package jobv1).
const (
	TaskSummarize = jobv1.TaskSummarize
	TaskClassify  = jobv1.TaskClassify
	TaskExtract   = jobv1.TaskExtract
	TaskCustom    = jobv1.TaskCustom
)

var tasks = []string{TaskSummarize, TaskClassify, TaskExtract, TaskCustom}

func isTask(s string) bool { return slices.Contains(tasks, s) }

func taskList() string { return strings.Join(tasks, ", ") }

// Rule ids reported in Decision.Rule. They are stable: use them in metrics
// and tests.
const (
	RuleOverride     = "override"
	RuleHint         = "hint"
	RuleTaskClassify = "task-classify"
	RuleTaskExtract  = "task-extract"
	RuleTaskCustom   = "task-custom"
	RuleNonASCII     = "non-ascii"
	RuleSize         = "size"
)

// Facts are what classification looks at: job metadata plus cheap signals
// about the document, never the document itself.
type Facts struct {
	Task string `json:"task" yaml:"task"`
	// EstimatedTokens is the size of everything the job puts in the prompt
	// (the document, and the job's instructions, labels, fields and schema),
	// as estimated by EstimateTokens; the tier's system prompt is added per
	// tier. NewFacts counts the document alone; a caller that knows the
	// other parts sets the total.
	EstimatedTokens int `json:"estimated_tokens" yaml:"estimated_tokens"`
	// Override is a tier name the job demands. Unknown names are an error.
	Override string `json:"override,omitempty" yaml:"override"`
	// Hint is a tier name the job prefers. It is honoured when the document
	// fits that tier; an unknown name is ignored (and said so in Reason),
	// because a hint must never make a job fail.
	Hint    string  `json:"hint,omitempty" yaml:"hint"`
	Signals Signals `json:"signals" yaml:"signals"`
}

// NewFacts measures a document for a task. Set Override and Hint from the
// job afterwards.
func NewFacts(task, text string) Facts {
	return Facts{Task: task, EstimatedTokens: EstimateTokens(text), Signals: ComputeSignals(text)}
}

// JobFacts are the facts of a job with its document: the document's
// signals, every part of the prompt counted (instructions, labels, fields
// and schema are billed input tokens too, and must fit the context window),
// and the job's override and hint. The worker and submit --dry-run both
// classify from them, so a dry run predicts the worker.
func JobFacts(job jobv1.Job, doc string) Facts {
	return Facts{Task: job.Task, EstimatedTokens: PromptTokens(job, doc), Signals: ComputeSignals(doc),
		Override: job.TierOverride, Hint: job.TierHint}
}

// Decision is the tier chosen for a job and why.
type Decision struct {
	Tier    string `json:"tier"`
	ModelID string `json:"model_id"`
	// Rule is the stable id of the rule that chose the starting tier (see
	// the Rule* constants). A move to a larger context window keeps the
	// rule and is explained in Reason.
	Rule string `json:"rule"`
	// Reason is one sentence for a person reading logs or a dry run.
	Reason string `json:"reason"`
}

// Classify chooses a tier for a job from its facts. The rules, in order, are
// tabled in the package documentation. Whatever rule chose, a document that
// does not fit a tier's context window (estimated tokens plus the tier's max
// output tokens) moves to the next tier that fits (or, if no later tier
// does, to the most capable earlier one); if no tier fits, the error wraps
// ErrTooLarge.
func (c *Config) Classify(f Facts) (Decision, error) {
	if !isTask(f.Task) {
		return Decision{}, fmt.Errorf("classify: %w %q (want %s)", ErrUnknownTask, f.Task, taskList())
	}
	if f.EstimatedTokens < 0 {
		return Decision{}, fmt.Errorf("classify: estimated tokens must not be negative (got %d)", f.EstimatedTokens)
	}
	if len(c.Tiers) == 0 {
		return Decision{}, errors.New("classify: no tiers configured")
	}

	i, rule, reason, err := c.choose(f)
	if err != nil {
		return Decision{}, err
	}
	j := c.firstFit(i, f.EstimatedTokens)
	if j < 0 {
		w := c.largestWindow()
		return Decision{}, fmt.Errorf("classify: %w: ~%s estimated tokens plus max output tokens fit no tier; the largest context window is %s tokens (tier %s)",
			ErrTooLarge, commas(f.EstimatedTokens), commas(w.ContextWindow), w.Name)
	}
	if j != i {
		t := c.Tiers[i]
		reason += fmt.Sprintf("; ~%s tokens + %s max output exceed %s's %s-token context window, so moved to %s",
			commas(f.EstimatedTokens), commas(t.MaxOutputTokens), t.Name, commas(t.ContextWindow), c.Tiers[j].Name)
		if j < i {
			reason += ", the most capable tier it fits"
		}
	}
	return Decision{Tier: c.Tiers[j].Name, ModelID: c.Tiers[j].ModelID, Rule: rule, Reason: reason}, nil
}

// choose applies the rules and returns the starting tier's index, before the
// context-window check.
func (c *Config) choose(f Facts) (i int, rule, reason string, err error) {
	if f.Override != "" {
		i := c.index(f.Override)
		if i < 0 {
			return 0, "", "", fmt.Errorf("classify: override: %w %q (configured: %s)", ErrUnknownTier, f.Override, c.names())
		}
		return i, RuleOverride, fmt.Sprintf("job demands tier %s; task %s", f.Override, f.Task), nil
	}

	var note string // why a hint was not followed, prefixed to the rule's reason
	if f.Hint != "" {
		switch i := c.index(f.Hint); {
		case i < 0:
			note = fmt.Sprintf("hint %q is not a configured tier, ignored; ", f.Hint)
		case !fits(c.Tiers[i], f.EstimatedTokens):
			t := c.Tiers[i]
			note = fmt.Sprintf("hint %s ignored: ~%s tokens + %s max output exceed its %s-token context window; ",
				t.Name, commas(f.EstimatedTokens), commas(t.MaxOutputTokens), commas(t.ContextWindow))
		default:
			return i, RuleHint, fmt.Sprintf("job prefers tier %s; task %s, document ~%s tokens", f.Hint, f.Task, commas(f.EstimatedTokens)), nil
		}
	}

	i, rule, reason = c.rules(f)
	return i, rule, note + reason, nil
}

// rules are the content rules, first match wins. They address tiers by
// position, so tiers can be renamed without touching them. Length alone
// never reaches the last tier: the context-window check in Classify decides
// what a tier can take, and these rules, by task and signals, what it should.
func (c *Config) rules(f Facts) (int, string, string) {
	r := c.Rules
	n := len(c.Tiers)
	economy, standard, premium := 0, min(1, n-1), n-1
	name := func(i int) string { return c.Tiers[i].Name }
	tok := commas(f.EstimatedTokens)
	long := f.EstimatedTokens > r.StandardMaxTokens
	structure := strings.Join(c.structure(f.Signals), ", ")

	switch f.Task {
	case TaskClassify:
		if f.EstimatedTokens <= r.ClassifyEconomyMaxTokens {
			return economy, RuleTaskClassify, fmt.Sprintf("task classify on document ~%s tokens ≤ classify limit %s", tok, commas(r.ClassifyEconomyMaxTokens))
		}
		// One label never needs the most capable model, however long the text.
		return standard, RuleTaskClassify, fmt.Sprintf("task classify on document ~%s tokens > classify limit %s", tok, commas(r.ClassifyEconomyMaxTokens))
	case TaskCustom:
		if long {
			// Open-ended instructions over a long document ask for reasoning
			// across all of it, and nothing checks the answer's content.
			reason := fmt.Sprintf("task custom on document ~%s tokens > %s limit %s", tok, name(standard), commas(r.StandardMaxTokens))
			if structure != "" {
				reason += " (" + structure + ")"
			}
			return premium, RuleTaskCustom, reason
		}
		if structure != "" {
			return standard, RuleTaskCustom, fmt.Sprintf("task custom on structured document (%s), ~%s tokens", structure, tok)
		}
	case TaskExtract:
		if structure != "" && long {
			// A wrong cell is still valid JSON: escalation cannot catch it.
			return premium, RuleTaskExtract, fmt.Sprintf("task extract on structured document (%s), ~%s tokens > %s limit %s",
				structure, tok, name(standard), commas(r.StandardMaxTokens))
		}
		if structure != "" {
			return standard, RuleTaskExtract, fmt.Sprintf("task extract on structured document (%s), ~%s tokens", structure, tok)
		}
	}
	if f.Signals.NonASCIIShare >= r.NonASCIIShare {
		return standard, RuleNonASCII, fmt.Sprintf("%s of letters are non-ASCII (≥ %s); task %s, document ~%s tokens",
			percent(f.Signals.NonASCIIShare), percent(r.NonASCIIShare), f.Task, tok)
	}
	if f.EstimatedTokens <= r.EconomyMaxTokens {
		return economy, RuleSize, fmt.Sprintf("document ~%s tokens ≤ %s limit %s; task %s", tok, name(economy), commas(r.EconomyMaxTokens), f.Task)
	}
	reason := fmt.Sprintf("document ~%s tokens > %s limit %s; task %s", tok, name(economy), commas(r.EconomyMaxTokens), f.Task)
	if long && standard != premium {
		reason += fmt.Sprintf(" (over the %s limit %s, but length alone does not choose %s)", name(standard), commas(r.StandardMaxTokens), name(premium))
	}
	return standard, RuleSize, reason
}

// structure lists the signals that make a document structured, for Reason.
func (c *Config) structure(s Signals) []string {
	var why []string
	if s.Tables {
		why = append(why, "tables")
	}
	if s.CodeBlocks {
		why = append(why, "code blocks")
	}
	if s.DigitShare >= c.Rules.DenseDigitsShare {
		why = append(why, percent(s.DigitShare)+" digits")
	}
	return why
}

// fits reports whether a document leaves the tier room for a full answer.
// Bedrock reserves input plus maxTokens, and a request over the window fails,
// so a document that only fits without the answer does not fit.
func fits(t Tier, tokens int) bool { return tokens+t.MaxOutputTokens <= t.ContextWindow }

// firstFit returns the index of the first tier from i on that fits. Only
// when none does, it falls back to the most capable tier below i that fits:
// tiers further up can have a larger max output in the same window, and a
// job that some tier can run should not fail. -1 means no tier fits.
func (c *Config) firstFit(i, tokens int) int {
	for j := i; j < len(c.Tiers); j++ {
		if fits(c.Tiers[j], tokens) {
			return j
		}
	}
	for j := i - 1; j >= 0; j-- {
		if fits(c.Tiers[j], tokens) {
			return j
		}
	}
	return -1
}

func (c *Config) largestWindow() Tier {
	return slices.MaxFunc(c.Tiers, func(a, b Tier) int { return a.ContextWindow - b.ContextWindow })
}

// commas formats n with thousands separators, as people read token counts.
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func percent(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" }
