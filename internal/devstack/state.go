package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The state directory holds one snapshot, written whole at a clean stop:
//
//	DIR/snapshot/queues.json              every queue: settable attributes and messages
//	DIR/snapshot/buckets/NAME/index.json  every object of a bucket: key, content type, metadata
//	DIR/snapshot/buckets/NAME/HASH        an object's bytes (HASH: SHA-256 of its key)
//
// kumo's own persistence (KUMO_DATA_DIR) is read in its package init and
// drops in-flight messages, so tierq-dev keeps its state through the APIs
// instead: what any SQS and S3 client could read, nothing of kumo's insides.
const (
	snapshotDir = "snapshot"
	queuesFile  = "queues.json"
	bucketsDir  = "buckets"
	indexFile   = "index.json"
)

// Counts say how much a snapshot held.
type Counts struct {
	Queues, Messages, Buckets, Objects int
}

type queueSnapshot struct {
	Name       string            `json:"name"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Messages   []messageSnapshot `json:"messages,omitempty"`
}

type messageSnapshot struct {
	Body       string                  `json:"body"`
	Attributes map[string]attrSnapshot `json:"attributes,omitempty"`
	GroupID    string                  `json:"group_id,omitempty"`
}

type attrSnapshot struct {
	DataType string `json:"data_type"`
	String   string `json:"string,omitempty"`
	Binary   []byte `json:"binary,omitempty"`
}

type objectSnapshot struct {
	Key         string            `json:"key"`
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	File        string            `json:"file"`
}

// settableQueueAttributes are the queue attributes a snapshot keeps: those
// SetQueueAttributes accepts (counts, ARN and timestamps are the queue's own).
var settableQueueAttributes = []string{
	"DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
	"VisibilityTimeout", "RedrivePolicy", "RedriveAllowPolicy", "Policy", "ContentBasedDeduplication",
}

// SaveState writes every queue with its messages and every bucket with its
// objects to dir, replacing the previous snapshot only once the new one is
// complete.
//
// What is kept: queue attributes, and each message's body, attributes and
// message group. Each message is read by a receive, so it must be visible
// (or its visibility expired) at that moment: messages a running worker
// holds, and messages released with a delay that has not ended, are not
// kept. Stop the workers first: a worker that stops releases its messages at
// once. Message IDs, receive counts and sent times are not kept either; see
// RestoreState.
func SaveState(ctx context.Context, q *sqs.Client, s *s3.Client, dir string) (Counts, error) {
	tmp := filepath.Join(dir, snapshotDir+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return Counts{}, fmt.Errorf("clear %s: %w", tmp, err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, bucketsDir), 0o755); err != nil {
		return Counts{}, fmt.Errorf("create state directory: %w", err)
	}
	var n Counts
	queues, err := readQueues(ctx, q)
	if err != nil {
		return Counts{}, err
	}
	for _, qs := range queues {
		n.Queues++
		n.Messages += len(qs.Messages)
	}
	if err := writeJSON(filepath.Join(tmp, queuesFile), queues); err != nil {
		return Counts{}, err
	}
	buckets, err := s.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return Counts{}, fmt.Errorf("list buckets: %w", err)
	}
	for _, b := range buckets.Buckets {
		objects, err := saveBucket(ctx, s, aws.ToString(b.Name), filepath.Join(tmp, bucketsDir, aws.ToString(b.Name)))
		if err != nil {
			return Counts{}, err
		}
		n.Buckets++
		n.Objects += objects
	}
	// Swap: the old snapshot stays until the new one is in place; a crash in
	// between leaves snapshot.old, which RestoreState falls back to.
	cur, old := filepath.Join(dir, snapshotDir), filepath.Join(dir, snapshotDir+".old")
	if err := os.RemoveAll(old); err != nil {
		return Counts{}, fmt.Errorf("clear %s: %w", old, err)
	}
	if err := os.Rename(cur, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Counts{}, fmt.Errorf("keep the previous snapshot: %w", err)
	}
	if err := os.Rename(tmp, cur); err != nil {
		return Counts{}, fmt.Errorf("put the new snapshot in place: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return Counts{}, fmt.Errorf("remove the previous snapshot: %w", err)
	}
	return n, nil
}

// readQueues reads every queue and its messages. Queues with a redrive
// policy come first: reading one may move messages whose receive count is
// spent to its dead-letter queue, which must then be read after it.
func readQueues(ctx context.Context, q *sqs.Client) ([]queueSnapshot, error) {
	list, err := q.ListQueues(ctx, &sqs.ListQueuesInput{})
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	var out []queueSnapshot
	for _, u := range list.QueueUrls {
		attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil {
			return nil, fmt.Errorf("read attributes of %s: %w", u, err)
		}
		qs := queueSnapshot{Name: u[strings.LastIndex(u, "/")+1:], Attributes: map[string]string{}}
		for _, k := range settableQueueAttributes {
			if v, ok := attrs.Attributes[k]; ok && v != "" {
				qs.Attributes[k] = v
			}
		}
		if strings.HasSuffix(qs.Name, ".fifo") {
			qs.Attributes["FifoQueue"] = "true"
		} else {
			delete(qs.Attributes, "ContentBasedDeduplication") // FIFO only
		}
		out = append(out, qs)
	}
	slices.SortStableFunc(out, func(a, b queueSnapshot) int {
		_, ra := a.Attributes["RedrivePolicy"]
		_, rb := b.Attributes["RedrivePolicy"]
		switch {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	for i := range out {
		url, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(out[i].Name)})
		if err != nil {
			return nil, fmt.Errorf("find queue %s: %w", out[i].Name, err)
		}
		if out[i].Messages, err = readMessages(ctx, q, aws.ToString(url.QueueUrl)); err != nil {
			return nil, fmt.Errorf("read messages of %s: %w", out[i].Name, err)
		}
	}
	return out, nil
}

// readMessages receives every visible message, hiding each for SQS's
// longest visibility so none is read twice. It deletes nothing: the stack
// is stopping, and the snapshot is written before anything is lost.
func readMessages(ctx context.Context, q *sqs.Client, url string) ([]messageSnapshot, error) {
	var out []messageSnapshot
	for {
		r, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: 10, VisibilityTimeout: 12 * 60 * 60, WaitTimeSeconds: 0,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			return nil, err
		}
		if len(r.Messages) == 0 {
			return out, nil
		}
		for _, m := range r.Messages {
			ms := messageSnapshot{Body: aws.ToString(m.Body), GroupID: m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]}
			for k, v := range m.MessageAttributes {
				if ms.Attributes == nil {
					ms.Attributes = map[string]attrSnapshot{}
				}
				ms.Attributes[k] = attrSnapshot{DataType: aws.ToString(v.DataType), String: aws.ToString(v.StringValue), Binary: v.BinaryValue}
			}
			out = append(out, ms)
		}
	}
}

func saveBucket(ctx context.Context, s *s3.Client, bucket, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("create %s: %w", dir, err)
	}
	var index []objectSnapshot
	pages := s3.NewListObjectsV2Paginator(s, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("list objects of %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			saved, err := saveObject(ctx, s, bucket, aws.ToString(o.Key), dir)
			if err != nil {
				return 0, err
			}
			index = append(index, saved)
		}
	}
	return len(index), writeJSON(filepath.Join(dir, indexFile), index)
}

func saveObject(ctx context.Context, s *s3.Client, bucket, key, dir string) (objectSnapshot, error) {
	sum := sha256.Sum256([]byte(key))
	obj := objectSnapshot{Key: key, File: hex.EncodeToString(sum[:])}
	out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return obj, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	obj.ContentType, obj.Metadata = aws.ToString(out.ContentType), out.Metadata
	f, err := os.Create(filepath.Join(dir, obj.File))
	if err != nil {
		return obj, fmt.Errorf("save s3://%s/%s: %w", bucket, key, err)
	}
	if _, err := io.Copy(f, out.Body); err != nil {
		f.Close()
		return obj, fmt.Errorf("save s3://%s/%s: %w", bucket, key, err)
	}
	if err := f.Close(); err != nil {
		return obj, fmt.Errorf("save s3://%s/%s: %w", bucket, key, err)
	}
	return obj, nil
}

// RestoreState recreates the queues, messages, buckets and objects of the
// snapshot in dir; a missing snapshot restores nothing. Messages are sent
// as new messages: new IDs, receive count 0, sent now, visible at once.
// The snapshot stays in place until the next clean stop replaces it, so a
// stack killed before then restores the same messages again at its next
// start (duplicates, which tierq's one-result-per-job rule absorbs,
// rather than lost jobs).
func RestoreState(ctx context.Context, q *sqs.Client, s *s3.Client, dir string) (Counts, error) {
	snap := filepath.Join(dir, snapshotDir)
	if _, err := os.Stat(snap); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(snap + ".old"); err == nil {
			snap += ".old" // a stop that crashed while swapping snapshots
		}
	}
	var n Counts
	var queues []queueSnapshot
	if err := readJSON(filepath.Join(snap, queuesFile), &queues); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return n, nil
		}
		return n, err
	}
	urls := make([]string, len(queues))
	for i, qs := range queues {
		in := &sqs.CreateQueueInput{QueueName: aws.String(qs.Name)}
		if qs.Attributes["FifoQueue"] == "true" {
			in.Attributes = map[string]string{"FifoQueue": "true"}
		}
		out, err := q.CreateQueue(ctx, in)
		if err != nil {
			return n, fmt.Errorf("restore queue %s: %w", qs.Name, err)
		}
		urls[i] = aws.ToString(out.QueueUrl)
	}
	// Attributes after every queue exists: a redrive policy names another queue.
	for i, qs := range queues {
		attrs := maps.Clone(qs.Attributes)
		delete(attrs, "FifoQueue")
		if len(attrs) > 0 {
			if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(urls[i]), Attributes: attrs}); err != nil {
				return n, fmt.Errorf("restore attributes of queue %s: %w", qs.Name, err)
			}
		}
		if err := sendMessages(ctx, q, urls[i], qs); err != nil {
			return n, err
		}
		n.Queues++
		n.Messages += len(qs.Messages)
	}
	entries, err := os.ReadDir(filepath.Join(snap, bucketsDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return n, fmt.Errorf("read saved buckets: %w", err)
	}
	for _, e := range entries {
		objects, err := restoreBucket(ctx, s, e.Name(), filepath.Join(snap, bucketsDir, e.Name()))
		if err != nil {
			return n, err
		}
		n.Buckets++
		n.Objects += objects
	}
	return n, nil
}

func sendMessages(ctx context.Context, q *sqs.Client, url string, qs queueSnapshot) error {
	for start := 0; start < len(qs.Messages); start += 10 {
		batch := qs.Messages[start:min(start+10, len(qs.Messages))]
		entries := make([]sqstypes.SendMessageBatchRequestEntry, len(batch))
		for i, m := range batch {
			e := sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(m.Body)}
			for k, v := range m.Attributes {
				if e.MessageAttributes == nil {
					e.MessageAttributes = map[string]sqstypes.MessageAttributeValue{}
				}
				av := sqstypes.MessageAttributeValue{DataType: aws.String(v.DataType), BinaryValue: v.Binary}
				if v.String != "" || v.Binary == nil {
					av.StringValue = aws.String(v.String)
				}
				e.MessageAttributes[k] = av
			}
			if m.GroupID != "" {
				e.MessageGroupId = aws.String(m.GroupID)
				e.MessageDeduplicationId = aws.String(fmt.Sprintf("restored-%d", start+i))
			}
			entries[i] = e
		}
		out, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			return fmt.Errorf("restore messages of %s: %w", qs.Name, err)
		}
		if len(out.Failed) > 0 {
			f := out.Failed[0]
			return fmt.Errorf("restore messages of %s: %d of %d refused, first: %s %s", qs.Name, len(out.Failed), len(batch),
				aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	return nil
}

func restoreBucket(ctx context.Context, s *s3.Client, bucket, dir string) (int, error) {
	if err := CreateBuckets(ctx, s, bucket); err != nil {
		return 0, err
	}
	var index []objectSnapshot
	if err := readJSON(filepath.Join(dir, indexFile), &index); err != nil {
		return 0, err
	}
	for _, o := range index {
		if err := restoreObject(ctx, s, bucket, dir, o); err != nil {
			return 0, err
		}
	}
	return len(index), nil
}

func restoreObject(ctx context.Context, s *s3.Client, bucket, dir string, o objectSnapshot) error {
	if o.File != filepath.Base(o.File) {
		return fmt.Errorf("restore s3://%s/%s: index names file %q outside the bucket's folder", bucket, o.Key, o.File)
	}
	f, err := os.Open(filepath.Join(dir, o.File))
	if err != nil {
		return fmt.Errorf("restore s3://%s/%s: %w", bucket, o.Key, err)
	}
	defer f.Close()
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Key), Body: f, Metadata: o.Metadata}
	if o.ContentType != "" {
		in.ContentType = aws.String(o.ContentType)
	}
	if _, err := s.PutObject(ctx, in); err != nil {
		return fmt.Errorf("restore s3://%s/%s: %w", bucket, o.Key, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
