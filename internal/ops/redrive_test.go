package ops_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/ops"
	"github.com/tierq/tierq/worker"
)

// The reasons the worker writes, one per class (pipeline.go wraps jobv1's
// errors as "message ID is not a job: ...").
const (
	notJSONReason = `message m1 is not a job: message is not a JSON job object: invalid character 'H' at byte 0, want a JSON object`
	versionReason = `message m2 is not a job: unsupported job version "9" (this worker reads "1")`
	jobIDReason   = `message m3 is not a job: invalid job_id: "../x"; want 1 to 128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, without ".."`
)

// job is a job message body; odd spacing, escapes and non-ASCII text check
// that a redrive keeps bodies byte for byte.
func job(id string) string {
	return fmt.Sprintf("{\"version\":\"1\",  \"job_id\":%q,\"task\":\"summarize\",\n\"text\":\"Grüße \\u00e9 \\t tab\"}", id)
}

func TestRedrive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		reason string
		max    int
		dryRun bool
		// want is the bodies expected on the job queue, by label below.
		want []string
	}{
		{name: "all", want: []string{"jobA", "jobB", "notjson", "version", "jobid"}},
		{name: "class no_reason", reason: "no_reason", want: []string{"jobA", "jobB"}},
		{name: "class case-insensitive", reason: "Unsupported_Version", want: []string{"version"}},
		{name: "text of the reason", reason: "INVALID JOB_ID", want: []string{"jobid"}},
		{name: "max", reason: "no_reason", max: 1, want: []string{"one of jobA, jobB"}},
		{name: "dry run moves nothing", dryRun: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dlq, q := newQueue(t, "dlq"), newQueue(t, "jobs")
			bodies := map[string]string{
				"jobA": job("redrive-a"), "jobB": job("redrive-b"),
				"notjson": "Hello, not JSON \x7f é", "version": `{"version":"9","job_id":"v9"}`, "jobid": `{"version":"1","job_id":"../x"}`,
			}
			mine := map[string]types.MessageAttributeValue{"tierq-job-id": str("redrive-a"), "upstream-trace": {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}}}
			deadLetter(t, dlq, bodies["jobA"], "", mine)
			deadLetter(t, dlq, bodies["jobB"], "", nil)
			deadLetter(t, dlq, bodies["notjson"], notJSONReason, nil)
			deadLetter(t, dlq, bodies["version"], versionReason, mine)
			deadLetter(t, dlq, bodies["jobid"], jobIDReason, nil)

			var progress strings.Builder
			sum, err := ops.Redrive(t.Context(), ops.RedriveConfig{Queue: emulator.SQS(kumoURL), DLQURL: dlq, QueueURL: q,
				Reason: tt.reason, Max: tt.max, DryRun: tt.dryRun, Hide: 5 * time.Second, Progress: &progress})
			if err != nil {
				t.Fatalf("Redrive: %v", err)
			}
			moved := drain(t, q)
			if tt.dryRun {
				if len(sum.WouldMove) != 5 || sum.Moved != 0 || len(moved) != 0 {
					t.Fatalf("dry run: would move %d, moved %d, job queue has %d; want 5, 0, 0", len(sum.WouldMove), sum.Moved, len(moved))
				}
				// Released at once: all five are visible again, not in flight.
				if got := receivable(t, dlq); got != 5 {
					t.Errorf("after a dry run %d dead letters are visible, want 5", got)
				}
				var ids []string
				for _, d := range sum.WouldMove {
					ids = append(ids, d.JobID)
				}
				slices.Sort(ids)
				if want := []string{"", "", "", "redrive-a", "redrive-b"}; !slices.Equal(ids, want) {
					t.Errorf("dry run job IDs %q, want %q (only bodies with a valid job_id)", ids, want)
				}
				return
			}
			var got []string
			for _, m := range moved {
				body := aws.ToString(m.Body)
				for label, b := range bodies {
					if b == body {
						got = append(got, label)
					}
				}
				for _, name := range []string{worker.AttrDeadLetterReason, worker.AttrSourceMessageID, worker.AttrReceiveCount} {
					if _, ok := m.MessageAttributes[name]; ok {
						t.Errorf("redriven message kept the bookkeeping attribute %s", name)
					}
				}
				if body == bodies["jobA"] || body == bodies["version"] {
					if v := m.MessageAttributes["tierq-job-id"]; aws.ToString(v.StringValue) != "redrive-a" {
						t.Errorf("redriven message lost its tierq-job-id attribute: %+v", m.MessageAttributes)
					}
					if v := m.MessageAttributes["upstream-trace"]; string(v.BinaryValue) != "\x00\x01\x02" {
						t.Errorf("redriven message lost its binary attribute: %+v", v)
					}
				}
			}
			if len(got) != len(moved) {
				t.Fatalf("%d of %d messages on the job queue match no original body byte for byte", len(moved)-len(got), len(moved))
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			if tt.max == 1 {
				if len(got) != 1 || (got[0] != "jobA" && got[0] != "jobB") {
					t.Fatalf("moved %q, want one of jobA, jobB", got)
				}
				want = got
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("moved %q, want %q", got, want)
			}
			if sum.Moved != len(want) || sum.Skipped != 5-len(want) || sum.Failed != 0 || sum.InBoth != 0 {
				t.Errorf("summary %+v, want moved %d, skipped %d", sum, len(want), 5-len(want))
			}
			if left := depth(t, dlq); left != 5-len(want) {
				t.Errorf("dead-letter queue holds %d, want %d", left, 5-len(want))
			}
			if v := receivable(t, dlq); v != 5-len(want) {
				t.Errorf("%d skipped dead letters are visible again, want %d", v, 5-len(want))
			}
			if !strings.Contains(progress.String(), fmt.Sprintf("redrive: moved %d", len(want))) {
				t.Errorf("progress lacks the moved line:\n%s", progress.String())
			}
		})
	}
}

// receivable counts the messages a receive can get now. It checks that
// dead letters not moved were made visible again rather than left hidden
// for their whole hide (kumo counts a released message as not visible
// until its next receive, so the queue's counts cannot tell). It hides
// what it receives for 30 s.
func receivable(t *testing.T, url string) int {
	t.Helper()
	q := emulator.SQS(kumoURL)
	seen := map[string]bool{}
	for {
		out, err := q.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			VisibilityTimeout: 30, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return len(seen)
		}
		for _, m := range out.Messages {
			seen[aws.ToString(m.MessageId)] = true
		}
	}
}

// fill puts n job dead letters (no tierq reason) on the dead-letter queue
// and returns their bodies.
func fill(t *testing.T, dlq string, n int) map[string]bool {
	t.Helper()
	bodies := map[string]bool{}
	for i := range n {
		b := job(fmt.Sprintf("crash-%02d", i))
		bodies[b] = true
		deadLetter(t, dlq, b, "", nil)
	}
	return bodies
}

// TestRedriveInterruptedThenRerun cancels a redrive after k messages, as
// Ctrl-C does, and runs it again: every message ends on the job queue
// exactly once, and after the interruption each is in exactly one queue.
func TestRedriveInterruptedThenRerun(t *testing.T) {
	t.Parallel()
	const n, k, batch = 23, 7, 3
	dlq, q := newQueue(t, "dlq"), newQueue(t, "jobs")
	bodies := fill(t, dlq, n)
	ctx, cancel := context.WithCancel(t.Context())
	c := ops.RedriveConfig{Queue: emulator.SQS(kumoURL), DLQURL: dlq, QueueURL: q, Batch: batch, Hide: 10 * time.Second}
	sum, err := ops.Redrive(ctx, ops.WithAfterMove(c, func(moved int) {
		if moved >= k {
			cancel()
		}
	}))
	if err != nil {
		t.Fatalf("interrupted Redrive: %v", err)
	}
	// The batch in hand when the cancel came is finished, never split.
	if !sum.Interrupted || sum.Moved != 9 || sum.InBoth != 0 {
		t.Fatalf("interrupted run: %+v; want interrupted after 3 batches of 3 (9 moved), none in both", sum)
	}
	if got, left := depth(t, q), depth(t, dlq); got != 9 || left != n-9 {
		t.Fatalf("after the interruption: job queue %d, dead-letter queue %d; want 9 and %d (each message in one queue)", got, left, n-9)
	}
	// The rest were made visible again: the rerun, well within their
	// 10 s hide, moves them all.
	sum, err = ops.Redrive(t.Context(), c)
	if err != nil || sum.Moved != n-9 || sum.Interrupted {
		t.Fatalf("rerun: %+v, %v; want %d moved", sum, err, n-9)
	}
	seen := map[string]int{}
	for _, m := range drain(t, q) {
		seen[aws.ToString(m.Body)]++
	}
	for b := range bodies {
		if seen[b] != 1 {
			t.Errorf("a message is on the job queue %d times, want exactly once: %.40q", seen[b], b)
		}
	}
	if len(seen) != n || depth(t, dlq) != 0 {
		t.Errorf("job queue has %d distinct bodies, dead-letter queue %d; want %d and 0", len(seen), depth(t, dlq), n)
	}
}

// TestRedriveCrashWindow kills a redrive between a batch's send and its
// delete: that batch is then in both queues, and the next run sends it
// again. Every message reaches the job queue; at most one batch arrives
// twice, each copy byte for byte the same job (same job_id), which the
// worker answers once: TestManyCopiesAcrossThreeWorkers in package
// internal/app shows copies of a job make one model call and one result.
func TestRedriveCrashWindow(t *testing.T) {
	t.Parallel()
	const n, batch = 12, 4
	dlq, q := newQueue(t, "dlq"), newQueue(t, "jobs")
	bodies := fill(t, dlq, n)
	c := ops.RedriveConfig{Queue: emulator.SQS(kumoURL), DLQURL: dlq, QueueURL: q, Batch: batch, Hide: 2 * time.Second}
	sends := 0
	sum, err := ops.Redrive(t.Context(), ops.WithCrashAfterSend(c, func() bool { sends++; return sends == 2 }))
	if err != ops.ErrCrashed || sum.Moved != batch {
		t.Fatalf("crashed run: %+v, %v; want ErrCrashed after one batch moved", sum, err)
	}
	if got, left := depth(t, q), depth(t, dlq); got != 2*batch || left != n-batch {
		t.Fatalf("after the crash: job queue %d, dead-letter queue %d; want %d and %d (one batch in both)", got, left, 2*batch, n-batch)
	}
	// A killed process releases nothing: its received messages come back
	// when their hide ends.
	time.Sleep(2500 * time.Millisecond)
	sum, err = ops.Redrive(t.Context(), c)
	if err != nil || sum.Moved != n-batch {
		t.Fatalf("rerun: %+v, %v; want %d moved", sum, err, n-batch)
	}
	seen := map[string]int{}
	total := 0
	for _, m := range drain(t, q) {
		seen[aws.ToString(m.Body)]++
		total++
	}
	twice := 0
	for b := range bodies {
		switch seen[b] {
		case 1:
		case 2:
			twice++
		default:
			t.Errorf("a message is on the job queue %d times, want once or twice: %.40q", seen[b], b)
		}
	}
	if twice != batch || total != n+batch || len(seen) != n {
		t.Errorf("%d messages (%d distinct), %d twice; want %d, %d distinct, exactly the crashed batch of %d twice", total, len(seen), twice, n+batch, n, batch)
	}
	if depth(t, dlq) != 0 {
		t.Errorf("dead-letter queue not empty after the rerun")
	}
}

func TestRedriveRefusesADeadLetterQueueWithItsOwnRedrivePolicy(t *testing.T) {
	t.Parallel()
	dlq, q, other := newQueue(t, "dlq"), newQueue(t, "jobs"), newQueue(t, "dlq2")
	setRedrivePolicy(t, dlq, other)
	deadLetter(t, dlq, job("p"), "", nil)
	_, err := ops.Redrive(t.Context(), ops.RedriveConfig{Queue: emulator.SQS(kumoURL), DLQURL: dlq, QueueURL: q})
	if err == nil || !strings.Contains(err.Error(), "redrive policy of its own") {
		t.Fatalf("Redrive = %v, want a refusal naming the redrive policy", err)
	}
	if v := receivable(t, dlq); v != 1 {
		t.Errorf("the dead letter was touched: %d visible, want 1", v)
	}
}

// TestRedriveInterruptBetweenSendAndDelete cancels the context right after
// a batch is sent, where Ctrl-C would do the most harm: the delete still
// runs, so no message is left in both queues.
func TestRedriveInterruptBetweenSendAndDelete(t *testing.T) {
	t.Parallel()
	const n, batch = 8, 3
	dlq, q := newQueue(t, "dlq"), newQueue(t, "jobs")
	fill(t, dlq, n)
	ctx, cancel := context.WithCancel(t.Context())
	c := ops.RedriveConfig{Queue: emulator.SQS(kumoURL), DLQURL: dlq, QueueURL: q, Batch: batch, Hide: 10 * time.Second}
	sum, err := ops.Redrive(ctx, ops.WithCrashAfterSend(c, func() bool { cancel(); return false }))
	if err != nil || !sum.Interrupted || sum.Moved != batch || sum.InBoth != 0 {
		t.Fatalf("Redrive = %+v, %v; want interrupted with one batch of %d moved, none in both queues", sum, err, batch)
	}
	if got, left := depth(t, q), depth(t, dlq); got != batch || left != n-batch {
		t.Errorf("job queue %d, dead-letter queue %d; want %d and %d", got, left, batch, n-batch)
	}
}
