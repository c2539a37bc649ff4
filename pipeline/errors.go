package pipeline

import (
	"errors"
	"fmt"
)

// ErrRetriesExhausted is wrapped by the error Process returns when a model
// stayed unavailable for every in-process attempt; the message is released
// and nothing was written. errors.Is also finds the last model error.
var ErrRetriesExhausted = errors.New("model call retries exhausted")

// failure is a permanent problem with one job: it ends in a failed result
// with a stable code, never in a retry.
type failure struct {
	code string
	msg  string
	err  error // cause, for errors.Is; may be nil
}

func (f *failure) Error() string { return f.code + ": " + f.msg }
func (f *failure) Unwrap() error { return f.err }

func fail(code string, err error, format string, args ...any) *failure {
	return &failure{code: code, msg: fmt.Sprintf(format, args...), err: err}
}
