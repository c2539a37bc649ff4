package jobv1

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxS3KeyBytes is S3's limit on an object key.
const MaxS3KeyBytes = 1024

// Errors of ParseS3URI. Every one also matches ErrS3URI.
var (
	ErrS3URI          = errors.New("invalid S3 URI")
	ErrS3Scheme       = errors.New("not an s3:// URI")
	ErrS3Bucket       = errors.New("invalid bucket name")
	ErrS3Key          = errors.New("invalid key")
	ErrS3DotSegment   = errors.New(`key has a "." or ".." segment`)
	ErrS3EmptySegment = errors.New("key has an empty segment")
)

// s3URIError is a ParseS3URI refusal: a message in the job's terms and the
// rule it broke, for errors.Is.
type s3URIError struct {
	rule error
	msg  string
}

func (e *s3URIError) Error() string   { return e.msg }
func (e *s3URIError) Unwrap() []error { return []error{ErrS3URI, e.rule} }

func uriErr(rule error, format string, args ...any) error {
	return &s3URIError{rule: rule, msg: fmt.Sprintf(format, args...)}
}

// ParseS3URI splits s3://bucket/key exactly: the bucket is what lies between
// "s3://" and the next "/", the key everything after that "/", verbatim.
// "#", "?", "%", spaces and any other Unicode are key characters, and nothing
// is percent-decoded: the key is sent to S3 as written (the SDK escapes it on
// the wire). It is what the worker, tierq submit and the job schema's
// document_uri pattern agree on.
//
// It refuses, each with its own reason:
//   - any scheme but lower-case "s3://" (RFC 3986 calls schemes
//     case-insensitive, but AWS tools write s3://, and one spelling keeps
//     this parser, the schema's pattern and every producer in step);
//   - a bucket that is not a valid S3 bucket name: 3 to 63 characters of
//     a-z 0-9 . -, starting and ending with a letter or digit, no two
//     adjacent dots, not formatted as an IP address. So "bucket:443" and
//     "user@bucket" are refused: an s3:// URI has no port or user name;
//   - an empty key, or one longer than S3's 1024 bytes;
//   - control characters (C0, DEL, C1), backslashes and invalid UTF-8 in
//     the key;
//   - a "." or ".." segment, raw or percent-encoded in any case mix ("%2e",
//     ".%2E", "..%2f" once decoded, at any depth of decoding);
//   - an empty segment: a key starting or ending with "/" or holding "//".
//
// Why dot and empty segments are refused although S3 itself stores such
// keys literally: they are where a reference escapes the allowed bucket. The
// SDK sends a key's dots and slashes unescaped in the request path, and
// HTTP servers, proxies and S3-compatible stores clean paths: kumo, the
// emulator the tests use, serves s3://allowed/../other/secret.txt from
// bucket "other", and reads a//b and /a/b as a/b. Percent-encoded dots
// reach S3 as literal "%2e" (the SDK escapes "%"), but a layer that decodes
// once more would climb, and a producer who wrote "%2e%2e" meant "..". A
// document's key needs none of these.
func ParseS3URI(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		if len(uri) >= 5 && strings.EqualFold(uri[:5], "s3://") {
			return "", "", uriErr(ErrS3Scheme, "%s: the scheme must be lower-case s3://", quoteTrunc(uri))
		}
		return "", "", uriErr(ErrS3Scheme, "%s is not an s3:// URI; want s3://bucket/key", quoteTrunc(uri))
	}
	bucket, key, found := strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", uriErr(ErrS3Bucket, "%s has no bucket; want s3://bucket/key", quoteTrunc(uri))
	}
	if err := checkBucket(bucket); err != nil {
		return "", "", err
	}
	if !found || key == "" {
		return "", "", uriErr(ErrS3Key, "%s has no key; want s3://bucket/key", quoteTrunc(uri))
	}
	if err := checkKey(key); err != nil {
		return "", "", err
	}
	return bucket, key, nil
}

// checkBucket applies S3's naming rules for general purpose buckets, except
// the reserved prefixes and suffixes: those only stop a bucket being created,
// and an access point alias (...-s3alias) is a valid bucket parameter.
func checkBucket(b string) error {
	valid := len(b) >= 3 && len(b) <= 63 && isBucketEdge(b[0]) && isBucketEdge(b[len(b)-1])
	for i := 0; valid && i < len(b); i++ {
		valid = isBucketEdge(b[i]) || b[i] == '.' || b[i] == '-'
	}
	switch {
	case !valid && strings.ContainsAny(b, ":@"):
		return uriErr(ErrS3Bucket, "bucket %s is not a valid S3 bucket name: an s3:// URI has no port or user name", quoteTrunc(b))
	case !valid:
		return uriErr(ErrS3Bucket, "bucket %s is not a valid S3 bucket name (3 to 63 characters of a-z 0-9 . -, starting and ending with a letter or digit)", quoteTrunc(b))
	case strings.Contains(b, ".."):
		return uriErr(ErrS3Bucket, "bucket %s has two adjacent dots, which S3 bucket names never have", quoteTrunc(b))
	case looksLikeIPv4(b):
		return uriErr(ErrS3Bucket, "bucket %s is formatted as an IP address, which S3 bucket names never are", quoteTrunc(b))
	}
	return nil
}

func isBucketEdge(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// looksLikeIPv4 reports four dot-separated runs of digits, S3's "formatted
// as an IP address".
func looksLikeIPv4(b string) bool {
	parts := strings.Split(b, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

func checkKey(key string) error {
	if len(key) > MaxS3KeyBytes {
		return uriErr(ErrS3Key, "key is %d bytes; S3 keys are at most %d", len(key), MaxS3KeyBytes)
	}
	for i := 0; i < len(key); {
		r, n := utf8.DecodeRuneInString(key[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			return uriErr(ErrS3Key, "key is not valid UTF-8 (byte %d)", i)
		case isControl(r):
			return uriErr(ErrS3Key, "key %s has a control character (U+%04X) at byte %d", quoteTrunc(key), r, i)
		case r == '\\':
			return uriErr(ErrS3Key, `key %s has a backslash; separate folders with "/"`, quoteTrunc(key))
		}
		i += n
	}
	if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//") {
		return uriErr(ErrS3EmptySegment, `key %s has an empty segment (a leading or trailing "/", or "//"); name the object itself`, quoteTrunc(key))
	}
	if seg := dotSegment(key); seg != "" {
		return uriErr(ErrS3DotSegment, "key %s has a %q segment; keys must not climb out of their folder", quoteTrunc(key), seg)
	}
	// Each round of percent-decoding is what one more layer that decodes
	// would see; a key has at most len/3 escapes, so this ends.
	for decoded, prev := percentDecode(key), key; decoded != prev; decoded, prev = percentDecode(decoded), decoded {
		if seg := dotSegment(decoded); seg != "" {
			return uriErr(ErrS3DotSegment, "key %s has a %q segment once percent-decoded; keys must not climb out of their folder", quoteTrunc(key), seg)
		}
	}
	return nil
}

// dotSegment returns "." or ".." when a segment of key is one, "" otherwise.
// Backslashes count as separators too: some servers treat them as "/", and
// decoding "%5c" makes one.
func dotSegment(key string) string {
	for _, seg := range strings.FieldsFunc(key, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return seg
		}
	}
	return ""
}

// percentDecode decodes every valid %XX escape and leaves anything else,
// such as a "%" not followed by two hex digits, as it is.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// isControl reports the control characters jobs refuse in names and keys:
// C0, DEL and C1.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }
