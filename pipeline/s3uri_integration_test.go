package pipeline_test

import (
	"bytes"
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/pipeline"
)

// getRecorder is a Store that records the bucket and key of every GetObject.
type getRecorder struct {
	pipeline.Store
	mu   sync.Mutex
	gets []string // bucket/key
}

func (g *getRecorder) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	g.mu.Lock()
	g.gets = append(g.gets, aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key))
	g.mu.Unlock()
	return g.Store.GetObject(ctx, in, optFns...)
}

// documentGets are the recorded reads outside the results bucket, which the
// pipeline also reads (claims, its own lost writes).
func (g *getRecorder) documentGets(results string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, k := range g.gets {
		if !strings.HasPrefix(k, results+"/") {
			out = append(out, k)
		}
	}
	return out
}

// recordingEnv is an env whose store records reads.
func recordingEnv(t *testing.T) (*env, *getRecorder) {
	rec := &getRecorder{}
	e := newEnv(t, envOpts{store: func(s pipeline.Store) pipeline.Store { rec.Store = s; return rec }})
	return e, rec
}

// A key is everything after the bucket, verbatim: "#" and "?" are not a
// URL's fragment and query, "%" is not an escape. The SDK escapes such keys
// in the request path ("#" as %23, "%" as %25), and the object written with
// the same key is the one read. Each key has decoys, the objects a URL
// parser would read instead; they are binary, so reading one would fail the
// job.
func TestDocumentKeysAreTakenVerbatim(t *testing.T) {
	t.Parallel()
	for _, key := range []string{
		"notes#2.txt",
		"a?b=c&d=e.txt",
		"100%20 done.txt",
		"100%25.txt",
		"reports/a+b c/ünï cødé.txt",
		"q3?v=1#top %2F.txt",
	} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			e, rec := recordingEnv(t)
			for _, d := range urlDecoys(key) {
				putObject(t, e.s3, e.docs, d, bytes.Repeat([]byte{0}, 64))
			}
			putObject(t, e.s3, e.docs, key, []byte("Quarterly report. Revenue grew 12% to $4.2 million in the third quarter."))
			e.process(jobBody(t, jobv1.Job{Task: "summarize", DocumentURI: "s3://" + e.docs + "/" + key}))
			if r := e.result("job-0001"); r.Status != jobv1.StatusSucceeded {
				t.Fatalf("status %s (%+v), want succeeded: the job read another object than %q", r.Status, r.Error, key)
			}
			if got, want := rec.documentGets(e.results), []string{e.docs + "/" + key}; !slices.Equal(got, want) {
				t.Errorf("GetObject calls %q, want %q", got, want)
			}
		})
	}
}

// urlDecoys are the keys a URL parser would make of key: cut at "#" or "?",
// or percent-decoded.
func urlDecoys(key string) []string {
	var out []string
	for _, sep := range []string{"#", "?"} {
		if before, _, ok := strings.Cut(key, sep); ok && before != "" {
			out = append(out, before)
		}
	}
	if d, err := url.PathUnescape(key); err == nil && d != key && !strings.Contains(d, "//") && !strings.HasSuffix(d, "/") {
		out = append(out, d)
	}
	return out
}

// A document_uri that would leave its folder or bucket is refused with a
// failed result saying why, before any read: kumo, like many path-cleaning
// HTTP layers, would serve s3://docs/../other/secret.txt from bucket other,
// and a/./b or a//b as a/b.
func TestDocumentURIsThatClimbAreRefusedBeforeAnyRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  func(other string) string
		why  string // the rule the message names
	}{
		{"dot dot", func(o string) string { return "../" + o + "/secret.txt" }, `has a ".." segment; keys must not climb out of their folder`},
		{"dot dot from a folder", func(o string) string { return "reports/../../" + o + "/secret.txt" }, `has a ".." segment;`},
		{"encoded dot dot", func(o string) string { return "%2e%2e/" + o + "/secret.txt" }, `has a ".." segment once percent-decoded;`},
		{"half-encoded dot dot", func(o string) string { return ".%2E/" + o + "/secret.txt" }, `has a ".." segment once percent-decoded;`},
		{"encoded slashes", func(o string) string { return "x%2f..%2f..%2f" + o + "%2fsecret.txt" }, `has a ".." segment once percent-decoded;`},
		{"trailing dot dot", func(string) string { return "reports/.." }, `has a ".." segment;`},
		{"dot", func(string) string { return "a/./secret.txt" }, `has a "." segment;`},
		{"double slash", func(string) string { return "a//secret.txt" }, `has an empty segment`},
		{"leading slash", func(string) string { return "/a/secret.txt" }, `has an empty segment`},
		{"backslash", func(o string) string { return `..\` + o + `\secret.txt` }, `has a backslash`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, rec := recordingEnv(t)
			other := emulator.Name(t, "other")
			createBucket(t, e.s3, other)
			putObject(t, e.s3, other, "secret.txt", []byte("Other tenant secret"))
			putObject(t, e.s3, e.docs, "a/secret.txt", []byte("Dot segment target"))
			e.process(jobBody(t, jobv1.Job{Task: "summarize", DocumentURI: "s3://" + e.docs + "/" + tt.key(other)}))
			raw := e.rawResult("job-0001")
			r := e.result("job-0001")
			if r.Status != jobv1.StatusFailed || r.Error == nil || r.Error.Code != jobv1.CodeInvalidJob {
				t.Fatalf("status %s error %+v, want failed %s", r.Status, r.Error, jobv1.CodeInvalidJob)
			}
			if !strings.HasPrefix(r.Error.Message, "invalid job: document_uri: ") || !strings.Contains(r.Error.Message, tt.why) {
				t.Errorf("message %q does not say %q", r.Error.Message, tt.why)
			}
			if got := rec.documentGets(e.results); len(got) != 0 {
				t.Errorf("GetObject calls %q, want none", got)
			}
			for _, secret := range []string{"Other tenant secret", "Dot segment target"} {
				if bytes.Contains(raw, []byte(secret)) {
					t.Errorf("the result holds %q", secret)
				}
			}
		})
	}
}
