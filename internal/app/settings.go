package app

import (
	"errors"
	"strings"

	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/worker"
)

// SettingError is a problem with one setting. New returns one per problem,
// joined, so that a command can name its own flag or variable for the
// setting (cmd/tierq: "--queue-url / TIERQ_QUEUE_URL: required").
type SettingError struct {
	// Setting is the Settings field's name, for example "QueueURL". It is
	// "" for a component setting Settings does not expose.
	Setting string
	// Problem says what is wrong and what is allowed.
	Problem string
	// Err is the component's own error, when there is one.
	Err error
}

func (e *SettingError) Error() string {
	if e.Setting == "" {
		return e.Problem
	}
	return e.Setting + ": " + e.Problem
}

func (e *SettingError) Unwrap() error { return e.Err }

// SettingErrors lists the problems in an error New returned, in order.
func SettingErrors(err error) []*SettingError {
	var out []*SettingError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if se, ok := err.(*SettingError); ok {
			out = append(out, se)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		out = append(out, &SettingError{Problem: err.Error(), Err: err})
	}
	walk(err)
	return out
}

// Which Settings field fills each component field. Fields without an
// entry (worker.Config.MaxMessages, pipeline.Config.S3Timeout, ...) are
// not settings: their defaults always apply, and a problem with one is a
// bug reported as it is. The worker's HeartbeatInterval is derived from
// the visibility timeout.
var (
	workerSettings = map[string]string{
		"QueueURL": "QueueURL", "DeadLetterQueueURL": "DeadLetterQueueURL", "Concurrency": "Concurrency",
		"WaitTime": "WaitTime", "VisibilityTimeout": "VisibilityTimeout", "HeartbeatInterval": "VisibilityTimeout",
		"ReleaseDelay": "ReleaseDelay", "DrainTimeout": "DrainTimeout",
	}
	pipelineSettings = map[string]string{
		"ResultsBucket": "ResultsBucket", "ResultsPrefix": "ResultsPrefix", "InputBuckets": "InputBuckets",
		"MaxDocumentBytes": "MaxDocumentBytes", "CallTimeout": "CallTimeout", "ClaimLease": "ClaimLease",
		"Retry.MaxAttempts": "RetryMaxAttempts", "Retry.MaxSnooze": "MaxSnooze", "Tiers": "TiersFile",
		"MetricsNamespace": "MetricsNamespace", "WorkerID": "WorkerID",
	}
)

// settingErrors turns a component's Validate error into SettingErrors.
func settingErrors(err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range flatten(err) {
		var wf *worker.FieldError
		var pf *pipeline.FieldError
		switch {
		case errors.As(e, &wf):
			if s, ok := workerSettings[wf.Field]; ok {
				out = append(out, &SettingError{Setting: s, Problem: wf.Problem, Err: e})
				continue
			}
		case errors.As(e, &pf):
			if s, ok := pipelineSettings[pf.Field]; ok {
				out = append(out, &SettingError{Setting: s, Problem: pf.Problem, Err: e})
				continue
			}
		}
		out = append(out, &SettingError{Problem: e.Error(), Err: e})
	}
	return errors.Join(out...)
}

// limiterError names the setting of each problem in the limiter's
// configuration error. The limiter reports its Config fields by name at
// the start of each message; those that Settings fills are mapped.
func limiterError(err error) error {
	var out []error
	for _, e := range flatten(err) {
		msg := strings.TrimPrefix(e.Error(), "limiter config: ")
		se := &SettingError{Setting: "Limiter", Problem: msg, Err: e}
		for field, setting := range map[string]string{
			"MaxLimit": "MaxModelConcurrency", "InitialLimit": "ModelConcurrency", "Window": "LimiterWindow",
		} {
			if rest, ok := strings.CutPrefix(msg, field+" "); ok {
				se.Setting, se.Problem = setting, rest
			}
		}
		out = append(out, se)
	}
	return errors.Join(out...)
}

// flatten lists the leaves of a joined error.
func flatten(err error) []error {
	for {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			var out []error
			for _, e := range j.Unwrap() {
				out = append(out, flatten(e)...)
			}
			return out
		}
		// fmt.Errorf("...: %w", errors.Join(...)) wraps a joined error.
		inner := errors.Unwrap(err)
		if inner == nil {
			return []error{err}
		}
		if _, ok := inner.(interface{ Unwrap() []error }); !ok {
			return []error{err}
		}
		err = inner
	}
}
