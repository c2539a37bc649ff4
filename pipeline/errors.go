package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// ErrRetriesExhausted is wrapped by the error Process returns when a model
// stayed unavailable for every in-process attempt; the message is released
// and nothing was written. errors.Is also finds the last model error.
var ErrRetriesExhausted = errors.New("model call retries exhausted")

// DeadLetter marks err as a message that can never succeed (it is not a job),
// for the worker to move to the dead-letter queue. Its text is the reason.
func DeadLetter(err error) error {
	if err == nil {
		return nil
	}
	return &deadLetterError{err: err}
}

// RetryAfter marks err as transient: the worker releases the message to
// reappear after d.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: d}
}

// deadLetterError satisfies worker.Processor's DeadLetter() behaviour.
type deadLetterError struct{ err error }

func (e *deadLetterError) Error() string    { return e.err.Error() }
func (e *deadLetterError) Unwrap() error    { return e.err }
func (e *deadLetterError) DeadLetter() bool { return true }

// retryAfterError satisfies worker.Processor's RetryAfter() behaviour.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.err, e.after)
}
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) RetryAfter() time.Duration { return e.after }

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
