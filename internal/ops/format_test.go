package ops

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/worker"
)

func TestReasonClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason string
		found  bool
		want   string
	}{
		{"message 1 is not a job: " + jobv1.ErrMalformed.Error() + ": unexpected end at byte 3", true, ReasonNotJSON},
		{`message 1 is not a job: unsupported job version "9" (this worker reads "1")`, true, ReasonVersion},
		{`message 1 is not a job: invalid job_id: missing; want ...`, true, ReasonJobID},
		{"something new", true, ReasonOther},
		{"", true, ReasonOther},
		{"", false, ReasonNone},
	}
	for _, tt := range tests {
		if got := ReasonClass(tt.reason, tt.found); got != tt.want {
			t.Errorf("ReasonClass(%q, %v) = %s, want %s", tt.reason, tt.found, got, tt.want)
		}
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	version := &DeadLetter{Class: ReasonVersion, Reason: `message m is not a job: unsupported job version "9"`}
	none := &DeadLetter{Class: ReasonNone}
	tests := []struct {
		filter      string
		version, no bool
	}{
		{"", true, true},
		{"  ", true, true},
		{"unsupported_version", true, false},
		{"UNSUPPORTED_VERSION", true, false},
		{"no_reason", false, true},
		{`version "9"`, true, false},
		{`Job Version`, true, false},
		{`version "8"`, false, false},
		{"not_json", false, false},
	}
	for _, tt := range tests {
		if got := version.Matches(tt.filter); got != tt.version {
			t.Errorf("version dead letter Matches(%q) = %v, want %v", tt.filter, got, tt.version)
		}
		if got := none.Matches(tt.filter); got != tt.no {
			t.Errorf("no-reason dead letter Matches(%q) = %v, want %v", tt.filter, got, tt.no)
		}
	}
}

func TestRedriveAttributesDropBookkeepingOnly(t *testing.T) {
	t.Parallel()
	s := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	in := map[string]types.MessageAttributeValue{
		worker.AttrDeadLetterReason: s("r"), worker.AttrSourceMessageID: s("id"), worker.AttrReceiveCount: s("3"),
		"tierq-job-id": s("j"), "bin": {DataType: aws.String("Binary"), BinaryValue: []byte{9}},
	}
	got := redriveAttributes(in)
	if len(got) != 2 || aws.ToString(got["tierq-job-id"].StringValue) != "j" || string(got["bin"].BinaryValue) != "\x09" {
		t.Errorf("redriveAttributes = %+v, want tierq-job-id and bin only", got)
	}
	if got := redriveAttributes(map[string]types.MessageAttributeValue{worker.AttrDeadLetterReason: s("r")}); got != nil {
		t.Errorf("only bookkeeping: got %+v, want nil (SQS refuses an empty map entry)", got)
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"plain":                   "plain",
		"two\nlines\tand tab":     "two\nlines\tand tab",
		"\x1b[2Jcleared":          `\x1b[2Jcleared`,
		"bell\a del\x7f c1\u009b": `bell\x07 del\x7f c1\x9b`,
		"bad \xff utf8":           "bad \uFFFD utf8",
		"é ü 日本":                  "é ü 日本",
	}
	for in, want := range tests {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
	if got := oneLine("a\n b\tc  \x1b", 100); got != `a b c \x1b` {
		t.Errorf("oneLine = %q", got)
	}
	if got := oneLine("abcdef", 4); got != "abc…" {
		t.Errorf("oneLine cut = %q, want abc…", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestWriteStatus(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	base := func() *Status {
		return &Status{At: at,
			Queue:       QueueStatus{URL: "q", Visible: 12, InFlight: 3, OldestAgeSource: "unknown: SQS has no oldest-message attribute; --cloudwatch reads AWS/SQS ApproximateAgeOfOldestMessage"},
			DeadLetters: DLQStatus{QueueStatus: QueueStatus{URL: "dlq"}, Complete: true},
			Results:     ResultsStatus{Location: "s3://b/results/"},
		}
	}
	tests := []struct {
		name   string
		change func(*Status)
		want   []string
		not    []string
	}{
		{name: "empty", want: []string{
			"job queue      q\n  12 visible, 3 in flight, 0 delayed\n  oldest message: unknown: SQS has no oldest-message attribute",
			"dead letters   dlq\n  0 visible, 0 in flight, 0 delayed\n",
			"results        s3://b/results/\n  0 results\n"},
			not: []string{"reason", "throughput", "status "}},
		{name: "age from cloudwatch", change: func(s *Status) {
			s.Queue.OldestAgeSeconds, s.Queue.OldestAgeSource = ptr(192.0), "CloudWatch AWS/SQS ApproximateAgeOfOldestMessage, minute of X"
		}, want: []string{"oldest message: 3m12s (CloudWatch AWS/SQS ApproximateAgeOfOldestMessage, minute of X)"}},
		{name: "dead letters read", change: func(s *Status) {
			s.DeadLetters.Visible, s.DeadLetters.Read = 3, 3
			s.DeadLetters.Reasons = []ReasonCount{{ReasonVersion, 2, "message m is not a job: unsupported job version \"9\"\x1b[2J"}, {ReasonNone, 1, ""}}
			s.DeadLetters.OldestSentAt = ptr(at.Add(-90 * time.Minute))
		}, want: []string{
			"read 3 (all of them) and made visible again; each one's receive count is now one higher",
			"unsupported_version      2  unsupported job version \"9\"\\x1b[2J\n",
			"          no_reason      1  (no tierq reason: the job queue's redrive policy moved it, or it was sent by hand)",
			"oldest dead letter read: sent 2026-11-30T08:30:00Z (1h30m0s ago)"}},
		{name: "dead letters partly read", change: func(s *Status) {
			s.DeadLetters.Visible, s.DeadLetters.Read, s.DeadLetters.Complete = 3000, 1000, false
			s.DeadLetters.Reasons = []ReasonCount{{ReasonNone, 1000, ""}}
		}, want: []string{"read 1000 (not all: counts are of those read)"}},
		{name: "dead letters all in flight", change: func(s *Status) {
			s.DeadLetters.InFlight, s.DeadLetters.Complete = 4, false
		}, want: []string{"reasons: none could be received: they are in flight"}},
		{name: "dead letters not read", change: func(s *Status) {
			s.DeadLetters.Visible, s.DeadLetters.NotRead = 5, "reading disabled (--dlq-scan 0)"
		}, want: []string{"reasons: not read: reading disabled (--dlq-scan 0)"}},
		{name: "results", change: func(s *Status) {
			r := &s.Results
			r.Results, r.ClaimsWithoutResult, r.Unreadable, r.Other = 6, 1, 2, 3
			r.ByStatus = []Group{{"succeeded", 3, 1300, 130, 0.053}, {"failed", 2, 0, 0, 0}}
			r.ByTier = []Group{{"economy", 3, 350, 30, 0.0035}}
			r.FailedByCode = []Count{{"invalid_job", 2}}
			r.TotalCostUSD = 0.0535
			r.FirstFinished, r.LastFinished, r.JobsPerMinute = ptr(at), ptr(at.Add(5*time.Minute)), ptr(1.2)
		}, want: []string{
			"6 results, 1 claimed without a result yet (running, or their worker died within the claim lease), 2 .json objects that are not result v1, 3 other objects",
			"     status  jobs  input tokens  output tokens  cost USD",
			"  succeeded     3          1300            130  0.053000",
			"     failed     2             0              0  0.000000",
			"    economy     3           350             30  0.003500",
			"failed by code: invalid_job 2",
			"total cost 0.053500 USD (as recorded in the results)",
			"throughput: 1.2 jobs/min: 6 results finished over 5m0s (2026-11-30T10:00:00Z to 2026-11-30T10:05:00Z)"},
			not: []string{" \n"}},
		{name: "escapes in result fields shown, not run", change: func(s *Status) {
			r := &s.Results
			r.Results = 1
			r.ByStatus = []Group{{Name: "failed\x1b[2J", Jobs: 1}}
			r.ByTier = []Group{{Name: "t\x1b]0;x\x07", Jobs: 1}}
			r.FailedByCode = []Count{{"code\x1b[2J", 1}}
		}, want: []string{`failed\x1b[2J`, `t\x1b]0;x\x07`, `code\x1b[2J 1`}, not: []string{"\x1b"}},
		{name: "one instant", change: func(s *Status) {
			s.Results.Results, s.Results.FirstFinished, s.Results.LastFinished = 1, ptr(at), ptr(at)
			s.Results.ByStatus = []Group{{Name: "succeeded", Jobs: 1}}
		}, want: []string{"throughput: unknown: every result finished at 2026-11-30T10:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := base()
			if tt.change != nil {
				tt.change(s)
			}
			var b strings.Builder
			if err := WriteStatus(&b, s); err != nil {
				t.Fatal(err)
			}
			checkOutput(t, b.String(), tt.want, tt.not)
		})
	}
}

func TestWriteResult(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	long := strings.Repeat("word ", 200) // 1,000 characters
	base := func() jobv1.Result {
		return jobv1.Result{JobID: "j1", Status: jobv1.StatusSucceeded, Task: "summarize", Tier: "economy", TierRule: "size",
			TierReason: "about 400 tokens", ModelID: "us.amazon.nova-micro-v1:0", ServiceTier: "default", StopReason: "end_turn",
			Usage: jobv1.Usage{InputTokens: 400, OutputTokens: 80}, Cost: jobv1.Cost{InputUSD: 0.000014, OutputUSD: 0.0000112, TotalUSD: 0.0000252},
			Attempts: 1, Calls: []jobv1.Call{{At: at, Tier: "economy", ModelID: "us.amazon.nova-micro-v1:0", ServiceTier: "default",
				Usage: jobv1.Usage{InputTokens: 400, OutputTokens: 80}, Cost: jobv1.Cost{TotalUSD: 0.0000252}}},
			Timings: jobv1.Timings{EnqueuedAt: at.Add(-time.Second), StartedAt: at.Add(-900 * time.Millisecond), FinishedAt: at, QueueMs: 100, ModelMs: 700, TotalMs: 900},
			Worker:  jobv1.WorkerInfo{ID: "w1", Version: "dev", ReceiveCount: 1},
			Output:  &jobv1.Output{Text: "short answer"}, Metadata: map[string]string{"tenant": "acme", "b": "2"}}
	}
	tests := []struct {
		name   string
		change func(*jobv1.Result)
		limit  int
		want   []string
		not    []string
	}{
		{name: "succeeded", limit: DefaultOutputChars, want: []string{
			"job          j1\nstatus       succeeded\ntask         summarize\n",
			"tier         economy (rule size: about 400 tokens)\n",
			"model        us.amazon.nova-micro-v1:0, service tier default\n",
			"cost         0.0000252 USD (input 0.000014, output 0.0000112, cache read 0, cache write 0, guardrail 0)",
			"usage        input 400, output 80, cache read 0, cache write 0 tokens",
			"attempts     1 model call(s), 1 answered\n             1. 2026-11-30T10:00:00.000Z economy on us.amazon.nova-micro-v1:0 (default): in 400, out 80 tokens, 0.0000252 USD\n",
			"timings      enqueued 2026-11-30T09:59:59.000Z, started 2026-11-30T09:59:59.100Z, finished 2026-11-30T10:00:00.000Z; queue 100 ms, model 700 ms, total 900 ms",
			"worker       w1 (version dev), delivery 1",
			"metadata     b=2 tenant=acme",
			"output:\n  short answer\n"},
			not: []string{"error", "more characters"}},
		{name: "failed", change: func(r *jobv1.Result) {
			r.Status, r.Output, r.Calls, r.Attempts = jobv1.StatusFailed, nil, nil, 0
			r.Error = &jobv1.ErrorInfo{Code: jobv1.CodeInvalidJob, Message: "invalid job: \"labels\" must have at least 2 items"}
		}, want: []string{"status       failed\n", "error        invalid_job: invalid job: \"labels\" must have at least 2 items\n", "attempts     0 model call(s), 0 answered\n"},
			not: []string{"output:"}},
		{name: "blocked with guardrail and escalation", change: func(r *jobv1.Result) {
			r.Status = jobv1.StatusBlocked
			r.Guardrail = &jobv1.GuardrailOutcome{ID: "g", Version: "1", Action: "blocked", Policies: []string{"sensitive_information"}, PIITypes: []string{"US_SOCIAL_SECURITY_NUMBER:BLOCKED"}}
			r.Escalations = []jobv1.Escalation{{FromTier: "economy", ToTier: "standard", Reason: "max_tokens", Failed: "model_error"}}
			r.Spillover = &jobv1.Spillover{From: "us.m", To: "global.m", After: 31000}
		}, want: []string{"guardrail    blocked; policies sensitive_information; pii US_SOCIAL_SECURITY_NUMBER:BLOCKED (g version 1)",
			"escalation   economy → standard: max_tokens (failed: model_error)", "spillover    us.m → global.m after 31000 ms throttled"}},
		{name: "long output cut", change: func(r *jobv1.Result) { r.Output.Text = long }, limit: 20,
			want: []string{"output:\n  word word word word \n  [… 980 more characters; --full prints all of it, --json the raw result]\n"}},
		{name: "full output", change: func(r *jobv1.Result) { r.Output.Text = long }, limit: 0,
			want: []string{long}, not: []string{"more characters"}},
		{name: "escapes shown, not run", change: func(r *jobv1.Result) {
			r.Output.Text = "hi\x1b]0;pwned\x07 there\nnext"
			r.TierReason = "evil\x1b[2J"
			r.Status, r.JobID = "succeeded\x1b[2J", "j1\x1b[2J"
		}, limit: DefaultOutputChars, want: []string{`  hi\x1b]0;pwned\x07 there` + "\n  next\n", `(rule size: evil\x1b[2J)`}, not: []string{"\x1b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := base()
			if tt.change != nil {
				tt.change(&r)
			}
			var b strings.Builder
			if err := WriteResult(&b, r, tt.limit); err != nil {
				t.Fatal(err)
			}
			checkOutput(t, b.String(), tt.want, tt.not)
		})
	}
}

func TestWriteRedrive(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		s      RedriveSummary
		dryRun bool
		want   []string
		not    []string
	}{
		{name: "moved", s: RedriveSummary{Moved: 5, Skipped: 2}, want: []string{"moved 5, skipped 2, failed 0\n"}, not: []string{"both", "interrupted"}},
		{name: "failed and in both", s: RedriveSummary{Moved: 5, Failed: 1, InBoth: 3}, want: []string{
			"moved 5, skipped 0, failed 1, in both queues 3\n",
			"failed messages could not be sent and are still in the dead-letter queue",
			"the next redrive sends them again", "one result and one model call per job_id"}},
		{name: "interrupted", s: RedriveSummary{Moved: 9, Interrupted: true}, want: []string{"interrupted: every message is in exactly one queue; run the same command again"}},
		{name: "dry run", dryRun: true, s: RedriveSummary{Skipped: 1, WouldMove: []*DeadLetter{
			{MessageID: "m1", JobID: "job-1", Class: ReasonNone, SentAt: now.Add(-2 * time.Hour)},
			{MessageID: "m2", Class: ReasonVersion, Reason: "unsupported job version \"9\"\nsecond line"},
		}}, want: []string{
			"would move 2 dead letters (dry run: nothing moved; each one read has a receive count one higher)\n",
			"  m1  job job-1  no_reason  sent 2h0m0s ago  (no tierq reason: the job queue's redrive policy moved it, or it was sent by hand)\n",
			"  m2  job -  unsupported_version  sent -  unsupported job version \"9\" second line\n",
			"skipped 1 (not matching --reason, or beyond --max)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			if err := WriteRedrive(&b, tt.s, tt.dryRun, now); err != nil {
				t.Fatal(err)
			}
			checkOutput(t, b.String(), tt.want, tt.not)
		})
	}
}

// checkOutput checks that out has every want and none of not.
func checkOutput(t *testing.T, out string, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, w := range not {
		if strings.Contains(out, w) {
			t.Errorf("output has %q:\n%s", w, out)
		}
	}
}
