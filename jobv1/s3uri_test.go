package jobv1

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// s3URICases are shared by the parser's test and the check that the job
// schema's document_uri rule agrees with the parser.
var s3URICases = []struct {
	name        string
	uri         string
	bucket, key string // when accepted
	rule        error  // when refused
	msg         string // when refused: the whole message
}{
	{"plain", "s3://tierq-docs/reports/2026-q3.txt", "tierq-docs", "reports/2026-q3.txt", nil, ""},
	{"hash is a key character", "s3://tierq-docs/notes#2.txt", "tierq-docs", "notes#2.txt", nil, ""},
	{"query is a key character", "s3://tierq-docs/a?b=c&d.txt", "tierq-docs", "a?b=c&d.txt", nil, ""},
	{"percent is kept, not decoded", "s3://tierq-docs/100%25 done%20.txt", "tierq-docs", "100%25 done%20.txt", nil, ""},
	{"plus and spaces", "s3://tierq-docs/a+b c.txt", "tierq-docs", "a+b c.txt", nil, ""},
	{"unicode", "s3://tierq-docs/dossiers/été/ünï cødé.txt", "tierq-docs", "dossiers/été/ünï cødé.txt", nil, ""},
	{"three dots are a name", "s3://tierq-docs/a/.../b", "tierq-docs", "a/.../b", nil, ""},
	{"dots inside a name", "s3://tierq-docs/a/..b/c..", "tierq-docs", "a/..b/c..", nil, ""},
	{"encoded slash alone", "s3://tierq-docs/a%2Fb", "tierq-docs", "a%2Fb", nil, ""},
	{"bucket with dots", "s3://docs.example.com/k", "docs.example.com", "k", nil, ""},
	{"shortest bucket", "s3://abc/k", "abc", "k", nil, ""},
	{"longest bucket", "s3://" + strings.Repeat("b", 63) + "/k", strings.Repeat("b", 63), "k", nil, ""},
	{"longest key", "s3://abc/" + strings.Repeat("k", 1024), "abc", strings.Repeat("k", 1024), nil, ""},

	{"https", "https://tierq-docs/k", "", "", ErrS3Scheme, `"https://tierq-docs/k" is not an s3:// URI; want s3://bucket/key`},
	{"upper-case scheme", "S3://tierq-docs/k", "", "", ErrS3Scheme, `"S3://tierq-docs/k": the scheme must be lower-case s3://`},
	{"no scheme", "tierq-docs/k", "", "", ErrS3Scheme, `"tierq-docs/k" is not an s3:// URI; want s3://bucket/key`},
	{"one slash", "s3:/tierq-docs/k", "", "", ErrS3Scheme, `"s3:/tierq-docs/k" is not an s3:// URI; want s3://bucket/key`},
	{"empty", "", "", "", ErrS3Scheme, `"" is not an s3:// URI; want s3://bucket/key`},
	{"no bucket", "s3:///k", "", "", ErrS3Bucket, `"s3:///k" has no bucket; want s3://bucket/key`},
	{"bucket too short", "s3://ab/k", "", "", ErrS3Bucket, `bucket "ab" is not a valid S3 bucket name (3 to 63 characters of a-z 0-9 . -, starting and ending with a letter or digit)`},
	{"bucket too long", "s3://" + strings.Repeat("b", 64) + "/k", "", "", ErrS3Bucket, `bucket "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb..." is not a valid S3 bucket name (3 to 63 characters of a-z 0-9 . -, starting and ending with a letter or digit)`},
	{"upper-case bucket", "s3://Tierq-Docs/k", "", "", ErrS3Bucket, `bucket "Tierq-Docs" is not a valid S3 bucket name (3 to 63 characters of a-z 0-9 . -, starting and ending with a letter or digit)`},
	{"underscore in bucket", "s3://tierq_docs/k", "", "", ErrS3Bucket, `bucket "tierq_docs" is not a valid S3 bucket name (3 to 63 characters of a-z 0-9 . -, starting and ending with a letter or digit)`},
	{"bucket ends with a dash", "s3://tierq-/k", "", "", ErrS3Bucket, `bucket "tierq-" is not a valid S3 bucket name (3 to 63 characters of a-z 0-9 . -, starting and ending with a letter or digit)`},
	{"bucket starts with a dot", "s3://.tierq/k", "", "", ErrS3Bucket, `bucket ".tierq" is not a valid S3 bucket name (3 to 63 characters of a-z 0-9 . -, starting and ending with a letter or digit)`},
	{"bucket is ..", "s3://../k", "", "", ErrS3Bucket, `bucket ".." is not a valid S3 bucket name (3 to 63 characters of a-z 0-9 . -, starting and ending with a letter or digit)`},
	{"adjacent dots in bucket", "s3://a..b/k", "", "", ErrS3Bucket, `bucket "a..b" has two adjacent dots, which S3 bucket names never have`},
	{"IP address bucket", "s3://192.168.5.4/k", "", "", ErrS3Bucket, `bucket "192.168.5.4" is formatted as an IP address, which S3 bucket names never are`},
	{"port", "s3://tierq-docs:443/k", "", "", ErrS3Bucket, `bucket "tierq-docs:443" is not a valid S3 bucket name: an s3:// URI has no port or user name`},
	{"user info", "s3://user@tierq-docs/k", "", "", ErrS3Bucket, `bucket "user@tierq-docs" is not a valid S3 bucket name: an s3:// URI has no port or user name`},
	{"bucket with a query", "s3://tierq-docs?x=1/k", "", "", ErrS3Bucket, `bucket "tierq-docs?x=1" is not a valid S3 bucket name (3 to 63 characters of a-z 0-9 . -, starting and ending with a letter or digit)`},
	{"no key", "s3://tierq-docs", "", "", ErrS3Key, `"s3://tierq-docs" has no key; want s3://bucket/key`},
	{"empty key", "s3://tierq-docs/", "", "", ErrS3Key, `"s3://tierq-docs/" has no key; want s3://bucket/key`},
	{"key too long", "s3://abc/" + strings.Repeat("k", 1025), "", "", ErrS3Key, `key is 1025 bytes; S3 keys are at most 1024`},
	{"NUL in key", "s3://tierq-docs/a\x00b", "", "", ErrS3Key, `key "a\x00b" has a control character (U+0000) at byte 1`},
	{"newline in key", "s3://tierq-docs/a\nb", "", "", ErrS3Key, `key "a\nb" has a control character (U+000A) at byte 1`},
	{"DEL in key", "s3://tierq-docs/a\x7fb", "", "", ErrS3Key, `key "a\x7fb" has a control character (U+007F) at byte 1`},
	{"C1 control in key", "s3://tierq-docs/a\u0085b", "", "", ErrS3Key, `key "a\u0085b" has a control character (U+0085) at byte 1`},
	{"invalid UTF-8 in key", "s3://tierq-docs/a\xffb", "", "", ErrS3Key, `key is not valid UTF-8 (byte 1)`},
	{"backslash", `s3://tierq-docs/a\..\b`, "", "", ErrS3Key, `key "a\\..\\b" has a backslash; separate folders with "/"`},
	{"climbs to another bucket", "s3://tierq-docs/../other/secret.txt", "", "", ErrS3DotSegment, `key "../other/secret.txt" has a ".." segment; keys must not climb out of their folder`},
	{"climbs from a folder", "s3://tierq-docs/a/../b", "", "", ErrS3DotSegment, `key "a/../b" has a ".." segment; keys must not climb out of their folder`},
	{"trailing ..", "s3://tierq-docs/a/..", "", "", ErrS3DotSegment, `key "a/.." has a ".." segment; keys must not climb out of their folder`},
	{"key is ..", "s3://tierq-docs/..", "", "", ErrS3DotSegment, `key ".." has a ".." segment; keys must not climb out of their folder`},
	{"dot segment", "s3://tierq-docs/a/./b", "", "", ErrS3DotSegment, `key "a/./b" has a "." segment; keys must not climb out of their folder`},
	{"leading ./", "s3://tierq-docs/./b", "", "", ErrS3DotSegment, `key "./b" has a "." segment; keys must not climb out of their folder`},
	{"key is .", "s3://tierq-docs/.", "", "", ErrS3DotSegment, `key "." has a "." segment; keys must not climb out of their folder`},
	{"encoded ..", "s3://tierq-docs/%2e%2e/other/secret.txt", "", "", ErrS3DotSegment, `key "%2e%2e/other/secret.txt" has a ".." segment once percent-decoded; keys must not climb out of their folder`},
	{"encoded .. upper case", "s3://tierq-docs/%2E%2E/x", "", "", ErrS3DotSegment, `key "%2E%2E/x" has a ".." segment once percent-decoded; keys must not climb out of their folder`},
	{"encoded .. mixed case", "s3://tierq-docs/%2E%2e/x", "", "", ErrS3DotSegment, `key "%2E%2e/x" has a ".." segment once percent-decoded; keys must not climb out of their folder`},
	{"half encoded ..", "s3://tierq-docs/.%2e/x", "", "", ErrS3DotSegment, `key ".%2e/x" has a ".." segment once percent-decoded; keys must not climb out of their folder`},
	{"other half encoded ..", "s3://tierq-docs/x/%2e.", "", "", ErrS3DotSegment, `key "x/%2e." has a ".." segment once percent-decoded; keys must not climb out of their folder`},
	{"encoded .", "s3://tierq-docs/a/%2e/b", "", "", ErrS3DotSegment, `key "a/%2e/b" has a "." segment once percent-decoded; keys must not climb out of their folder`},
	{"encoded slashes around ..", "s3://tierq-docs/a%2f..%2fb", "", "", ErrS3DotSegment, `key "a%2f..%2fb" has a ".." segment once percent-decoded; keys must not climb out of their folder`},
	{"encoded backslash after ..", "s3://tierq-docs/..%5cb", "", "", ErrS3DotSegment, `key "..%5cb" has a ".." segment once percent-decoded; keys must not climb out of their folder`},
	{"double-encoded ..", "s3://tierq-docs/%252e%252e/x", "", "", ErrS3DotSegment, `key "%252e%252e/x" has a ".." segment once percent-decoded; keys must not climb out of their folder`},
	{"leading slash", "s3://tierq-docs//k", "", "", ErrS3EmptySegment, `key "/k" has an empty segment (a leading or trailing "/", or "//"); name the object itself`},
	{"double slash", "s3://tierq-docs/a//b", "", "", ErrS3EmptySegment, `key "a//b" has an empty segment (a leading or trailing "/", or "//"); name the object itself`},
	{"trailing slash", "s3://tierq-docs/folder/", "", "", ErrS3EmptySegment, `key "folder/" has an empty segment (a leading or trailing "/", or "//"); name the object itself`},
}

func TestParseS3URI(t *testing.T) {
	t.Parallel()
	for _, tt := range s3URICases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bucket, key, err := ParseS3URI(tt.uri)
			if tt.rule == nil {
				if err != nil || bucket != tt.bucket || key != tt.key {
					t.Errorf("ParseS3URI(%q) = %q, %q, %v; want %q, %q", tt.uri, bucket, key, err, tt.bucket, tt.key)
				}
				return
			}
			if !errors.Is(err, tt.rule) || !errors.Is(err, ErrS3URI) {
				t.Fatalf("ParseS3URI(%q) = %v; want %v (and ErrS3URI)", tt.uri, err, tt.rule)
			}
			if err.Error() != tt.msg {
				t.Errorf("message:\n got %s\nwant %s", err, tt.msg)
			}
			if bucket != "" || key != "" {
				t.Errorf("refused URI returned %q, %q", bucket, key)
			}
		})
	}
}

// The job schema's document_uri rule is what producers check against, so
// it must accept and refuse what the parser does, as far as a regex can:
// only the key's byte limit (maxLength counts characters) is left to the
// parser.
func TestDocumentURISchemaAgreesWithParser(t *testing.T) {
	t.Parallel()
	for _, tt := range s3URICases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			switch tt.name {
			case "key too long":
				t.Skip("a byte limit: maxLength counts characters")
			case "invalid UTF-8 in key":
				t.Skip("a JSON string cannot hold it")
			}
			doc := map[string]any{"version": "1", "job_id": "a", "task": "summarize", "document_uri": tt.uri}
			err := jobSchema().Validate(doc)
			if schemaOK, parserOK := err == nil, tt.rule == nil; schemaOK != parserOK {
				t.Errorf("schema accepts: %v (%v); parser accepts: %v", schemaOK, err, parserOK)
			}
		})
	}
}

// FuzzParseS3URI checks that the parser never panics, that an accepted URI
// is exactly s3:// + bucket + / + key, and that no accepted key holds a dot
// or empty segment, raw or once percent-decoded.
func FuzzParseS3URI(f *testing.F) {
	for _, tt := range s3URICases {
		f.Add(tt.uri)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		bucket, key, err := ParseS3URI(uri)
		if err != nil {
			if !errors.Is(err, ErrS3URI) {
				t.Fatalf("ParseS3URI(%q) = %v, not an ErrS3URI", uri, err)
			}
			return
		}
		if "s3://"+bucket+"/"+key != uri {
			t.Fatalf("ParseS3URI(%q) = %q, %q: not a split of the input", uri, bucket, key)
		}
		if key == "" || len(key) > MaxS3KeyBytes || strings.Contains(bucket, "/") {
			t.Fatalf("ParseS3URI(%q) accepted bucket %q key %q", uri, bucket, key)
		}
		// An independent decoding: net/url when the escapes are valid,
		// otherwise just the escapes that make dots and slashes.
		decoded, err := url.PathUnescape(key)
		if err != nil {
			decoded = strings.NewReplacer("%2e", ".", "%2E", ".", "%2f", "/", "%2F", "/", "%5c", `\`, "%5C", `\`).Replace(key)
		}
		for _, k := range []string{key, decoded} {
			for _, seg := range strings.FieldsFunc(k, func(r rune) bool { return r == '/' || r == '\\' }) {
				if seg == "." || seg == ".." {
					t.Fatalf("ParseS3URI(%q) accepted key %q with a %q segment in %q", uri, key, seg, k)
				}
			}
		}
		if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//") {
			t.Fatalf("ParseS3URI(%q) accepted key %q with an empty segment", uri, key)
		}
	})
}

func ExampleParseS3URI() {
	bucket, key, err := ParseS3URI("s3://tierq-docs/notes#2 (draft).txt")
	fmt.Println(bucket, key, err)

	_, _, err = ParseS3URI("s3://tierq-docs/%2e%2e/other-tenant/secret.txt")
	fmt.Println(errors.Is(err, ErrS3DotSegment))
	fmt.Println(err)
	// Output:
	// tierq-docs notes#2 (draft).txt <nil>
	// true
	// key "%2e%2e/other-tenant/secret.txt" has a ".." segment once percent-decoded; keys must not climb out of their folder
}
