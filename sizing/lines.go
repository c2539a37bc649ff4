package sizing

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// lineReader reads lines of at most max bytes. Unlike bufio.Scanner, which
// stops at the first line over its limit ("token too long") and leaves the
// line count short, it consumes an over-long line whole and reports it, so
// the caller can skip it, name its true line number and go on.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its "\n" or "\r\n", or tooLong (and
// no text) when the line is longer than max; io.EOF after the last line.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	read := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		read = read || len(chunk) > 0
		// Keep up to max+2 bytes (the line and its "\r\n"); beyond that the
		// line is too long whatever follows, so stop copying.
		if !tooLong {
			if len(lr.buf)+len(chunk) > lr.max+2 {
				tooLong, lr.buf = true, lr.buf[:0]
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if !read {
				return nil, false, io.EOF
			}
		case err != nil:
			return nil, false, err
		}
		break
	}
	if tooLong {
		return nil, true, nil
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(lr.buf, []byte("\n")), []byte("\r"))
	if len(line) > lr.max {
		return nil, true, nil
	}
	return line, false, nil
}

// window is the --start/--end filter of the file sources; a zero bound is
// open.
type window struct{ start, end time.Time }

func (w window) contains(t time.Time) bool {
	return (w.start.IsZero() || !t.Before(w.start)) && (w.end.IsZero() || t.Before(w.end))
}

// warning says how many records the window left out, so a filter that
// drops everything does not look like a quiet workload.
func (w window) warning(n int, what string) []string {
	if n == 0 {
		return nil
	}
	bound := func(t time.Time) string {
		if t.IsZero() {
			return "open"
		}
		return t.UTC().Format(time.RFC3339)
	}
	return []string{fmt.Sprintf("%d %s%s outside --start %s / --end %s left out", n, what, plural(n), bound(w.start), bound(w.end))}
}
