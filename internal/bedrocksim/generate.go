package bedrocksim

import (
	"encoding/json"
	"hash/fnv"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// EstimateTokens is the simulator's token count: one token per 4 characters
// (Unicode code points), rounded up. Real tokenizers differ by model and
// language; 4 characters a token is the usual rule of thumb for English text,
// and the same estimate is used for input, output and CountTokens so the
// simulator's accounting is self-consistent.
func EstimateTokens(s string) int {
	return (utf8.RuneCountInString(s) + 3) / 4
}

// OutputTokensMarker, placed anywhere in a prompt, forces the length of the
// simulated answer: "[[sim:output_tokens=800]]" yields about 800 output tokens
// (then cut at maxTokens as usual). Tests and benchmarks use it to control
// latency and token burn without depending on the task rules below.
const OutputTokensMarker = "[[sim:output_tokens=N]]"

// maxFillerTokens bounds a forced answer; no model writes more in one call.
const maxFillerTokens = 200_000

var outputTokensRe = regexp.MustCompile(`\[\[sim:output_tokens=(\d{1,7})\]\]`)

// prompt is what the generator sees of a Converse request.
type prompt struct {
	instructions string // system prompt and the user's own (non-guarded) text
	document     string // guarded content, or the last user text when none is guarded
}

// generate returns a deterministic answer shaped by the task the prompt asks
// for: the same prompt always gives the same answer.
//
//   - classify (the prompt mentions "classif" or "label"): one label, taken from
//     a "labels:" / "categories:" / "one of:" list in the prompt; the label whose
//     words occur most in the document wins, ties broken by a hash of it.
//   - extract ("extract" or "json"): one JSON object whose keys are the fields
//     named in the prompt ("fields: a, b" or a JSON schema's "properties"),
//     values found as "field: value" lines, e-mail, date or amount patterns in
//     the document, else null.
//   - summarize ("summar"): the document's leading sentences, about a fifth of
//     its length (16 to 400 tokens).
//   - anything else: an answer of 20 to 200 tokens drawn from the document's
//     own sentences, its length fixed by a hash of the prompt.
func generate(p prompt) string {
	if m := outputTokensRe.FindStringSubmatch(p.instructions + "\n" + p.document); m != nil {
		n, _ := strconv.Atoi(m[1])
		return filler(p.document, min(n, maxFillerTokens))
	}
	inst := strings.ToLower(p.instructions)
	switch {
	case strings.Contains(inst, "classif") || strings.Contains(inst, "label"):
		return classify(p.instructions, p.document)
	case strings.Contains(inst, "extract") || strings.Contains(inst, "json"):
		return extract(p.instructions, p.document)
	case strings.Contains(inst, "summar"):
		target := min(max(EstimateTokens(p.document)/5, 16), 400)
		return leadSentences(p.document, target)
	default:
		target := 20 + int(hash(p.instructions+p.document)%181)
		return leadSentences(p.document, target)
	}
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

var sentenceEnd = regexp.MustCompile(`[.!?](\s+|$)`)

// leadSentences returns whole sentences from the start of doc until about
// target tokens, falling back to the document's words when it has no sentences.
func leadSentences(doc string, target int) string {
	doc = strings.Join(strings.Fields(doc), " ")
	if doc == "" {
		return "The document is empty."
	}
	var b strings.Builder
	rest := doc
	for rest != "" && EstimateTokens(b.String()) < target {
		loc := sentenceEnd.FindStringIndex(rest)
		end := len(rest)
		if loc != nil {
			end = loc[1]
		}
		b.WriteString(rest[:end])
		rest = rest[end:]
	}
	out := strings.TrimSpace(b.String())
	if limit := target * 4; utf8.RuneCountInString(out) > limit+200 {
		out = truncateRunes(out, limit) + "..."
	}
	return out
}

// filler produces about n tokens of text built from the document's words.
func filler(doc string, n int) string {
	words := strings.Fields(doc)
	if len(words) == 0 {
		words = []string{"lorem", "ipsum", "dolor", "sit", "amet"}
	}
	var b strings.Builder
	for i := 0; b.Len() < n*4; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[i%len(words)])
	}
	return truncateRunes(b.String(), n*4)
}

func truncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

var labelListRe = regexp.MustCompile(`(?im)(?:labels?|categories|classes|one of)\s*[:=]\s*(.+)$`)

func classify(instructions, doc string) string {
	var labels []string
	if m := labelListRe.FindStringSubmatch(instructions); m != nil {
		for _, l := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == '|' || r == ';' }) {
			l = strings.Trim(strings.TrimSpace(l), `"'[]().`)
			if l != "" {
				labels = append(labels, l)
			}
		}
	}
	if len(labels) == 0 {
		return "other"
	}
	lower := strings.ToLower(doc)
	best, bestScore := "", -1
	for _, l := range labels {
		score := 0
		for _, w := range strings.FieldsFunc(strings.ToLower(l), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			if len(w) > 2 {
				score += strings.Count(lower, w)
			}
		}
		if score > bestScore {
			best, bestScore = l, score
		}
	}
	if bestScore == 0 {
		return labels[hash(doc)%uint64(len(labels))]
	}
	return best
}

var (
	fieldListRe = regexp.MustCompile(`(?im)fields?\s*[:=]\s*(.+)$`)
	emailRe     = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	dateRe      = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b`)
	amountRe    = regexp.MustCompile(`[$€£]\s?\d[\d,]*(?:\.\d+)?`)
)

func extractFields(instructions string) []string {
	// A JSON schema anywhere in the prompt: take its top-level properties.
	if i := strings.Index(instructions, "{"); i >= 0 {
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		dec := json.NewDecoder(strings.NewReader(instructions[i:]))
		if dec.Decode(&schema) == nil && len(schema.Properties) > 0 {
			return slices.Sorted(maps.Keys(schema.Properties))
		}
	}
	if m := fieldListRe.FindStringSubmatch(instructions); m != nil {
		var fields []string
		for _, f := range strings.Split(m[1], ",") {
			f = strings.Trim(strings.TrimSpace(f), `"'.`)
			if f != "" {
				fields = append(fields, f)
			}
		}
		return fields
	}
	return []string{"title", "emails", "dates", "amounts"}
}

func extract(instructions, doc string) string {
	fields := extractFields(instructions)
	lines := strings.Split(doc, "\n")
	obj := make([]byte, 0, 256)
	obj = append(obj, '{')
	for i, f := range fields {
		if i > 0 {
			obj = append(obj, ',')
		}
		key, _ := json.Marshal(f)
		obj = append(obj, key...)
		obj = append(obj, ':')
		val, _ := json.Marshal(findField(f, lines, doc))
		obj = append(obj, val...)
	}
	obj = append(obj, '}')
	return string(obj)
}

func findField(field string, lines []string, doc string) any {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", " ", "-", " ").Replace(strings.TrimSpace(s)))
	}
	want := norm(field)
	for _, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if ok && norm(k) == want && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	switch {
	case strings.Contains(want, "email"):
		return firstOrAll(want, emailRe.FindAllString(doc, 5))
	case strings.Contains(want, "date"):
		return firstOrAll(want, dateRe.FindAllString(doc, 5))
	case strings.Contains(want, "amount") || strings.Contains(want, "total") || strings.Contains(want, "price"):
		return firstOrAll(want, amountRe.FindAllString(doc, 5))
	case want == "title":
		for _, l := range lines {
			if t := strings.TrimSpace(strings.TrimLeft(l, "# ")); t != "" {
				return truncateRunes(t, 120)
			}
		}
	}
	return nil
}

// firstOrAll returns a list for plural field names and the first match otherwise.
func firstOrAll(field string, found []string) any {
	if strings.HasSuffix(field, "s") {
		if found == nil {
			return []string{}
		}
		return found
	}
	if len(found) == 0 {
		return nil
	}
	return found[0]
}
