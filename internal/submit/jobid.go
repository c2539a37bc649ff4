package submit

import (
	"path/filepath"
	"strings"

	"github.com/tierq/tierq/jobv1"
)

// fallbackID names a document whose file name has no usable character.
const fallbackID = "doc"

// JobIDFromFileName derives a job ID from a document's file name: the base
// name with its extension, every run of characters outside A-Z a-z 0-9
// . _ - replaced by one "-", leading and trailing . _ - trimmed, prefixed
// with prefix and cut to jobv1.MaxJobIDLen. A name with nothing usable
// becomes "doc". prefix must itself be valid (Options.Validate checks it).
//
// The result is deterministic and depends on the file alone (never on what
// else is in the folder), so resubmitting the same folder gives the same IDs
// and the worker's one-result-per-job rule makes reruns no-ops; use a new
// prefix to run the documents again. The extension stays in the ID so that
// a.txt and a.md never share one result.
func JobIDFromFileName(prefix, name string) string {
	base := filepath.Base(name)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if stem == "" { // ".profile": the whole name is the stem
		stem, ext = base, ""
	}
	id := sanitize(stem)
	if id == "" {
		id = fallbackID
	}
	if e := sanitize(strings.TrimPrefix(ext, ".")); e != "" {
		id += "." + e
	}
	return cut(prefix+id, jobv1.MaxJobIDLen)
}

// sanitize replaces every run of characters outside A-Z a-z 0-9 . _ - by one
// "-", every run of dots by one dot (a job ID never holds "..") and trims
// leading and trailing . _ -.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for i, r := range s {
		if r == '.' && i > 0 && s[i-1] == '.' {
			continue
		}
		if r < 128 && (isAlnum(byte(r)) || r == '.' || r == '_' || r == '-') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "._-")
}

// cut shortens an ASCII ID to n bytes, trimming what would end it oddly.
func cut(id string, n int) string {
	if len(id) <= n {
		return id
	}
	return strings.TrimRight(id[:n], "._-")
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// idSet is the job IDs used in one run, with where each was first used.
type idSet map[string]string
