package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/worker"
)

// Reason classes group dead letters by why they are there. The worker
// writes its reason as free text (worker.AttrDeadLetterReason), in jobv1's
// terms; the class is which of jobv1's "not a job" errors the text holds.
const (
	// ReasonNotJSON: the body is not a JSON job object (jobv1.ErrMalformed).
	ReasonNotJSON = "not_json"
	// ReasonVersion: version missing or not "1" (jobv1.ErrUnsupportedVersion).
	ReasonVersion = "unsupported_version"
	// ReasonJobID: job_id missing or invalid (jobv1.ErrBadJobID).
	ReasonJobID = "invalid_job_id"
	// ReasonNone: no tierq reason attribute. The job queue's redrive policy
	// moved the message after maxReceiveCount receives (a job that kept
	// being released: throttling, an outage), or someone sent it by hand.
	// These are the dead letters a redrive is usually for.
	ReasonNone = "no_reason"
	// ReasonOther: a tierq reason of no known class.
	ReasonOther = "other"
)

// reasonClasses maps jobv1's sentinel texts to classes, in match order.
var reasonClasses = []struct{ text, class string }{
	{jobv1.ErrMalformed.Error(), ReasonNotJSON},
	{jobv1.ErrUnsupportedVersion.Error(), ReasonVersion},
	{jobv1.ErrBadJobID.Error(), ReasonJobID},
}

// ReasonClass is the class of a dead letter whose reason attribute is
// reason (found false: the attribute is absent).
func ReasonClass(reason string, found bool) string {
	if !found {
		return ReasonNone
	}
	for _, c := range reasonClasses {
		if strings.Contains(reason, c.text) {
			return c.class
		}
	}
	return ReasonOther
}

// DeadLetter is one message read from the dead-letter queue. Its body is
// kept for a redrive but never printed: it may be a whole document.
type DeadLetter struct {
	MessageID string `json:"message_id"`
	// JobID is the body's job_id when it has a valid one (no_reason dead
	// letters usually do), else "".
	JobID string `json:"job_id,omitempty"`
	Class string `json:"class"`
	// Reason is the worker's reason attribute, "" when there is none.
	Reason string `json:"reason,omitempty"`
	// SentAt is when the message entered the dead-letter queue (SQS's
	// SentTimestamp; for a message moved by a redrive policy, SQS keeps
	// the original enqueue time).
	SentAt time.Time `json:"sent_at"`
	// Deliveries is how many times the job queue had delivered it before it
	// was dead-lettered (worker.AttrReceiveCount), 0 when not recorded.
	Deliveries int `json:"deliveries,omitempty"`

	body    string
	attrs   map[string]types.MessageAttributeValue
	receipt string
}

// Matches reports whether filter selects d: "" selects everything; a
// class name (not_json, no_reason, ...) selects that class; any other text
// selects dead letters whose reason contains it, ignoring case.
func (d *DeadLetter) Matches(filter string) bool {
	f := strings.TrimSpace(filter)
	if f == "" || strings.EqualFold(f, d.Class) {
		return true
	}
	return d.Reason != "" && strings.Contains(strings.ToLower(d.Reason), strings.ToLower(f))
}

// bookkeeping are the attributes the worker adds when it dead-letters a
// message; a redriven message goes back without them, as it first came.
var bookkeeping = map[string]bool{
	worker.AttrDeadLetterReason: true,
	worker.AttrSourceMessageID:  true,
	worker.AttrReceiveCount:     true,
}

// redriveAttributes are a dead letter's message attributes without the
// dead-letter bookkeeping: the ones its sender set (tierq submit's job ID
// and task, an upstream system's own).
func redriveAttributes(in map[string]types.MessageAttributeValue) map[string]types.MessageAttributeValue {
	var out map[string]types.MessageAttributeValue
	for name, v := range in {
		if bookkeeping[name] {
			continue
		}
		if out == nil {
			out = make(map[string]types.MessageAttributeValue, len(in))
		}
		out[name] = types.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return out
}

func toDeadLetter(m types.Message) *DeadLetter {
	d := &DeadLetter{
		MessageID: aws.ToString(m.MessageId),
		body:      aws.ToString(m.Body),
		attrs:     m.MessageAttributes,
		receipt:   aws.ToString(m.ReceiptHandle),
	}
	reason, found := "", false
	if v, ok := m.MessageAttributes[worker.AttrDeadLetterReason]; ok && v.StringValue != nil {
		reason, found = *v.StringValue, true
	}
	d.Reason, d.Class = reason, ReasonClass(reason, found)
	if v, ok := m.MessageAttributes[worker.AttrReceiveCount]; ok && v.StringValue != nil {
		d.Deliveries, _ = strconv.Atoi(*v.StringValue)
	}
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		d.SentAt = time.UnixMilli(ms).UTC()
	}
	// ParseJob's own rules decide whether the body names a job: a job ID
	// from it is safe to print, anything else of the body is not.
	if j, err := jobv1.ParseJob([]byte(d.body)); err == nil || errors.Is(err, jobv1.ErrInvalidJob) {
		d.JobID = j.JobID
	}
	return d
}

// dlqReader receives a dead-letter queue's messages once each: every
// message it receives stays hidden for hide, so later receives return
// others, and a message seen again (its hide ran out) is not returned twice.
type dlqReader struct {
	q    Queue
	url  string
	hide time.Duration
	seen map[string]*DeadLetter
	// keepBodies keeps each body and attributes for a redrive; status
	// needs neither, and a body can be 1 MiB.
	keepBodies bool
	// idle counts receives in a row that returned only messages seen
	// before; two end the pass.
	idle int
}

func newDLQReader(q Queue, url string, hide time.Duration) *dlqReader {
	return &dlqReader{q: q, url: url, hide: hide, seen: map[string]*DeadLetter{}}
}

// next returns the messages of one receive not returned before; none when
// the queue has nothing more to show. A long poll of 1 s asks every SQS
// server, where a short poll samples some and can answer empty while
// messages remain.
func (r *dlqReader) next(ctx context.Context) ([]*DeadLetter, error) {
	for {
		out, err := r.q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:              aws.String(r.url),
			MaxNumberOfMessages:   10,
			VisibilityTimeout:     int32(max(r.hide.Round(time.Second)/time.Second, 1)),
			WaitTimeSeconds:       1,
			MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{
				types.MessageSystemAttributeNameSentTimestamp, types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			return nil, fmt.Errorf("receive from the dead-letter queue: %w", err)
		}
		if len(out.Messages) == 0 {
			return nil, nil
		}
		var fresh []*DeadLetter
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if old, ok := r.seen[id]; ok {
				// Its hide ran out mid-pass; only the newest receipt handle
				// can release or delete it now.
				old.receipt = aws.ToString(m.ReceiptHandle)
				continue
			}
			d := toDeadLetter(m)
			if !r.keepBodies {
				d.body, d.attrs = "", nil
			}
			r.seen[id] = d
			fresh = append(fresh, d)
		}
		if len(fresh) > 0 {
			r.idle = 0
			return fresh, nil
		}
		if r.idle++; r.idle >= 2 {
			return nil, nil
		}
	}
}

// release makes dead letters visible again at once, in batches of ten. It
// runs after the caller's context may have ended (Ctrl-C), so it has its
// own short deadline; a message it cannot release becomes visible again
// when its hide ends anyway.
func release(ctx context.Context, q Queue, url string, dls []*DeadLetter) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	var errs []error
	for start := 0; start < len(dls); start += 10 {
		chunk := dls[start:min(start+10, len(dls))]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, d := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(d.receipt), VisibilityTimeout: 0}
		}
		out, err := q.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("make dead letters visible again (they will be when their hide ends): %w", err)
	}
	return nil
}

// queueAttrs reads a queue's depth and, for a dead-letter queue, whether
// it has a redrive policy of its own.
type queueAttrs struct {
	visible, inFlight, delayed int
	redrivePolicy              string
}

func readQueueAttrs(ctx context.Context, q Queue, url string) (queueAttrs, error) {
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
			types.QueueAttributeNameRedrivePolicy,
		}})
	if err != nil {
		return queueAttrs{}, fmt.Errorf("read attributes of %s: %w", url, err)
	}
	var a queueAttrs
	for name, dst := range map[types.QueueAttributeName]*int{
		types.QueueAttributeNameApproximateNumberOfMessages:           &a.visible,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible: &a.inFlight,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed:    &a.delayed,
	} {
		v, ok := out.Attributes[string(name)]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return queueAttrs{}, fmt.Errorf("read attributes of %s: %s = %q is not a count", url, name, v)
		}
		*dst = n
	}
	a.redrivePolicy = out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]
	return a, nil
}

// errDLQRedrivePolicy refuses to receive from a dead-letter queue that has
// a redrive policy of its own: each receive counts towards its
// maxReceiveCount and could move dead letters on to yet another queue.
func errDLQRedrivePolicy(url, policy string) error {
	return fmt.Errorf("the dead-letter queue %s has a redrive policy of its own (%s): reading it would count towards that policy's maxReceiveCount and could move its messages on; not read", url, policy)
}
