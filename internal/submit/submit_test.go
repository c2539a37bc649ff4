package submit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/tierq/tierq/internal/submit"
	"github.com/tierq/tierq/internal/testenv"
	"github.com/tierq/tierq/jobv1"
)

var jobIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func TestJobIDFromFileName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prefix, name, want string
	}{
		{"", "report.txt", "report.txt"},
		{"", "report.md", "report.md"},
		{"", "/data/in/Q3 report (final).txt", "Q3-report-final.txt"},
		{"", "archive.tar.gz", "archive.tar.gz"},
		{"", "noext", "noext"},
		{"", ".profile", "profile"},
		{"", "__init__.py", "init.py"},
		{"", "-leading-dash.txt", "leading-dash.txt"},
		{"", "café menu.md", "caf-menu.md"},
		{"", "日本語.txt", "doc.txt"},
		{"", "!!!.txt", "doc.txt"},
		{"", "a  +  b.txt", "a-b.txt"},
		{"", "v1.2_notes.txt", "v1.2_notes.txt"},
		{"", "report..2026...final.txt", "report.2026.final.txt"},
		{"run7-", "a.txt", "run7-a.txt"},
		{"run7-", "!!!.txt", "run7-doc.txt"},
		{"", strings.Repeat("x", 200) + ".txt", strings.Repeat("x", 128)},
		{"p-", strings.Repeat("y", 126) + "-z.txt", "p-" + strings.Repeat("y", 126)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := submit.JobIDFromFileName(c.prefix, c.name)
			if got != c.want {
				t.Errorf("JobIDFromFileName(%q, %q) = %q, want %q", c.prefix, c.name, got, c.want)
			}
			if !jobIDRe.MatchString(got) {
				t.Errorf("JobIDFromFileName(%q, %q) = %q is not a valid job ID", c.prefix, c.name, got)
			}
		})
	}
}

func TestFolderCollidingNamesAreRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"a b.txt", "a-b.txt", "a-b.md", ".hidden.txt", "c.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("text of "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "deep.txt"), []byte("deep"), 0o644); err != nil {
		t.Fatal(err)
	}
	q := &fakeQueue{}
	opts := sendOpts(dir)
	opts.Tenant = "acme"
	opts.AllowInvalid = true
	sum, err := submit.Run(context.Background(), opts, submit.Deps{Queue: q}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by name: "a b.txt" < "a-b.md" < "a-b.txt" < "c.txt". "a b.txt"
	// and "a-b.txt" both map to a-b.txt: the second is refused, never renamed,
	// so an ID never depends on which other files are sent with it.
	want := []string{"a-b.txt", "a-b.md", "c.txt"}
	if !slices.Equal(sum.SentJobIDs, want) {
		t.Errorf("sent job IDs %q, want %q (hidden files and subfolders skipped)", sum.SentJobIDs, want)
	}
	if len(sum.Skipped) != 1 || !errors.Is(sum.Skipped[0].Err, submit.ErrDuplicateJobID) {
		t.Errorf("skipped %v, want a-b.txt refused as a duplicate", sum.Skipped)
	}
	for _, body := range q.bodies(t) {
		j, err := jobv1.ParseJob([]byte(body))
		if err != nil {
			t.Fatalf("sent body does not parse: %v", err)
		}
		if j.Task != "summarize" || j.Tenant() != "acme" || !strings.HasPrefix(j.Text, "text of ") {
			t.Errorf("job %s: task %q tenant %q text %q; want summarize, acme, the file's text", j.JobID, j.Task, j.Tenant(), j.Text)
		}
	}
}

func TestJSONLBadLinesReportedOthersSent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docs", "memo.txt"), []byte("The memo's text.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := writeJSONL(t, dir, "jobs.jsonl",
		job("first", "one"),        // 1
		`{"version":"1","job_id":`, // 2: not JSON
		"",                         // 3: blank, ignored
		job("second", "two"),       // 4
		map[string]any{"version": "1", "job_id": "no-task", "text": "x"}, // 5: invalid
		job("first", "again"), // 6: duplicate
		map[string]any{"version": "1", "job_id": "from-file", "task": "summarize", "file": "docs/memo.txt"},         // 7
		map[string]any{"version": "1", "job_id": "escape", "task": "summarize", "file": "../secret.txt"},            // 8
		map[string]any{"version": "1", "job_id": "extra", "task": "summarize", "text": "x", "colour": "red"},        // 9: unknown field
		map[string]any{"version": "2", "job_id": "v2", "task": "summarize", "text": "x"},                            // 10
		map[string]any{"version": "1", "job_id": "both", "task": "summarize", "text": "x", "file": "docs/memo.txt"}, // 11
	)
	q := &fakeQueue{}
	var progress bytes.Buffer
	sum, err := submit.Run(context.Background(), sendOpts(path), submit.Deps{Queue: q}, &progress, nil)
	if !errors.Is(err, submit.ErrSkipped) {
		t.Errorf("Run error = %v, want ErrSkipped", err)
	}
	if want := []string{"first", "second", "from-file"}; !slices.Equal(sum.SentJobIDs, want) {
		t.Errorf("sent %q, want %q", sum.SentJobIDs, want)
	}
	wantSkipped := map[string]error{
		path + ":2": jobv1.ErrMalformed, path + ":5": jobv1.ErrInvalidJob, path + ":6": submit.ErrDuplicateJobID,
		path + ":8": nil, path + ":9": jobv1.ErrInvalidJob, path + ":10": jobv1.ErrUnsupportedVersion, path + ":11": nil,
	}
	if len(sum.Skipped) != len(wantSkipped) {
		t.Errorf("skipped %v, want lines 2, 5, 6, 8, 9, 10, 11", sum.Skipped)
	}
	for _, p := range sum.Skipped {
		want, ok := wantSkipped[p.Source]
		switch {
		case !ok:
			t.Errorf("skipped %s, which is valid", p)
		case want != nil && !errors.Is(p.Err, want):
			t.Errorf("skipped %s: error is not %v", p, want)
		}
		if !strings.Contains(progress.String(), p.Source+":") && !strings.Contains(progress.String(), "("+p.Source+")") {
			t.Errorf("progress output does not report %s:\n%s", p.Source, progress.String())
		}
	}
	if sum.Inputs != 10 {
		t.Errorf("inputs %d, want 10 non-empty lines", sum.Inputs)
	}
	for _, body := range q.bodies(t) {
		if strings.Contains(body, `"file"`) {
			t.Errorf("sent body still has the file field: %s", body)
		}
		j, err := jobv1.ParseJob([]byte(body))
		if err != nil {
			t.Errorf("sent body does not parse: %v", err)
		}
		if j.JobID == "from-file" && j.Text != "The memo's text.\n" {
			t.Errorf("from-file text %q, want the file's content", j.Text)
		}
	}
	if !strings.Contains(progress.String(), "skipped 7") {
		t.Errorf("summary line does not count 7 skipped:\n%s", progress.String())
	}

	opts := sendOpts(path)
	opts.AllowInvalid = true
	if _, err := submit.Run(context.Background(), opts, submit.Deps{Queue: &fakeQueue{}}, nil, nil); err != nil {
		t.Errorf("with AllowInvalid, Run error = %v, want nil", err)
	}
}

func TestBatchesOfTen(t *testing.T) {
	t.Parallel()
	path := writeJSONL(t, t.TempDir(), "jobs.jsonl", jobs(25, "short document")...)
	q := &fakeQueue{}
	sum, err := submit.Run(context.Background(), sendOpts(path), submit.Deps{Queue: q}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, c := range q.calls {
		sizes = append(sizes, len(c.Entries))
		for i, e := range c.Entries {
			if got, want := aws.ToString(e.Id), fmt.Sprint(i); got != want {
				t.Errorf("entry id %q, want index %q", got, want)
			}
			if got := aws.ToString(e.MessageAttributes[submit.AttrJobID].StringValue); !strings.Contains(aws.ToString(e.MessageBody), `"job_id":"`+got+`"`) {
				t.Errorf("attribute %s = %q does not match the body", submit.AttrJobID, got)
			}
			if got := aws.ToString(e.MessageAttributes[submit.AttrTask].StringValue); got != "summarize" {
				t.Errorf("attribute %s = %q, want summarize", submit.AttrTask, got)
			}
		}
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Errorf("batch sizes %v, want [10 10 5]", sizes)
	}
	if sum.Sent != 25 || len(sum.SentJobIDs) != 25 {
		t.Errorf("sent %d (%d IDs), want 25", sum.Sent, len(sum.SentJobIDs))
	}
}

// entrySize counts an entry as SQS does against the batch limit.
func entrySize(e types.SendMessageBatchRequestEntry) int {
	n := len(aws.ToString(e.MessageBody))
	for name, a := range e.MessageAttributes {
		n += len(name) + len(aws.ToString(a.DataType)) + len(aws.ToString(a.StringValue))
	}
	return n
}

func TestBatchesStayUnderTotalLimit(t *testing.T) {
	t.Parallel()
	// Seven inline messages of ~300 KiB: three fit in 1 MiB, four do not.
	path := writeJSONL(t, t.TempDir(), "big.jsonl", jobs(7, strings.Repeat("word ", 300<<10/5))...)
	q := &fakeQueue{}
	opts := sendOpts(path)
	opts.InlineLimit = submit.MaxMessageBytes
	sum, err := submit.Run(context.Background(), opts, submit.Deps{Queue: q}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, c := range q.calls {
		total := 0
		for _, e := range c.Entries {
			total += entrySize(e)
		}
		if total > submit.MaxBatchBytes {
			t.Errorf("batch of %d entries is %d bytes, over %d", len(c.Entries), total, submit.MaxBatchBytes)
		}
		sizes = append(sizes, len(c.Entries))
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Errorf("batch sizes %v, want [3 3 1]", sizes)
	}
	if sum.Sent != 7 || sum.Uploaded != 0 {
		t.Errorf("sent %d uploaded %d, want 7 inline", sum.Sent, sum.Uploaded)
	}
}

func TestFailedEntriesAreRetried(t *testing.T) {
	t.Parallel()
	path := writeJSONL(t, t.TempDir(), "jobs.jsonl", jobs(10, "text")...)
	q := &fakeQueue{refuse: func(call int, e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
		if call == 0 && (aws.ToString(e.Id) == "3" || aws.ToString(e.Id) == "7") {
			return &types.BatchResultErrorEntry{Code: aws.String("InternalError"), Message: aws.String("try again"), SenderFault: false}
		}
		return nil
	}}
	sum, err := submit.Run(context.Background(), sendOpts(path), submit.Deps{Queue: q, Backoff: testenv.NoWait}, nil, nil)
	if err != nil {
		t.Fatalf("Run error = %v, want nil after the retry", err)
	}
	if len(q.calls) != 2 {
		t.Fatalf("%d calls, want 2 (the batch, then its 2 failed entries)", len(q.calls))
	}
	var retried []string
	for _, e := range q.calls[1].Entries {
		retried = append(retried, aws.ToString(e.Id))
	}
	if !slices.Equal(retried, []string{"3", "7"}) {
		t.Errorf("retried entries %v, want [3 7]", retried)
	}
	got := q.bodies(t)
	if len(got) != 10 {
		t.Errorf("%d messages accepted, want 10 exactly once", len(got))
	}
	ids := slices.Clone(sum.SentJobIDs)
	slices.Sort(ids)
	if want := []string{"j00", "j01", "j02", "j03", "j04", "j05", "j06", "j07", "j08", "j09"}; !slices.Equal(ids, want) {
		t.Errorf("sent IDs %v, want %v", ids, want)
	}
}

func TestFailuresAreReportedNotDropped(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		refuse       func(call int, e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry
		wantCalls    int
		wantFailed   []string
		wantInReason string
	}{
		"sender fault is not retried": {
			refuse: func(_ int, e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
				if aws.ToString(e.Id) == "2" {
					return &types.BatchResultErrorEntry{Code: aws.String("InvalidMessageContents"), Message: aws.String("bad"), SenderFault: true}
				}
				return nil
			},
			wantCalls: 1, wantFailed: []string{"j02"}, wantInReason: "InvalidMessageContents",
		},
		"retries run out": {
			refuse: func(_ int, e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
				if aws.ToString(e.Id) == "0" {
					return &types.BatchResultErrorEntry{Code: aws.String("ServiceUnavailable"), Message: aws.String("busy")}
				}
				return nil
			},
			wantCalls: 3, wantFailed: []string{"j00"}, wantInReason: "ServiceUnavailable",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := writeJSONL(t, t.TempDir(), "jobs.jsonl", jobs(5, "text")...)
			q := &fakeQueue{refuse: c.refuse}
			opts := sendOpts(path)
			opts.MaxAttempts = 3
			var progress bytes.Buffer
			sum, err := submit.Run(context.Background(), opts, submit.Deps{Queue: q, Backoff: testenv.NoWait}, &progress, nil)
			if !errors.Is(err, submit.ErrFailed) {
				t.Errorf("Run error = %v, want ErrFailed", err)
			}
			if len(q.calls) != c.wantCalls {
				t.Errorf("%d calls, want %d", len(q.calls), c.wantCalls)
			}
			if got := sum.FailedJobIDs(); !slices.Equal(got, c.wantFailed) {
				t.Errorf("failed %v, want %v", got, c.wantFailed)
			}
			if len(sum.Failed) == 1 && !strings.Contains(sum.Failed[0].Err.Error(), c.wantInReason) {
				t.Errorf("failure reason %q does not name %s", sum.Failed[0].Err, c.wantInReason)
			}
			if sum.Sent != 4 {
				t.Errorf("sent %d, want the other 4", sum.Sent)
			}
			if !strings.Contains(progress.String(), "failed job IDs: "+strings.Join(c.wantFailed, " ")) {
				t.Errorf("progress does not list the failed job IDs:\n%s", progress.String())
			}
		})
	}
}

func TestUnusableQueueStopsTheRun(t *testing.T) {
	t.Parallel()
	path := writeJSONL(t, t.TempDir(), "jobs.jsonl", jobs(25, "text")...)
	q := &fakeQueue{err: &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue", Message: "no queue"}}
	sum, err := submit.Run(context.Background(), sendOpts(path), submit.Deps{Queue: q, Backoff: testenv.NoWait}, nil, nil)
	if !errors.Is(err, submit.ErrQueueUnusable) {
		t.Errorf("Run error = %v, want ErrQueueUnusable", err)
	}
	if len(q.calls) != 1 {
		t.Errorf("%d calls, want 1: a missing queue is not retried", len(q.calls))
	}
	if len(sum.Failed) != 10 || sum.NotSent != 15 {
		t.Errorf("failed %d, not sent %d; want the first batch's 10 failed and 15 not sent", len(sum.Failed), sum.NotSent)
	}
}

func TestLargeDocumentGoesByReference(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := []byte(strings.Repeat("A long line of a long document <with> markup & more.\n", 200)) // ~10 KiB
	bigPath := filepath.Join(dir, "big report.txt")
	if err := os.WriteFile(bigPath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	smallPath := filepath.Join(dir, "small.txt")
	if err := os.WriteFile(smallPath, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("with a bucket", func(t *testing.T) {
		t.Parallel()
		q, up := &fakeQueue{}, &fakeUploader{}
		opts := sendOpts(bigPath, smallPath)
		opts.InlineLimit = 4 << 10
		opts.InputBucket = "tierq-inputs"
		sum, err := submit.Run(context.Background(), opts, submit.Deps{Queue: q, Uploader: up}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Uploaded != 1 || sum.Sent != 2 {
			t.Errorf("uploaded %d sent %d, want 1 and 2", sum.Uploaded, sum.Sent)
		}
		key := "tierq-inputs/inputs/big-report.txt.txt"
		if !bytes.Equal(up.objects[key], big) {
			t.Errorf("object %s has %d bytes, want the document's %d", key, len(up.objects[key]), len(big))
		}
		if ct := up.ctype[key]; ct != "text/plain; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
		for _, body := range q.bodies(t) {
			j, err := jobv1.ParseJob([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			switch j.JobID {
			case "big-report":
				if j.Text != "" || j.DocumentURI != "s3://"+key {
					t.Errorf("big job: text %d bytes, uri %q; want by reference to s3://%s", len(j.Text), j.DocumentURI, key)
				}
			case "small":
				if j.Text != "short" || j.DocumentURI != "" {
					t.Errorf("small job: text %q uri %q; want inline", j.Text, j.DocumentURI)
				}
			}
		}
	})
	t.Run("without a bucket", func(t *testing.T) {
		t.Parallel()
		q := &fakeQueue{}
		opts := sendOpts(bigPath, smallPath)
		opts.InlineLimit = 4 << 10
		sum, err := submit.Run(context.Background(), opts, submit.Deps{Queue: q}, nil, nil)
		if !errors.Is(err, submit.ErrFailed) {
			t.Errorf("Run error = %v, want ErrFailed", err)
		}
		if len(sum.Failed) != 1 || !errors.Is(sum.Failed[0].Err, submit.ErrNoInputBucket) || sum.Failed[0].JobID != "big-report.txt" {
			t.Errorf("failed %v, want big-report.txt with ErrNoInputBucket", sum.Failed)
		}
		if sum.Sent != 1 {
			t.Errorf("sent %d, want the small one", sum.Sent)
		}
	})
}

func TestRawSendsFilesVerbatim(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string][]byte{
		"a-wrong-version.json": []byte(`{"version":"2","job_id":"x"}`),
		"b-not-json.txt":       []byte("not json at all\n"),
		"c-trailing.jsonl":     []byte("{\"version\":\"1\"}\n{\n"), // not split into lines in raw mode
		"d-binary.bin":         {0xff, 0xfe, 0x00},
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	q := &fakeQueue{}
	opts := sendOpts(dir)
	opts.Raw = true
	sum, err := submit.Run(context.Background(), opts, submit.Deps{Queue: q}, nil, nil)
	if !errors.Is(err, submit.ErrFailed) {
		t.Errorf("Run error = %v, want ErrFailed for the binary file", err)
	}
	got := q.bodies(t)
	want := []string{string(files["a-wrong-version.json"]), string(files["b-not-json.txt"]), string(files["c-trailing.jsonl"])}
	if !slices.Equal(got, want) {
		t.Errorf("bodies %q, want the files verbatim %q", got, want)
	}
	for _, c := range q.calls {
		for _, e := range c.Entries {
			if len(e.MessageAttributes) != 0 {
				t.Errorf("raw message has attributes %v", e.MessageAttributes)
			}
		}
	}
	if len(sum.Failed) != 1 || !errors.Is(sum.Failed[0].Err, submit.ErrNotSQSText) {
		t.Errorf("failed %v, want the binary file with ErrNotSQSText", sum.Failed)
	}
}

var progressLine = regexp.MustCompile(`^submit: +(\d+)%  (\d+)/(\d+) jobs  0 uploaded  0 failed  \d+ KiB$`)

func TestProgressWithoutTerminal(t *testing.T) {
	t.Parallel()
	path := writeJSONL(t, t.TempDir(), "jobs.jsonl", append(jobs(99, "text"), "{not json")...)
	var out bytes.Buffer
	opts := sendOpts(path)
	opts.AllowInvalid = true
	if _, err := submit.Run(context.Background(), opts, submit.Deps{Queue: &fakeQueue{}}, &out, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "\r") {
		t.Errorf("non-terminal progress redraws with \\r:\n%q", out.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	var percents []string
	for _, l := range lines {
		if m := progressLine.FindStringSubmatch(l); m != nil {
			percents = append(percents, m[1])
			if m[3] != "100" {
				t.Errorf("progress line %q: total %s, want 100", l, m[3])
			}
		}
	}
	// Each batch of 10 crosses a tenth; the bad line alone does not.
	if want := []string{"10", "20", "30", "40", "50", "60", "70", "80", "90", "100"}; !slices.Equal(percents, want) {
		t.Errorf("progress at %v%%, want every 10%%:\n%s", percents, out.String())
	}
	if !strings.Contains(out.String(), ":100: message is not a JSON job object") {
		t.Errorf("bad line not reported with its number:\n%s", out.String())
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "submit: sent 99, uploaded 0, skipped 1, failed 0") {
		t.Errorf("last line %q, want the summary", last)
	}
}

func TestProgressOnTerminal(t *testing.T) {
	t.Parallel()
	path := writeJSONL(t, t.TempDir(), "jobs.jsonl", jobs(25, "text")...)
	var out bytes.Buffer
	opts := sendOpts(path)
	opts.Terminal = true
	if _, err := submit.Run(context.Background(), opts, submit.Deps{Queue: &fakeQueue{}}, &out, nil); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"\r[=======>            ] 10/25 jobs",
		"\r[===============>    ] 20/25 jobs",
		"\r[====================] 25/25 jobs  0 uploaded  0 failed",
		"\nsubmit: sent 25, uploaded 0, skipped 0, failed 0",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal progress lacks %q:\n%q", want, s)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	base := submit.Options{Paths: []string{"x"}, QueueURL: "q"}
	cases := map[string]struct {
		change func(*submit.Options)
		want   []string // substrings of the error; none means valid
	}{
		"defaults":          {change: func(*submit.Options) {}},
		"dry run, no queue": {change: func(o *submit.Options) { o.QueueURL, o.DryRun = "", true }},
		"everything missing": {
			change: func(o *submit.Options) { *o = submit.Options{} },
			want:   []string{"paths", "queue URL"},
		},
		"raw dry run":        {change: func(o *submit.Options) { o.Raw, o.DryRun = true, true }, want: []string{"raw and dry run"}},
		"inline over 1 MiB":  {change: func(o *submit.Options) { o.InlineLimit = 2 << 20 }, want: []string{"inline limit"}},
		"inline tiny":        {change: func(o *submit.Options) { o.InlineLimit = 100 }, want: []string{"inline limit"}},
		"bucket as URI":      {change: func(o *submit.Options) { o.InputBucket = "s3://b/x" }, want: []string{"input bucket"}},
		"bucket with a port": {change: func(o *submit.Options) { o.InputBucket = "tierq-inputs:443" }, want: []string{"input bucket", "no port"}},
		"bucket like an IP":  {change: func(o *submit.Options) { o.InputBucket = "10.0.0.1" }, want: []string{"input bucket", "IP address"}},
		"prefix from root":   {change: func(o *submit.Options) { o.InputPrefix = "/inputs/" }, want: []string{"input prefix", "empty segment"}},
		"prefix climbing":    {change: func(o *submit.Options) { o.InputPrefix = "inputs/../results/" }, want: []string{"input prefix", `".." segment`}},
		"prefix with a dot":  {change: func(o *submit.Options) { o.InputPrefix = "./" }, want: []string{"input prefix", `"." segment`}},
		"prefix with a #":    {change: func(o *submit.Options) { o.InputPrefix = "batch#7/" }},
		"bad prefix":         {change: func(o *submit.Options) { o.JobIDPrefix = "-x/" }, want: []string{"job ID prefix"}},
		"unknown task":       {change: func(o *submit.Options) { o.Task = "translate" }, want: []string{"task"}},
		"classify no labels": {change: func(o *submit.Options) { o.Task = "classify" }, want: []string{"labels"}},
		"custom no text":     {change: func(o *submit.Options) { o.Task = "custom" }, want: []string{"instructions"}},
		"several at once": {
			change: func(o *submit.Options) { o.InlineLimit, o.JobIDPrefix, o.MaxAttempts = -1, "/", -2 },
			want:   []string{"inline limit", "job ID prefix", "max attempts"},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := base
			c.change(&o)
			err := o.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors about %v", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestMissingInputsReportedBeforeSending(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeJSONL(t, dir, "jobs.jsonl", jobs(3, "x")...)
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	blank := writeJSONL(t, dir, "blank.jsonl", "", "  ")
	q := &fakeQueue{}
	_, err := submit.Run(context.Background(), sendOpts(good, filepath.Join(dir, "nope.jsonl"), empty, blank), submit.Deps{Queue: q}, nil, nil)
	for _, want := range []string{"nope.jsonl", "no regular", "blank.jsonl: no jobs"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run error = %v, want it to name %q", err, want)
		}
	}
	if len(q.calls) != 0 {
		t.Errorf("%d calls: nothing may be sent when an input is unusable", len(q.calls))
	}
}

func TestCancelledRunReportsWhatWasNotSent(t *testing.T) {
	t.Parallel()
	path := writeJSONL(t, t.TempDir(), "jobs.jsonl", jobs(15, "x")...)
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel during the first batch's call: its entries count as failed
	// (they may or may not have arrived), the rest as not sent.
	q := &fakeQueue{refuse: func(call int, _ types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
		cancel()
		return &types.BatchResultErrorEntry{Code: aws.String("InternalError"), Message: aws.String("x")}
	}}
	sum, err := submit.Run(ctx, sendOpts(path), submit.Deps{Queue: q, Backoff: testenv.NoWait}, nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
	if len(sum.Failed)+sum.NotSent+sum.Sent != 15 {
		t.Errorf("failed %d + not sent %d + sent %d, want all 15 accounted for", len(sum.Failed), sum.NotSent, sum.Sent)
	}
	if len(q.calls) != 1 {
		t.Errorf("%d calls after cancel, want 1", len(q.calls))
	}
}
