package worker

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/tierq/tierq/internal/awserr"
)

// Message attributes set on a dead-lettered copy.
const (
	AttrDeadLetterReason = "tierq-dead-letter-reason"
	AttrSourceMessageID  = "tierq-source-message-id"
	AttrReceiveCount     = "tierq-receive-count"
)

// maxMessageAttributes is SQS's limit per message.
const maxMessageAttributes = 10

// deadLetter copies the message to the dead-letter queue and deletes the
// original; if the copy fails the message is released instead, so it is
// never lost.
func (w *Worker) deadLetter(it *inflight, cause error) {
	reason := deadLetterReason(cause)
	ctx, cancel := w.callCtx()
	defer cancel()
	_, err := w.q.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(w.cfg.DeadLetterQueueURL),
		MessageBody:       it.raw.Body,
		MessageAttributes: deadLetterAttributes(it.raw.MessageAttributes, reason, it.msg.ID, it.msg.ReceiveCount),
	})
	if err != nil {
		// The size says whether the copy, with tierq's attributes on top of
		// the body, was over the queue's maximum message size.
		w.log.Error("dead-letter send failed; releasing the message instead", "message_id", it.msg.ID,
			"reason", reason, "body_bytes", len(aws.ToString(it.raw.Body)), "error_code", awserr.Code(err), "error", err)
		w.release(it, w.cfg.ReleaseDelay)
		return
	}
	w.stats.deadLettered.Add(1)
	w.log.Warn("message dead-lettered", "message_id", it.msg.ID, "receive_count", it.msg.ReceiveCount, "reason", reason)
	w.enqueueDelete(it)
}

// deadLetterReason is err's text as an SQS attribute value: characters SQS
// rejects replaced, at most maxReasonChars characters, never empty.
func deadLetterReason(err error) string {
	s := strings.Map(func(r rune) rune {
		if validAttributeRune(r) {
			return r
		}
		return utf8.RuneError
	}, strings.ToValidUTF8(err.Error(), string(utf8.RuneError)))
	if utf8.RuneCountInString(s) > maxReasonChars {
		s = string([]rune(s)[:maxReasonChars])
	}
	if s == "" {
		s = "unknown"
	}
	return s
}

// validAttributeRune reports whether SQS accepts r in an attribute value:
// #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
func validAttributeRune(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\r':
		return true
	case r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// deadLetterAttributes keeps as many of the original attributes as fit
// beside the three of ours (SQS allows ten), in name order.
func deadLetterAttributes(orig map[string]types.MessageAttributeValue, reason, id string, receiveCount int) map[string]types.MessageAttributeValue {
	ours := map[string]types.MessageAttributeValue{
		AttrDeadLetterReason: {DataType: aws.String("String"), StringValue: aws.String(reason)},
		AttrReceiveCount:     {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(receiveCount))},
	}
	if id != "" {
		ours[AttrSourceMessageID] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(id)}
	}
	names := make([]string, 0, len(orig))
	for name := range orig {
		if _, clash := ours[name]; !clash && name != AttrSourceMessageID {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	attrs := make(map[string]types.MessageAttributeValue, maxMessageAttributes)
	for _, name := range names[:min(len(names), maxMessageAttributes-len(ours))] {
		attrs[name] = orig[name]
	}
	for name, v := range ours {
		attrs[name] = v
	}
	return attrs
}
