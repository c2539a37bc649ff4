package pipeline

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/tiering"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() Config { return Config{ResultsBucket: "results", Tiers: tiering.Default()} }
	brokenTiers := tiering.Default()
	brokenTiers.Tiers[0].ModelID = ""
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // nil: valid
	}{
		{"defaults are valid", func(*Config) {}, nil},
		{"missing bucket and tiers", func(c *Config) { *c = Config{} }, []string{"results bucket: required", "tiers: required"}},
		{"invalid tiers", func(c *Config) { c.Tiers = brokenTiers }, []string{"tiers:", "model_id: required"}},
		{"prefix with a leading slash", func(c *Config) { c.ResultsPrefix = "/results/" }, []string{"must not start with /"}},
		{"bad input bucket", func(c *Config) { c.InputBuckets = []string{"ok", "s3://x"} }, []string{`input buckets: [1] "s3://x" is not a bucket name`}},
		{"negative size limit", func(c *Config) { c.MaxDocumentBytes = -1 }, []string{"max document bytes"}},
		{"negative retries", func(c *Config) { c.Retry.MaxAttempts = -1; c.Retry.Base = -time.Second },
			[]string{"retry max attempts", "must not be negative"}},
		{"cap below base", func(c *Config) { c.Retry.Base, c.Retry.Cap = time.Second, time.Millisecond }, []string{"retry cap: 1ms is below retry base 1s"}},
		{"claim lease under a second", func(c *Config) { c.ClaimLease = 500 * time.Millisecond }, []string{"claim lease: must be between 1s and 12h0m0s (SQS's longest delay), got 500ms"}},
		{"claim lease beyond SQS", func(c *Config) { c.ClaimLease = 13 * time.Hour }, []string{"claim lease: must be between", "got 13h0m0s"}},
		{"spillover within the snooze budget", func(c *Config) { spillTo(&c.Tiers.Tiers[2], "global.m") }, nil},
		{"spillover after the snooze budget", func(c *Config) {
			spillTo(&c.Tiers.Tiers[2], "global.m")
			c.Tiers.Tiers[2].SpilloverAfter = 5 * time.Minute
		}, []string{"tiers: tiers[2] (premium) spillover_after 5m0s: must be shorter than retry max snooze 5m0s"}},
		{"spillover with a longer snooze budget", func(c *Config) {
			spillTo(&c.Tiers.Tiers[2], "global.m")
			c.Tiers.Tiers[2].SpilloverAfter = 5 * time.Minute
			c.Retry.MaxSnooze = 6 * time.Minute
		}, nil},
		{"spillover delay defaulted against a short snooze budget", func(c *Config) {
			spillTo(&c.Tiers.Tiers[0], "global.m")
			c.Retry.MaxSnooze = 10 * time.Second
		}, []string{"tiers[0] (economy) spillover_after 30s: must be shorter than retry max snooze 10s"}},
		{"negative timeouts", func(c *Config) { c.CallTimeout, c.S3Timeout, c.ResultWriteTimeout = -1, -2, -3 },
			[]string{"call timeout: must not be negative (got -1ns)", "S3 timeout: must not be negative (got -2ns)",
				"result write timeout: must not be negative (got -3ns)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	t.Parallel()
	var c Config
	c.ApplyDefaults()
	want := Config{
		ResultsPrefix: "results/", MaxDocumentBytes: 8 << 20, MetricsNamespace: "tierq", WorkerID: c.WorkerID, Version: "dev",
		Retry: RetryConfig{MaxAttempts: 4, Base: 500 * time.Millisecond, Cap: 8 * time.Second,
			MaxSnooze: 5 * time.Minute},
		CallTimeout: 10 * time.Minute, S3Timeout: time.Minute, ResultWriteTimeout: 30 * time.Second,
		ClaimLease: 30 * time.Second,
	}
	if c.WorkerID == "" {
		t.Error("WorkerID default is empty, want the host name")
	}
	if c.ResultsPrefix != want.ResultsPrefix || c.MaxDocumentBytes != want.MaxDocumentBytes || c.MetricsNamespace != want.MetricsNamespace ||
		c.Version != want.Version || c.Retry != want.Retry ||
		c.CallTimeout != 10*time.Minute || c.S3Timeout != time.Minute || c.ResultWriteTimeout != 30*time.Second ||
		c.ClaimLease != want.ClaimLease {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := New(Config{}, Deps{})
	for _, w := range []string{"results bucket", "tiers", "Converser is required", "Store is required"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("New = %v, want it to mention %q", err, w)
		}
	}
}

// Each problem is a *FieldError naming its Config field, so that a command
// can name the flag that sets it.
func TestValidateFieldErrors(t *testing.T) {
	t.Parallel()
	c := Config{ClaimLease: time.Millisecond, Tiers: tiering.Default(), Retry: RetryConfig{MaxSnooze: time.Second}}
	spillTo(&c.Tiers.Tiers[0], "global.m")
	err := c.Validate()
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("problem %q is not a *FieldError", e)
		}
		got = append(got, fe.Field)
	}
	if want := []string{"ResultsBucket", "ClaimLease", "Tiers"}; !slices.Equal(got, want) {
		t.Errorf("fields %v, want %v:\n%v", got, want, err)
	}
	broken := tiering.Default()
	broken.Tiers[0].ModelID = ""
	var fe *FieldError
	if err := (Config{ResultsBucket: "b", Tiers: broken}).Validate(); !errors.As(err, &fe) || fe.Field != "Tiers" || fe.Err == nil {
		t.Errorf("invalid tiers: %#v, want a Tiers FieldError wrapping the tiers' error", fe)
	}
}
