package worker

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := DefaultConfig()
	valid.QueueURL, valid.DeadLetterQueueURL = "https://sqs/q", "https://sqs/dlq"

	cases := map[string]struct {
		mutate func(*Config)
		want   []string // fields named in the problems, one problem each
	}{
		"defaults with URLs": {mutate: func(*Config) {}},
		"zero config": {
			mutate: func(c *Config) { *c = Config{} },
			want: []string{"QueueURL", "DeadLetterQueueURL", "Concurrency", "MaxMessages", "VisibilityTimeout",
				"HeartbeatInterval", "DeleteFlushInterval"},
		},
		"ranges": {
			mutate: func(c *Config) {
				c.WaitTime = 21 * time.Second
				c.MaxMessages = 11
				c.ReleaseDelay = 13 * time.Hour
				c.DrainTimeout = -time.Second
			},
			want: []string{"WaitTime", "MaxMessages", "ReleaseDelay", "DrainTimeout"},
		},
		"fractional seconds": {
			mutate: func(c *Config) {
				c.WaitTime = 1500 * time.Millisecond
				c.VisibilityTimeout = 2500 * time.Millisecond
				c.ReleaseDelay = 100 * time.Millisecond
			},
			want: []string{"WaitTime", "VisibilityTimeout", "ReleaseDelay"},
		},
		"intervals must fit the visibility timeout": {
			mutate: func(c *Config) {
				c.VisibilityTimeout = 10 * time.Second
				c.HeartbeatInterval = 5 * time.Second
				c.DeleteFlushInterval = 6 * time.Second
			},
			want: []string{"HeartbeatInterval", "DeleteFlushInterval"},
		},
		"same queue twice": {
			mutate: func(c *Config) { c.DeadLetterQueueURL = c.QueueURL },
			want:   []string{"DeadLetterQueueURL"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := valid
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want problems with %v", tc.want)
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) || len(joined.Unwrap()) != len(tc.want) {
				t.Errorf("Validate() reported:\n%v\nwant %d problems, one for each of %v", err, len(tc.want), tc.want)
			}
			var fields []string
			for _, e := range joined.Unwrap() {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Errorf("problem %q is not a *FieldError", e)
					continue
				}
				fields = append(fields, fe.Field)
			}
			for _, field := range tc.want {
				if !strings.Contains(err.Error(), field+": ") || !slices.Contains(fields, field) {
					t.Errorf("Validate() does not report %s as a field error:\n%v", field, err)
				}
			}
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	t.Parallel()
	c := Config{VisibilityTimeout: 120 * time.Second, Concurrency: 3}
	c.ApplyDefaults()
	want := Config{
		Concurrency: 3, WaitTime: 20 * time.Second, MaxMessages: 10, VisibilityTimeout: 120 * time.Second,
		HeartbeatInterval: 30 * time.Second, ReleaseDelay: 30 * time.Second, DrainTimeout: 25 * time.Second,
		DeleteFlushInterval: 100 * time.Millisecond,
	}
	if c != want {
		t.Errorf("ApplyDefaults gave %+v, want %+v", c, want)
	}
}

// The defaults let a killed worker's messages come back within about 30s
// (VisibilityTimeout), with the heartbeat well inside it.
func TestDefaultsRecoverFast(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	if c.VisibilityTimeout != 30*time.Second || c.HeartbeatInterval != 7500*time.Millisecond {
		t.Errorf("visibility timeout %v, heartbeat %v; want 30s and 7.5s", c.VisibilityTimeout, c.HeartbeatInterval)
	}
	if c.HeartbeatInterval >= c.VisibilityTimeout/2 {
		t.Errorf("heartbeat %v is not well inside the visibility timeout %v", c.HeartbeatInterval, c.VisibilityTimeout)
	}
}

func TestFieldErrorMessage(t *testing.T) {
	t.Parallel()
	err := Config{DeadLetterQueueURL: "d"}.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "QueueURL" || fe.Problem != "required" || fe.Error() != "QueueURL: required" {
		t.Errorf("first problem = %#v, want QueueURL: required", fe)
	}
}
