package jobv1

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestScanJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		kind   string
		issues []string // messages, in order
		fields []string // the top-level field of each issue
	}{
		{"object", `{"a":1,"b":"x","c":[1,{"d":null}],"e":{}}`, "object", nil, nil},
		{"array", ` [1, 2] `, "array", nil, nil},
		{"string", `"x"`, "string", nil, nil},
		{"number", `-0.5e+3`, "number", nil, nil},
		{"literals", `[true,false,null]`, "array", nil, nil},
		{"escapes", `{"a":"\"\\\/\b\f\n\r\t\u00e9"}`, "object", nil, nil},
		{"surrogate pair", `{"a":"\ud83d\ude00"}`, "object", nil, nil},
		{"duplicate key", `{"text":"a","text":"b"}`, "object", []string{`duplicate key "text"`}, []string{"text"}},
		{"duplicate key spelled with an escape", `{"text":"a","te\u0078t":"b"}`, "object", []string{`duplicate key "text"`}, []string{"text"}},
		{"keys differing in case are not duplicates", `{"text":"a","Text":"b"}`, "object", nil, nil},
		{"nested duplicate", `{"metadata":{"k":"1","k":"2"}}`, "object", []string{`duplicate key "k" in "metadata"`}, []string{"metadata"}},
		{"duplicate deep in an array", `{"schema":{"allOf":[{},{"a":1,"a":1}]}}`, "object", []string{`duplicate key "a" in "schema.allOf[1]"`}, []string{"schema"}},
		{"same key in sibling objects", `[{"a":1},{"a":1}]`, "array", nil, nil},
		{"lone high surrogate", `{"text":"a\ud800b"}`, "object", []string{`"text" has an unpaired surrogate escape \ud800`}, []string{"text"}},
		{"lone low surrogate", `{"text":"\udc00"}`, "object", []string{`"text" has an unpaired surrogate escape \udc00`}, []string{"text"}},
		{"high then not low", `{"text":"\ud800\u0041"}`, "object", []string{`"text" has an unpaired surrogate escape \ud800`}, []string{"text"}},
		{"two highs", `{"text":"\ud800\ud800\udc00"}`, "object", []string{`"text" has an unpaired surrogate escape \ud800`}, []string{"text"}},
		{"high at the end", `{"text":"\ud800"}`, "object", []string{`"text" has an unpaired surrogate escape \ud800`}, []string{"text"}},
		{"surrogate in an array item", `{"labels":["a","\udfff"]}`, "object", []string{`"labels[1]" has an unpaired surrogate escape \udfff`}, []string{"labels"}},
		{"surrogate in a key", `{"metadata":{"\ud800":"x"}}`, "object", []string{`a key in "metadata" has an unpaired surrogate escape \ud800`}, []string{"metadata"}},
		{"huge exponent", `{"max_output_tokens":1e999999}`, "object", []string{`"max_output_tokens" holds the number 1e999999, out of range (at most 64 characters, exponent within ±400)`}, []string{"max_output_tokens"}},
		{"long number", `[` + strings.Repeat("1", 65) + `]`, "array", []string{`"[0]" holds the number 1111111111111111111111111111111111111111..., out of range (at most 64 characters, exponent within ±400)`}, []string{""}},
		{"exponent at the limit", `[1e400,1E-400]`, "array", nil, nil},
		{"several issues in order", `{"a":"\ud800","a":1,"b":{"c":1,"c":2}}`, "object",
			[]string{`"a" has an unpaired surrogate escape \ud800`, `duplicate key "a"`, `duplicate key "c" in "b"`}, []string{"a", "a", "b"}},
		{"a lone surrogate as the whole text", `"\ud800"`, "string", []string{`the message has an unpaired surrogate escape \ud800`}, []string{""}},
		{"surrogate in a top-level key", `{"\udc00":"x"}`, "object", []string{`a key has an unpaired surrogate escape \udc00`}, []string{""}},
		{"top-level key with a newline", `{"a\nb":"\ud800"}`, "object", []string{`"["a\nb"]" has an unpaired surrogate escape \ud800`}, []string{"a\nb"}},
		{"key that is not a plain name", `{"metadata":{"two words":{"x":1,"x":2}}}`, "object", []string{`duplicate key "x" in "metadata["two words"]"`}, []string{"metadata"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := scanJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("scanJSON(%s) = %v", tt.in, err)
			}
			var msgs, fields []string
			for _, is := range res.issues {
				msgs, fields = append(msgs, is.msg), append(fields, is.field)
			}
			if res.kind != tt.kind || !slices.Equal(msgs, tt.issues) || !slices.Equal(fields, tt.fields) {
				t.Errorf("scanJSON(%s):\n got kind %s, issues %q in %q\nwant kind %s, issues %q in %q", tt.in, res.kind, msgs, fields, tt.kind, tt.issues, tt.fields)
			}
		})
	}
}

func TestScanJSONMembers(t *testing.T) {
	t.Parallel()
	res, err := scanJSON([]byte(`{ "a" : 1 , "b":{"c":[[]]}, "a":"x\"y" , "d":[] }`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range res.members {
		got = append(got, m.key+"="+string(m.raw)+"@"+strings.Repeat("+", m.depth))
	}
	want := []string{"a=1@", `b={"c":[[]]}@+++`, `a="x\"y"@`, "d=[]@+"}
	if !slices.Equal(got, want) {
		t.Errorf("members = %q, want %q", got, want)
	}
}

func TestScanJSONRefusesWhatIsNotJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"empty", ``, "the message is empty"},
		{"white space", " \n\t", "the message is empty"},
		{"text", `hello`, `invalid character 'h' at byte 0, want a JSON value`},
		{"byte order mark", "\ufeff{}", `invalid character '\ufeff' at byte 0, want a JSON value`},
		{"truncated", `{"a":"b`, "unexpected end at byte 7"},
		{"truncated after a key", `{"a"`, "unexpected end at byte 4"},
		{"trailing data", `{} x`, "data after the JSON value at byte 3"},
		{"two values", `{}{}`, "data after the JSON value at byte 2"},
		{"trailing comma", `{"a":1,}`, `invalid character '}' at byte 7, want a key`},
		{"trailing comma in array", `[1,]`, `invalid character ']' at byte 3, want a JSON value`},
		{"missing colon", `{"a" 1}`, `invalid character '1' at byte 5, want ":"`},
		{"missing comma", `[1 2]`, `invalid character '2' at byte 3, want "," or ']'`},
		{"wrong closer", `{"a":1]`, `invalid character ']' at byte 6, want "," or '}'`},
		{"comment", `{} // x`, "data after the JSON value at byte 3"},
		{"raw newline in a string", "[\"a\nb\"]", "control character U+000A in a string at byte 3 (escape it)"},
		{"bad escape", `["\x"]`, `invalid character 'x' at byte 3, want an escape character`},
		{"short unicode escape", `["\u12"]`, `invalid \u escape at byte 2`},
		{"leading zero", `[01]`, `invalid character '1' at byte 2, want "," or ']'`},
		{"bare minus", `[-]`, `invalid character ']' at byte 2, want a digit`},
		{"no fraction digits", `[1.]`, `invalid character ']' at byte 3, want a digit`},
		{"no exponent digits", `[1e]`, `invalid character ']' at byte 3, want a digit`},
		{"single quotes", `{'a':1}`, `invalid character '\'' at byte 1, want a key`},
		{"NaN", `[NaN]`, `invalid character 'N' at byte 1, want a JSON value`},
		{"truncated literal", `[tru]`, `invalid character 't' at byte 1, want a JSON value`},
		{"deep and unclosed", strings.Repeat("[", 100000), "unexpected end at byte 100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scanJSON([]byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("scanJSON(%.40q) = %v, want %s", tt.in, err, tt.want)
			}
		})
	}
}

func TestTruncateKeepsCharactersWhole(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 40, "short"},
		{"abcdef", 3, "abc..."},
		{"ééé", 3, "é..."}, // é is 2 bytes: cutting at 3 would split the second
	} {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// decodeValue's shortcut for strings without escapes must give what
// encoding/json gives, and strings with escapes still go through it.
func TestDecodeValueStrings(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`""`, `"plain text"`, `"été ✓ 😀"`, `"tab\tand \"quotes\""`, `"\u00e9"`, `"a\\b"`, `"\/"`} {
		var want any
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		got, err := decodeValue([]byte(raw))
		if err != nil || got != want {
			t.Errorf("decodeValue(%s) = %q, %v; want %q", raw, got, err, want)
		}
	}
}
