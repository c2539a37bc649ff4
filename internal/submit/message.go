package submit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/tierq/tierq/jobv1"
)

// Message attributes set on every job message, so operators can find a
// job's message (and the worker can log it) without parsing the body.
const (
	AttrJobID = "tierq-job-id"
	AttrTask  = "tierq-task"
)

// Errors for a job that cannot be sent as a message.
var (
	// ErrNoInputBucket: the message would exceed the inline limit and no
	// input bucket is configured to hold the document.
	ErrNoInputBucket = errors.New("document too large to send inline and no input bucket configured")
	// ErrMessageTooLarge: the message exceeds SQS's maximum even with its
	// document sent by reference.
	ErrMessageTooLarge = errors.New("message too large for SQS")
	// ErrNotSQSText: a raw message holds bytes SQS cannot carry verbatim.
	ErrNotSQSText = errors.New("not text SQS can carry verbatim")
)

// message is one SQS message ready to send.
type message struct {
	source string
	jobID  string // "" for a raw message
	task   string
	body   []byte
	// doc is the document to upload before sending, nil if none; key is its
	// object key.
	doc []byte
	key string
}

// size is the message's size as SQS counts it against its limits: the body
// plus each attribute's name, data type and value.
func (m message) size() int {
	n := len(m.body)
	for _, a := range m.attributes() {
		n += len(a.name) + len("String") + len(a.value)
	}
	return n
}

type attribute struct{ name, value string }

func (m message) attributes() []attribute {
	if m.jobID == "" {
		return nil
	}
	return []attribute{{AttrJobID, m.jobID}, {AttrTask, m.task}}
}

func (m message) entry(id string) types.SendMessageBatchRequestEntry {
	e := types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(string(m.body))}
	if attrs := m.attributes(); len(attrs) > 0 {
		e.MessageAttributes = make(map[string]types.MessageAttributeValue, len(attrs))
		for _, a := range attrs {
			e.MessageAttributes[a.name] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(a.value)}
		}
	}
	return e
}

// buildMessage encodes a validated job. When the message would exceed
// inlineLimit, its text moves to s3://bucket/{prefix}{job_id}.txt and the
// message carries document_uri instead; the caller uploads m.doc first.
func buildMessage(j jobv1.Job, source string, o Options) (message, error) {
	m := message{source: source, jobID: j.JobID, task: j.Task}
	var err error
	if m.body, err = encodeJob(j); err != nil {
		return message{}, err
	}
	if m.size() <= o.InlineLimit {
		return m, nil
	}
	if j.Text == "" {
		// Already by reference; only SQS's own limit applies.
		if m.size() > MaxMessageBytes {
			return message{}, fmt.Errorf("%w: %d bytes without a document, more than %d", ErrMessageTooLarge, m.size(), MaxMessageBytes)
		}
		return m, nil
	}
	if o.InputBucket == "" {
		return message{}, fmt.Errorf("%w: the message would be %d bytes, over the inline limit of %d; set an input bucket",
			ErrNoInputBucket, m.size(), o.InlineLimit)
	}
	m.key = o.InputPrefix + j.JobID + ".txt"
	m.doc = []byte(j.Text)
	ref := j
	ref.Text = ""
	ref.DocumentURI = "s3://" + o.InputBucket + "/" + m.key
	if m.body, err = encodeJob(ref); err != nil {
		return message{}, err
	}
	if m.size() > MaxMessageBytes {
		return message{}, fmt.Errorf("%w: %d bytes even with the document by reference, more than %d", ErrMessageTooLarge, m.size(), MaxMessageBytes)
	}
	return m, nil
}

// encodeJob encodes a job message body. HTML escaping is off because it only
// makes messages larger (< becomes \u003c); the body is never put in HTML.
func encodeJob(j jobv1.Job) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.JobID, err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// SQS rejects U+FFFE and U+FFFF, which JSON carries raw; in a JSON
	// document they can only be inside strings, where an escape means the
	// same character.
	body = bytes.ReplaceAll(body, []byte("\uFFFE"), []byte(`\ufffe`))
	body = bytes.ReplaceAll(body, []byte("\uFFFF"), []byte(`\uffff`))
	return body, nil
}

// rawMessage is a file sent verbatim. SQS takes only XML characters
// (#x9 #xA #xD, #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF) and the JSON
// protocol would replace invalid UTF-8, so a body outside that would not
// arrive verbatim: it is refused instead.
func rawMessage(source string, body []byte) (message, error) {
	if len(body) == 0 {
		return message{}, fmt.Errorf("%w: empty file (SQS needs at least one character)", ErrNotSQSText)
	}
	if len(body) > MaxMessageBytes {
		return message{}, fmt.Errorf("%w: %d bytes, more than %d", ErrMessageTooLarge, len(body), MaxMessageBytes)
	}
	for i := 0; i < len(body); {
		r, n := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && n <= 1 {
			return message{}, fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrNotSQSText, i)
		}
		if !sqsChar(r) {
			return message{}, fmt.Errorf("%w: character U+%04X at byte %d", ErrNotSQSText, r, i)
		}
		i += n
	}
	return message{source: source, body: body}, nil
}

func sqsChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
