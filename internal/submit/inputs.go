package submit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tierq/tierq/jobv1"
)

// input is one document file, one JSONL line or one raw message file:
// one message to send, unless it is invalid.
type input struct {
	// source names the input in reports: a path, or path:line for JSONL.
	source string
	// path is the file to read for a document or a raw message.
	path string
	// line is a JSONL line; dir is its file's folder, for "file" fields.
	line []byte
	dir  string
}

// collect lists the inputs named by paths, in order. Every path that cannot
// be read is reported, all at once, before anything is sent: a typo in the
// last argument should not leave a half-submitted run.
func collect(paths []string, raw bool) ([]input, error) {
	var ins []input
	var errs []error
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("input %s: %w", p, err))
			continue
		}
		if !fi.IsDir() {
			more, err := fileInputs(p, raw)
			if err != nil {
				errs = append(errs, err)
			}
			ins = append(ins, more...)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			errs = append(errs, fmt.Errorf("read folder %s: %w", p, err))
			continue
		}
		n := 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			fp := filepath.Join(p, e.Name())
			// Stat rather than e.Type(), so a symlink to a file counts.
			if fi, err := os.Stat(fp); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			more, err := fileInputs(fp, raw)
			if err != nil {
				errs = append(errs, err)
			}
			ins = append(ins, more...)
			n++
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("folder %s: no regular, non-hidden files", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ins, nil
}

// fileInputs returns a file's inputs: its JSONL lines, or the file itself.
func fileInputs(path string, raw bool) ([]input, error) {
	if raw || !strings.EqualFold(filepath.Ext(path), ".jsonl") {
		return []input{{source: path, path: path}}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read job list %s: %w", path, err)
	}
	var ins []input
	// Split by hand rather than with bufio.Scanner: a line with an inline
	// document can be far longer than a Scanner's default token limit.
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line) // also drops a CRLF file's \r
		if len(line) == 0 {
			continue
		}
		ins = append(ins, input{source: path + ":" + strconv.Itoa(i+1), line: line, dir: filepath.Dir(path)})
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("job list %s: no jobs (every line is empty)", path)
	}
	return ins, nil
}

// errFileField explains what is wrong with a JSONL line's "file" field.
var errFileField = errors.New(`invalid "file" field`)

// parseLine decodes and validates one JSONL line with jobv1.ParseJob,
// after replacing a "file" field with the text of the file it names.
func parseLine(line []byte, dir string) (jobv1.Job, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return jobv1.Job{}, fmt.Errorf("%w: %v", jobv1.ErrMalformed, err)
	}
	raw, ok := fields["file"]
	if !ok {
		return jobv1.ParseJob(line)
	}
	var rel string
	if err := json.Unmarshal(raw, &rel); err != nil || rel == "" {
		return jobv1.Job{}, fmt.Errorf("%w: want a non-empty string path", errFileField)
	}
	if _, has := fields["text"]; has {
		return jobv1.Job{}, fmt.Errorf("%w: set file or text, not both", errFileField)
	}
	if _, has := fields["document_uri"]; has {
		return jobv1.Job{}, fmt.Errorf("%w: set file or document_uri, not both", errFileField)
	}
	// A job list must not reach outside its folder: it may come from
	// someone else, and whatever it names is sent to the queue.
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return jobv1.Job{}, fmt.Errorf("%w: %q must be a relative path inside the job list's folder", errFileField, rel)
	}
	text, err := readDocument(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return jobv1.Job{}, err
	}
	delete(fields, "file")
	if fields["text"], err = json.Marshal(text); err != nil {
		return jobv1.Job{}, fmt.Errorf("encode text of %s: %w", rel, err)
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return jobv1.Job{}, fmt.Errorf("encode job: %w", err)
	}
	return jobv1.ParseJob(body)
}

// readDocument reads a document file as text. It rejects invalid UTF-8
// here because encoding/json would silently replace the bad bytes, sending
// a document different from the file.
func readDocument(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read document: %w", err)
	}
	if !utf8.Valid(data) {
		return "", fmt.Errorf("%w: document %s is not valid UTF-8 text", jobv1.ErrInvalidJob, path)
	}
	return string(data), nil
}

// fileJob builds the job for a document file from the options. The job ID
// is left to the caller, which knows the IDs already used.
func fileJob(o Options, text string) jobv1.Job {
	j := jobv1.Job{
		Version:      jobv1.JobVersion,
		Task:         o.Task,
		Instructions: o.Instructions,
		Text:         text,
		TierOverride: o.TierOverride,
		TierHint:     o.TierHint,
		Labels:       o.Labels,
		Fields:       o.Fields,
	}
	if o.Tenant != "" {
		j.Metadata = map[string]string{"tenant": o.Tenant}
	}
	return j
}
