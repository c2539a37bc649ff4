package jobv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// This file holds the part of decoding that encoding/json hides: scanJSON
// reads a message's raw bytes once and reports what a decoder would silently
// accept, before anything is decoded.

// Limits on JSON numbers, in any message. A number reaches math/big in the
// schema validator (integer checks, uniqueItems, enum), where 1e1000000
// costs 25 ms; legitimate numbers in a job are token counts and the bounds
// of an extract schema, far inside these.
const (
	maxNumberLen      = 64
	maxNumberExponent = 400
)

// scanResult is what scanJSON learned about a JSON text.
type scanResult struct {
	// kind is the JSON type of the top-level value: "object", "array",
	// "string", "number", "boolean" or "null".
	kind string
	// members are the top-level object's members in order, repeats included.
	members []member
	// issues are what encoding/json would hide, in order of appearance.
	issues []jsonIssue
}

// member is one top-level member of an object.
type member struct {
	key string
	raw []byte // the value, as written
	// depth is the value's nesting: 0 for a scalar, 1 for an object or
	// array of scalars, and so on.
	depth int
}

// jsonIssue is a problem in an otherwise well-formed JSON text.
type jsonIssue struct {
	field string // the top-level key it is under
	msg   string // in the message's terms
}

// scanJSON checks that b is one JSON value (RFC 8259) and reports, as
// issues, a key repeated in an object, a string holding a lone UTF-16
// surrogate escape ("\ud800" without its low half, or a "\udc00" alone),
// and numbers outside maxNumberLen and maxNumberExponent. encoding/json
// keeps the last of repeated keys and turns lone surrogates into U+FFFD, so
// a message could say one thing to this worker and another to a producer's
// validator. The error is for a text that is not JSON at all. b must be
// valid UTF-8 (the caller checks); the scanner is iterative, so no nesting
// depth exhausts the stack.
func scanJSON(b []byte) (*scanResult, error) {
	s := &scanner{b: b, res: &scanResult{}}
	return s.res, s.run()
}

type scanner struct {
	b     []byte
	i     int
	res   *scanResult
	stack []*frame
	// The top-level member being read: its key, where its value starts
	// and the deepest nesting seen in it.
	field, key string
	start      int
	depth      int
}

// frame is an object or array being read. Paths are rendered from the
// stack only when an issue needs one: building each container's path as it
// opens would cost the square of the nesting depth.
type frame struct {
	obj   bool
	keys  map[string]bool // an object's keys so far
	key   string          // an object's current key
	index int             // an array's current index
}

// maxIssues bounds what one scan records; a message lists fewer anyway.
const maxIssues = 100

// maxPathDepth bounds how much of a deep location a message spells out.
const maxPathDepth = 32

const (
	stValue = iota // a value comes next
	stKey          // an object's key comes next
	stAfter        // a value just ended
)

func (s *scanner) run() error {
	s.ws()
	if s.i == len(s.b) {
		return errors.New("the message is empty")
	}
	s.res.kind = kindOf(s.b[s.i])
	state := stValue
	for {
		switch state {
		case stValue:
			s.ws()
			if s.i == len(s.b) {
				return s.unexpectedEnd()
			}
			switch c := s.b[s.i]; {
			case c == '{' || c == '[':
				f := &frame{obj: c == '{'}
				s.stack = append(s.stack, f)
				s.depth = max(s.depth, len(s.stack)-1)
				s.i++
				s.ws()
				switch {
				case s.i < len(s.b) && s.b[s.i] == f.closer():
					s.i++
					s.stack = s.stack[:len(s.stack)-1]
					state = stAfter
				case f.obj:
					state = stKey
				}
			case c == '"':
				if _, err := s.str(false); err != nil {
					return err
				}
				state = stAfter
			case c == '-' || c >= '0' && c <= '9':
				if err := s.number(); err != nil {
					return err
				}
				state = stAfter
			default:
				if err := s.literal(); err != nil {
					return err
				}
				state = stAfter
			}
		case stKey:
			s.ws()
			if s.i == len(s.b) {
				return s.unexpectedEnd()
			}
			if s.b[s.i] != '"' {
				return s.syntax("a key")
			}
			f := s.stack[len(s.stack)-1]
			key, err := s.str(true)
			if err != nil {
				return err
			}
			if len(s.stack) == 1 {
				s.field = key
			}
			if f.keys[key] {
				s.issue(duplicateKey(pathOf(s.stack[:len(s.stack)-1]), key))
			}
			if f.keys == nil {
				f.keys = map[string]bool{}
			}
			f.keys[key], f.key = true, key
			s.ws()
			if s.i == len(s.b) {
				return s.unexpectedEnd()
			}
			if s.b[s.i] != ':' {
				return s.syntax(`":"`)
			}
			s.i++
			if len(s.stack) == 1 {
				s.ws()
				s.key, s.start, s.depth = key, s.i, 0
			}
			state = stValue
		case stAfter:
			if len(s.stack) == 0 {
				s.ws()
				if s.i != len(s.b) {
					return fmt.Errorf("data after the JSON value at byte %d", s.i)
				}
				return nil
			}
			f := s.stack[len(s.stack)-1]
			if len(s.stack) == 1 && f.obj {
				s.res.members = append(s.res.members, member{key: s.key, raw: s.b[s.start:s.i], depth: s.depth})
			}
			s.ws()
			if s.i == len(s.b) {
				return s.unexpectedEnd()
			}
			switch c := s.b[s.i]; {
			case c == ',':
				s.i++
				if f.obj {
					state = stKey
				} else {
					f.index++
					state = stValue
				}
			case c == f.closer():
				s.i++
				s.stack = s.stack[:len(s.stack)-1]
			default:
				return s.syntax(fmt.Sprintf(`"," or %q`, f.closer()))
			}
		}
	}
}

func (f *frame) closer() byte {
	if f.obj {
		return '}'
	}
	return ']'
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// valuePath is where the value being read sits.
func (s *scanner) valuePath() string { return pathOf(s.stack) }

// pathOf renders the location of the value inside the innermost of frames,
// each frame contributing its current key or index.
func pathOf(frames []*frame) string {
	path := ""
	for i, f := range frames {
		if i == maxPathDepth {
			return path + "..."
		}
		if f.obj {
			path = joinKey(path, f.key)
		} else {
			path += "[" + strconv.Itoa(f.index) + "]"
		}
	}
	return path
}

func (s *scanner) issue(msg string) {
	if len(s.res.issues) < maxIssues {
		s.res.issues = append(s.res.issues, jsonIssue{field: s.field, msg: msg})
	}
}

func (s *scanner) syntax(want string) error {
	r, _ := utf8.DecodeRune(s.b[s.i:])
	return fmt.Errorf("invalid character %q at byte %d, want %s", r, s.i, want)
}

func (s *scanner) unexpectedEnd() error {
	return fmt.Errorf("unexpected end at byte %d", s.i)
}

// str reads a string starting at its quote. Keys are decoded, to be compared
// as encoding/json compares them; values are only checked.
func (s *scanner) str(isKey bool) (string, error) {
	s.i++ // the opening quote
	var dec []byte
	lone := ""
	for {
		if s.i == len(s.b) {
			return "", s.unexpectedEnd()
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if lone != "" {
				s.loneSurrogate(isKey, lone)
			}
			return string(dec), nil
		case c < 0x20:
			return "", fmt.Errorf("control character U+%04X in a string at byte %d (escape it)", c, s.i)
		case c != '\\':
			if isKey {
				dec = append(dec, c)
			}
			s.i++
			continue
		}
		if s.i+1 == len(s.b) {
			return "", s.unexpectedEnd()
		}
		e := s.b[s.i+1]
		if e != 'u' {
			r, ok := unescape(e)
			if !ok {
				s.i++
				return "", s.syntax("an escape character")
			}
			if isKey {
				dec = append(dec, r)
			}
			s.i += 2
			continue
		}
		r, ok := hex4(s.b, s.i+2)
		if !ok {
			return "", fmt.Errorf(`invalid \u escape at byte %d`, s.i)
		}
		s.i += 6
		switch {
		case r >= 0xd800 && r <= 0xdbff:
			if lo, ok := hex4(s.b, s.i+2); ok && s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' && lo >= 0xdc00 && lo <= 0xdfff {
				s.i += 6
				r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
			} else {
				lone = firstOf(lone, fmt.Sprintf(`\u%04x`, r))
				r = utf8.RuneError
			}
		case r >= 0xdc00 && r <= 0xdfff:
			lone = firstOf(lone, fmt.Sprintf(`\u%04x`, r))
			r = utf8.RuneError
		}
		if isKey {
			dec = utf8.AppendRune(dec, r)
		}
	}
}

// loneSurrogate files an unpaired surrogate escape in the string just read.
func (s *scanner) loneSurrogate(isKey bool, esc string) {
	switch {
	case !isKey:
		s.issue(fmt.Sprintf("%s has an unpaired surrogate escape %s", subject(s.valuePath(), "the message"), esc))
	case len(s.stack) > 1: // a key belongs to its object, not to the key being read
		s.issue(fmt.Sprintf("a key in %s has an unpaired surrogate escape %s", subject(pathOf(s.stack[:len(s.stack)-1]), ""), esc))
	default:
		s.issue("a key has an unpaired surrogate escape " + esc)
	}
}

// firstOf returns a unless it is empty, then b.
func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// unescape returns the byte a one-character escape such as \n stands for.
func unescape(e byte) (byte, bool) {
	switch e {
	case '"', '\\', '/':
		return e, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		if !isHex(c) {
			return 0, false
		}
		r = r<<4 | rune(unhex(c))
	}
	return r, true
}

// number reads a number per RFC 8259 and checks its size.
func (s *scanner) number() error {
	start := s.i
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case digits() == 0:
		return s.syntaxOrEnd("a digit")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.syntaxOrEnd("a digit")
		}
	}
	exp := 0
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		neg := false
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			neg = s.b[s.i] == '-'
			s.i++
		}
		es := s.i
		if digits() == 0 {
			return s.syntaxOrEnd("a digit")
		}
		for _, c := range s.b[es:s.i] {
			exp = min(exp*10+int(c-'0'), maxNumberExponent+1)
		}
		if neg {
			exp = -exp
		}
	}
	if lit := s.b[start:s.i]; len(lit) > maxNumberLen || exp > maxNumberExponent || exp < -maxNumberExponent {
		s.issue(fmt.Sprintf("%s holds the number %s, out of range (at most %d characters, exponent within ±%d)",
			subject(s.valuePath(), "the message"), truncate(string(lit), maxEcho), maxNumberLen, maxNumberExponent))
	}
	return nil
}

func (s *scanner) syntaxOrEnd(want string) error {
	if s.i == len(s.b) {
		return s.unexpectedEnd()
	}
	return s.syntax(want)
}

func (s *scanner) literal() error {
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return nil
		}
	}
	return s.syntax("a JSON value")
}

func kindOf(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func duplicateKey(path, key string) string {
	if path == "" {
		return "duplicate key " + quoteTrunc(key)
	}
	return fmt.Sprintf("duplicate key %s in %s", quoteTrunc(key), subject(path, ""))
}

// maxEcho is how much of a value a message repeats.
const maxEcho = 40

// joinKey extends a path with an object key: metadata.tenant, or
// metadata["two words"] for a key that is not a plain name, quoted so that
// no key can put a newline or a quote into a message.
func joinKey(path, key string) string {
	switch {
	case plainKey(key) && path == "":
		return key
	case plainKey(key):
		return path + "." + key
	}
	return path + "[" + quoteTrunc(key) + "]"
}

func plainKey(k string) bool {
	if k == "" || len(k) > maxEcho {
		return false
	}
	for _, c := range []byte(k) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c == '-') {
			return false
		}
	}
	return true
}

// subject is how a message names a location: the path in quotes, or root
// for the value itself.
func subject(path, root string) string {
	if path == "" {
		return root
	}
	return `"` + path + `"`
}

// quoteTrunc quotes s for a message, cut to maxEcho characters.
func quoteTrunc(s string) string { return strconv.Quote(truncate(s, maxEcho)) }

// truncate cuts s to at most n bytes on a character boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// invalidUTF8At returns the offset of the first byte that is not UTF-8, or -1.
func invalidUTF8At(b []byte) int {
	// The fast check first: nearly every body is valid, and utf8.Valid is
	// many times faster than decoding rune by rune to find an offset.
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// decodeValue decodes one JSON value the way the schema validator wants it:
// numbers as json.Number, so none loses precision.
//
// A string without escapes is its bytes between the quotes: scanJSON has
// read it already and found it valid UTF-8 without control characters, so
// decoding it again would only copy a document slowly. Most of a job's
// bytes are such a string (text, instructions).
func decodeValue(raw []byte) (any, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
