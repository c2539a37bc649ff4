package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// keyRecorder records the keys a Store is asked about.
type keyRecorder struct {
	*fakeStore
	keys []string
}

func (k *keyRecorder) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	k.keys = append(k.keys, aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key))
	return k.fakeStore.HeadObject(ctx, in, o...)
}

func (k *keyRecorder) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	k.keys = append(k.keys, aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key))
	return k.fakeStore.GetObject(ctx, in, o...)
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	denied := sdkErr(403, &smithy.GenericAPIError{Code: "Forbidden"})
	tests := []struct {
		name           string
		headErr        error
		getErr         error
		want           []string // in the error; nil: no error
		wantHead, gets int
	}{
		{"missing key: ready", nil, nil, nil, 1, 1},
		{"HEAD and GET denied", denied, sdkErr(403, &smithy.GenericAPIError{Code: "AccessDenied"}),
			[]string{"results bucket results: GetObject", "403 instead of 404", "s3:ListBucket", "s3:GetObject", "every job would look unfinished"}, 1, 1},
		{"HEAD denied, GET finds no key", denied, nil, []string{"results bucket results: HeadObject", "s3:ListBucket"}, 1, 1},
		{"HEAD denied for rejected credentials", denied, sdkErr(403, &smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}),
			[]string{"GetObject", "credentials", "SignatureDoesNotMatch"}, 1, 1},
		{"GET denied after a bare 404", nil, sdkErr(403, &smithy.GenericAPIError{Code: "AccessDenied"}), []string{"GetObject", "s3:ListBucket"}, 1, 1},
		{"missing bucket", nil, sdkErr(404, &smithy.GenericAPIError{Code: "NoSuchBucket"}), []string{"results bucket results does not exist"}, 1, 1},
		{"credentials", sdkErr(400, &smithy.GenericAPIError{Code: "ExpiredToken"}), nil, []string{"credentials", "ExpiredToken"}, 1, 0},
		{"S3 unavailable", sdkErr(503, &smithy.GenericAPIError{Code: "SlowDown"}), nil, []string{"results bucket results: HeadObject", "SlowDown"}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUnit(t, nil, func(c *Config) { c.ResultsPrefix = "out/" })
			u.store.headErr, u.store.getErr = tt.headErr, tt.getErr
			rec := &keyRecorder{fakeStore: u.store}
			u.p.obj = s3Objects{s3: rec}
			err := u.p.Preflight(context.Background())
			if tt.want == nil && err != nil {
				t.Fatalf("Preflight = %v, want nil", err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "results bucket results") {
				t.Errorf("Preflight = %v, want it to start by naming the results bucket (the caller adds its own prefix)", err)
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Preflight = %v, want it to mention %q", err, w)
				}
			}
			if u.store.heads != tt.wantHead || u.store.gets != tt.gets {
				t.Errorf("%d HEADs and %d GETs, want %d and %d", u.store.heads, u.store.gets, tt.wantHead, tt.gets)
			}
			for _, k := range rec.keys {
				if !strings.HasPrefix(k, "results/out/.tierq-preflight-") || strings.HasSuffix(k, ".json") {
					t.Errorf("looked up %s, want a key under the results prefix that no job uses", k)
				}
			}
			if u.store.puts != 0 {
				t.Error("Preflight wrote an object")
			}
		})
	}
}

func TestPreflightKeysDiffer(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, nil)
	rec := &keyRecorder{fakeStore: u.store}
	u.p.obj = s3Objects{s3: rec}
	for range 2 {
		if err := u.p.Preflight(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.keys) != 4 || rec.keys[0] == rec.keys[2] {
		t.Errorf("keys %v, want a fresh random key per run", rec.keys)
	}
}
