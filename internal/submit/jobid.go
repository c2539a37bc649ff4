package submit

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tierq/tierq/pipeline"
)

// fallbackID names a document whose file name has no usable character.
const fallbackID = "doc"

// JobIDFromFileName derives a job ID from a document's file name: the base
// name without its extension, every run of characters outside A-Z a-z 0-9
// . _ - replaced by one "-", leading and trailing . _ - trimmed, prefixed
// with prefix and cut to pipeline.MaxJobIDLen. A name with nothing usable
// becomes "doc". prefix must itself be valid (Options.Validate checks it).
//
// The result is deterministic, so resubmitting the same folder gives the
// same IDs and the worker's one-result-per-job rule makes reruns no-ops;
// use a new prefix to run the documents again.
func JobIDFromFileName(prefix, name string) string {
	base := filepath.Base(name)
	if ext := filepath.Ext(base); ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	var b strings.Builder
	dash := false
	for _, r := range base {
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
	id := strings.Trim(b.String(), "._-")
	if id == "" {
		id = fallbackID
	}
	return cut(prefix+id, pipeline.MaxJobIDLen)
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

// unique returns id, or id with the smallest suffix -2, -3, ... that is not
// yet used, still within pipeline.MaxJobIDLen. It does not claim the result.
func (s idSet) unique(id string) string {
	if _, used := s[id]; !used {
		return id
	}
	for n := 2; ; n++ {
		suffix := "-" + strconv.Itoa(n)
		c := cut(id, pipeline.MaxJobIDLen-len(suffix)) + suffix
		if _, used := s[c]; !used {
			return c
		}
	}
}
