package app_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/testenv"
)

// kumo serves SQS and S3 for every test of this file: one instance per
// process (emulator.Start).
var (
	kumoOnce sync.Once
	kumoURL  string
)

func kumo(t *testing.T) (*sqs.Client, *s3.Client) {
	t.Helper()
	kumoOnce.Do(func() { kumoURL, _ = emulator.Start() })
	return emulator.SQS(kumoURL), emulator.S3(kumoURL)
}

// checkEnv is what one start-up check test runs against: queues and a
// bucket on kumo, a Bedrock simulator, and the settings and clients that
// point at them.
type checkEnv struct {
	settings app.Settings
	clients  app.Clients
	converse *countingConverse
	logs     *testenv.Buffer
}

// newCheckEnv creates a queue, a dead-letter queue and a results bucket,
// and starts a simulator with simCfg changed by change.
func newCheckEnv(t *testing.T, change func(*bedrocksim.Config)) *checkEnv {
	t.Helper()
	ctx := t.Context()
	sqsc, s3c := kumo(t)
	names := map[string]string{}
	for _, n := range []string{"jobs", "dlq", "results"} {
		names[n] = emulator.Name(t, "pf-"+n)
	}
	urls := map[string]string{}
	for _, q := range []string{"jobs", "dlq"} {
		out, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(names[q])})
		if err != nil {
			t.Fatal(err)
		}
		urls[q] = *out.QueueUrl
	}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(names["results"])}); err != nil {
		t.Fatal(err)
	}
	cfg := bedrocksim.DefaultConfig()
	if change != nil {
		change(&cfg)
	}
	sim, err := bedrocksim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	br := emulator.Bedrock(srv.URL)
	conv := &countingConverse{next: br}
	return &checkEnv{
		settings: app.Settings{QueueURL: urls["jobs"], DeadLetterQueueURL: urls["dlq"], ResultsBucket: names["results"]},
		clients: app.Clients{Queue: sqsc, Store: s3c, Converser: conv, QueueInfo: sqsc, Bedrock: br,
			Region: emulator.Region, BedrockEndpoint: srv.URL},
		converse: conv,
		logs:     &testenv.Buffer{},
	}
}

func (e *checkEnv) preflight(t *testing.T) error {
	t.Helper()
	w, err := app.New(e.settings, e.clients, &testenv.Buffer{}, app.NewLogger(e.logs, slog.LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	return w.Preflight(t.Context())
}

// countingConverse counts the Converse calls the checks make.
type countingConverse struct {
	next interface {
		Converse(context.Context, *bedrockruntime.ConverseInput, ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error)
	}
	calls     atomic.Int32
	maxTokens atomic.Int32
	fail      error // answered instead of calling next
}

func (c *countingConverse) Converse(ctx context.Context, in *bedrockruntime.ConverseInput, o ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	c.calls.Add(1)
	if in.InferenceConfig != nil && in.InferenceConfig.MaxTokens != nil {
		c.maxTokens.Store(max(c.maxTokens.Load(), *in.InferenceConfig.MaxTokens))
	}
	if in.GuardrailConfig == nil {
		return nil, errors.New("a check called Converse without the tier's guardrail, which the IAM policy denies")
	}
	if c.fail != nil {
		return nil, c.fail
	}
	return c.next.Converse(ctx, in, o...)
}

// tiersFile writes the shipped tiers with each old string replaced by new.
func tiersFile(t *testing.T, oldNew ...string) string {
	t.Helper()
	data, err := os.ReadFile("../../tiering/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i < len(oldNew); i += 2 {
		if !strings.Contains(text, oldNew[i]) {
			t.Fatalf("tiering/default.yaml has no %q", oldNew[i])
		}
		text = strings.ReplaceAll(text, oldNew[i], oldNew[i+1])
	}
	path := t.TempDir() + "/tiers.yaml"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	haiku = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
	nova  = "us.amazon.nova-micro-v1:0"
)

// TestPreflight runs the start-up checks against kumo and the Bedrock
// simulator, one misconfiguration at a time, and checks each message names
// the resource, the tiers that use it and the fix.
func TestPreflight(t *testing.T) {
	t.Parallel()
	closedPort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := "http://" + ln.Addr().String()
		ln.Close()
		return addr
	}()
	tests := []struct {
		name   string
		sim    func(*bedrocksim.Config)
		change func(*checkEnv)
		// want: one problem per entry, in order, each containing every
		// string of its entry; nil: the checks pass.
		want      [][]string
		converses int32  // Converse calls expected, -1: any
		logs      string // logged once per model, when set
	}{
		{name: "all good", converses: 3},
		{name: "disabled model", sim: func(c *bedrocksim.Config) {
			m := c.Models[haiku]
			m.Disabled = true
			c.Models[haiku] = m
		}, want: [][]string{{"model " + haiku + " (tier standard): access denied (AccessDeniedException",
			"enable model access for " + haiku + " in the Bedrock console and allow bedrock:InvokeModel on its ARN"}}, converses: 3},
		{name: "unknown model", change: func(e *checkEnv) {
			e.settings.TiersFile = tiersFile(t, nova, "us.amazon.nova-nano-v9:0")
		}, want: [][]string{{"model us.amazon.nova-nano-v9:0 (tier economy): model ID us.amazon.nova-nano-v9:0 is not available in region us-east-1",
			"ValidationException: The provided model identifier is invalid."}}, converses: 3},
		{name: "missing guardrail version", change: func(e *checkEnv) {
			e.settings.TiersFile = tiersFile(t, `version: "1"`, `version: "7"`)
		}, want: [][]string{{"guardrail tierq-default version 7 (tiers economy, standard, premium): does not exist in region us-east-1",
			"ResourceNotFoundException", "publish the version, or fix guardrail.id and guardrail.version in the tiers file"}}, converses: 0},
		{name: "missing queue", change: func(e *checkEnv) {
			e.settings.QueueURL = strings.Replace(e.settings.QueueURL, "pf-jobs", "pf-gone", 1)
		}, want: [][]string{{"job queue ", "pf-gone", "does not exist in region us-east-1", "create it, or fix the queue URL"}}, converses: 3},
		{name: "missing bucket", change: func(e *checkEnv) { e.settings.ResultsBucket += "-gone" },
			want: [][]string{{"results bucket ", "-gone: does not exist (create it", "NoSuchBucket"}}, converses: 3},
		{name: "unreachable endpoint", change: func(e *checkEnv) {
			br := emulator.Bedrock(closedPort)
			e.converse.next = br
			e.clients.Bedrock, e.clients.BedrockEndpoint = br, closedPort
		}, want: [][]string{
			{"guardrail tierq-default version 1 (tiers economy, standard, premium): cannot reach Bedrock at " + closedPort + ": check AWS_REGION / AWS_ENDPOINT_URL_BEDROCK_RUNTIME"},
		}, converses: 0},
		{name: "every problem at once", sim: func(c *bedrocksim.Config) {
			m := c.Models[nova]
			m.Disabled = true
			c.Models[nova] = m
		}, change: func(e *checkEnv) {
			e.settings.DeadLetterQueueURL += "-gone"
			e.settings.ResultsBucket += "-gone"
		}, want: [][]string{{"results bucket"}, {"dead-letter queue"}, {"model " + nova + " (tier economy): access denied"}}, converses: 3},
		{name: "server errors pass", sim: func(c *bedrocksim.Config) {
			for id, m := range c.Models {
				m.Faults.ServiceUnavailable = 1
				c.Models[id] = m
			}
		}, converses: 3, logs: `"level":"WARN","msg":"model check failed with a server error; starting anyway"`},
		{name: "throttled models pass", change: func(e *checkEnv) {
			e.converse.fail = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Too many requests"}
		}, converses: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newCheckEnv(t, tt.sim)
			if tt.change != nil {
				tt.change(e)
			}
			err := e.preflight(t)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Preflight = %v, want nil", err)
				}
				if !strings.Contains(e.logs.String(), `"msg":"start-up checks passed"`) {
					t.Errorf("no start-up checks passed line:\n%s", e.logs.String())
				}
			} else {
				var pe *app.PreflightError
				if !errors.As(err, &pe) {
					t.Fatalf("Preflight = %v, want a *PreflightError", err)
				}
				t.Logf("Preflight:\n%v", err)
				if len(pe.Problems) != len(tt.want) {
					t.Errorf("%d problems, want %d:\n%v", len(pe.Problems), len(tt.want), err)
				}
				for i, want := range tt.want {
					for _, w := range want {
						if i < len(pe.Problems) && !strings.Contains(pe.Problems[i].Error(), w) {
							t.Errorf("problem %d = %q, want it to contain %q", i, pe.Problems[i].Error(), w)
						}
					}
				}
				if strings.Contains(err.Error(), "preflight: preflight") {
					t.Errorf("doubled prefix: %v", err)
				}
			}
			if tt.logs != "" && strings.Count(e.logs.String(), tt.logs) != 3 {
				t.Errorf("want %s once per model:\n%s", tt.logs, e.logs.String())
			}
			if got := e.converse.calls.Load(); tt.converses >= 0 && got != tt.converses {
				t.Errorf("%d Converse calls, want %d (one per distinct model whose guardrail exists)", got, tt.converses)
			}
			if m := e.converse.maxTokens.Load(); m > 1 {
				t.Errorf("a model check asked for %d output tokens, want 1", m)
			}
		})
	}
}

// An unreachable endpoint is named once per resource, and all are reported.
func TestPreflightUnreachableNamesEveryResource(t *testing.T) {
	t.Parallel()
	e := newCheckEnv(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	br := emulator.Bedrock(closed)
	e.converse.next, e.clients.Bedrock, e.clients.BedrockEndpoint = br, br, closed
	// Without a guardrail check to stop first, each model is tried.
	e.clients.Bedrock = nil
	err = e.preflight(t)
	var pe *app.PreflightError
	if !errors.As(err, &pe) || len(pe.Problems) != 3 {
		t.Fatalf("Preflight = %v, want one problem per model", err)
	}
	for _, p := range pe.Problems {
		if !strings.HasPrefix(p.Resource, "model ") || !strings.Contains(p.Problem, "cannot reach Bedrock at "+closed) {
			t.Errorf("problem %q, want a model that cannot be reached at %s", p.Error(), closed)
		}
	}
}

// countTokensChecks answers CountTokens as a model without token counting
// does, and counts the calls.
type countTokensChecks struct {
	app.BedrockChecks
	unsupported bool
	calls       atomic.Int32
}

func (c *countTokensChecks) CountTokens(ctx context.Context, in *bedrockruntime.CountTokensInput, o ...func(*bedrockruntime.Options)) (*bedrockruntime.CountTokensOutput, error) {
	c.calls.Add(1)
	if c.unsupported {
		return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "The provided model doesn't support counting tokens."}
	}
	return c.BedrockChecks.CountTokens(ctx, in, o...)
}

// The model check modes: converse always calls, count-tokens calls
// CountTokens and falls back to Converse where it is unsupported,
// count-tokens-only never spends a token.
func TestPreflightModelCheckModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode                  string
		unsupported           bool
		countTokens, converse int32
		warn                  string
	}{
		{app.ModelCheckConverse, false, 0, 3, ""},
		{app.ModelCheckCountTokens, false, 3, 0, ""},
		{app.ModelCheckCountTokens, true, 3, 3, ""},
		{app.ModelCheckCountTokensOnly, true, 3, 0, "model not checked at start-up: it does not support CountTokens"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			e := newCheckEnv(t, nil)
			ct := &countTokensChecks{BedrockChecks: e.clients.Bedrock, unsupported: tt.unsupported}
			e.clients.Bedrock = ct
			e.settings.ModelCheck = tt.mode
			if err := e.preflight(t); err != nil {
				t.Fatal(err)
			}
			if ct.calls.Load() != tt.countTokens || e.converse.calls.Load() != tt.converse {
				t.Errorf("%d CountTokens and %d Converse calls, want %d and %d", ct.calls.Load(), e.converse.calls.Load(), tt.countTokens, tt.converse)
			}
			if tt.warn != "" && strings.Count(e.logs.String(), tt.warn) != 3 {
				t.Errorf("want one WARN %q per model:\n%s", tt.warn, e.logs.String())
			}
		})
	}
}

// A disabled model fails the count-tokens check too, and the message says
// CountTokens has its own IAM action.
func TestPreflightCountTokensAccessDenied(t *testing.T) {
	t.Parallel()
	e := newCheckEnv(t, func(c *bedrocksim.Config) {
		m := c.Models[haiku]
		m.Disabled = true
		c.Models[haiku] = m
	})
	e.settings.ModelCheck = app.ModelCheckCountTokens
	err := e.preflight(t)
	if err == nil || !strings.Contains(err.Error(), "enable model access for "+haiku) || !strings.Contains(err.Error(), "bedrock:CountTokens") {
		t.Errorf("Preflight = %v, want model access and bedrock:CountTokens named", err)
	}
}
