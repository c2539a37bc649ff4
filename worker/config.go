package worker

import (
	"errors"
	"fmt"
	"time"
)

// SQS limits the configuration is checked against (SQS API reference).
const (
	maxWaitTime    = 20 * time.Second
	maxBatch       = 10
	maxVisibility  = 12 * time.Hour
	maxReasonChars = 1000
)

// Config configures a Worker. The zero value of every field except the two
// queue URLs means "use the default"; New applies the defaults before it
// validates, so a Config only needs the URLs.
type Config struct {
	// QueueURL is the queue jobs are received from. Required.
	QueueURL string
	// DeadLetterQueueURL receives messages whose Processor reports they can
	// never succeed. Required: a poison message must go somewhere other than
	// back to the queue.
	DeadLetterQueueURL string

	// Concurrency is the number of processing slots: at most this many
	// messages are held (received and not yet deleted or released) at once.
	// Default 8.
	Concurrency int
	// WaitTime is the long-poll wait of each ReceiveMessage call, whole
	// seconds up to 20s. Zero means the default, 20s: short polling pays for
	// empty receives and gains nothing for a batch pipeline.
	WaitTime time.Duration
	// MaxMessages caps one ReceiveMessage call, 1..10. Default 10. Each call
	// asks for fewer when fewer slots (or less Capacity) are free.
	MaxMessages int
	// VisibilityTimeout is sent with every receive so the worker knows each
	// message's clock, and is the amount each heartbeat extends it by. Whole
	// seconds in 1s..12h. Default 30s: it is how long the messages of a
	// worker that was killed (no drain, no release) stay invisible, so it
	// bounds how soon their jobs run again. Shorter costs more heartbeat
	// calls: with the default HeartbeatInterval a running job's visibility
	// is extended every VisibilityTimeout/2, 4 extensions per job-minute at
	// 30s, 2 at 60s (batched up to 10 messages per ChangeMessageVisibilityBatch).
	VisibilityTimeout time.Duration
	// HeartbeatInterval is how often running jobs are checked; a job that
	// has used half of its visibility is extended. It must be below half the
	// VisibilityTimeout so an extension lands before the clock runs out.
	// Default VisibilityTimeout/4 (7.5s at the default 30s): extensions then
	// happen between 50% and 75% of the clock, leaving a quarter of it for
	// the call itself.
	HeartbeatInterval time.Duration
	// ReleaseDelay is how long a released message stays invisible: after
	// Release or any error that is not an outcome, and at most this long
	// after ReleaseWithin. The one place the delay is decided. Whole seconds
	// up to 12h. Default 30s. (A Processor wanting an immediate retry returns
	// ReleaseAfter(err, 0).)
	ReleaseDelay time.Duration
	// DrainTimeout is how long Run lets running jobs finish after its context
	// is cancelled before it cancels them and releases their messages.
	// Default 25s, which with the final release and delete calls fits ECS's
	// default 30s stop timeout.
	DrainTimeout time.Duration
	// DeleteFlushInterval bounds how long a finished message waits for its
	// DeleteMessageBatch. A batch goes out earlier when it is full (10
	// entries, or Concurrency when that is smaller, since no more can come).
	// Must be below half the VisibilityTimeout. Default 100ms.
	DeleteFlushInterval time.Duration
}

// Defaults used by ApplyDefaults.
const (
	DefaultConcurrency         = 8
	DefaultWaitTime            = 20 * time.Second
	DefaultMaxMessages         = 10
	DefaultVisibilityTimeout   = 30 * time.Second
	DefaultReleaseDelay        = 30 * time.Second
	DefaultDrainTimeout        = 25 * time.Second
	DefaultDeleteFlushInterval = 100 * time.Millisecond
)

// DefaultConfig returns a Config with every default filled in and the queue
// URLs left for the caller.
func DefaultConfig() Config {
	var c Config
	c.ApplyDefaults()
	return c
}

// ApplyDefaults replaces every zero field that has a default.
func (c *Config) ApplyDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.WaitTime == 0 {
		c.WaitTime = DefaultWaitTime
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	if c.VisibilityTimeout == 0 {
		c.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = c.VisibilityTimeout / 4
	}
	if c.ReleaseDelay == 0 {
		c.ReleaseDelay = DefaultReleaseDelay
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.DeleteFlushInterval == 0 {
		c.DeleteFlushInterval = DefaultDeleteFlushInterval
	}
}

// FieldError is a problem with one Config field. Validate joins one per
// problem, so a caller that fills Config from its own settings (flags,
// environment) can say which of its settings is wrong: errors.As over the
// joined error's Unwrap() []error finds each.
type FieldError struct {
	// Field is the Config field's name, for example "QueueURL".
	Field string
	// Problem says what is wrong and what is allowed, for example
	// "required" or "must be whole seconds in 0..20s, got 30s".
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Validate reports every problem with c at once, one *FieldError each. It
// checks c as it will be used, so call ApplyDefaults first (New does)
// unless every field is set.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}

	if c.QueueURL == "" {
		bad("QueueURL", "required")
	}
	if c.DeadLetterQueueURL == "" {
		bad("DeadLetterQueueURL", "required: poison messages must go somewhere")
	} else if c.DeadLetterQueueURL == c.QueueURL {
		bad("DeadLetterQueueURL", "must differ from the job queue's URL")
	}
	if c.Concurrency < 1 {
		bad("Concurrency", "must be at least 1, got %d", c.Concurrency)
	}
	if c.WaitTime < 0 || c.WaitTime > maxWaitTime || !wholeSeconds(c.WaitTime) {
		bad("WaitTime", "must be whole seconds in 0..20s, got %v", c.WaitTime)
	}
	if c.MaxMessages < 1 || c.MaxMessages > maxBatch {
		bad("MaxMessages", "must be in 1..10, got %d", c.MaxMessages)
	}
	vtOK := c.VisibilityTimeout >= time.Second && c.VisibilityTimeout <= maxVisibility && wholeSeconds(c.VisibilityTimeout)
	if !vtOK {
		bad("VisibilityTimeout", "must be whole seconds in 1s..12h, got %v", c.VisibilityTimeout)
	}
	if c.HeartbeatInterval <= 0 || (vtOK && c.HeartbeatInterval >= c.VisibilityTimeout/2) {
		bad("HeartbeatInterval", "must be above 0 and below half the visibility timeout (%v), got %v",
			c.VisibilityTimeout/2, c.HeartbeatInterval)
	}
	if c.ReleaseDelay < 0 || c.ReleaseDelay > maxVisibility || !wholeSeconds(c.ReleaseDelay) {
		bad("ReleaseDelay", "must be whole seconds in 0..12h, got %v", c.ReleaseDelay)
	}
	if c.DrainTimeout < 0 {
		bad("DrainTimeout", "must not be negative, got %v", c.DrainTimeout)
	}
	if c.DeleteFlushInterval <= 0 || (vtOK && c.DeleteFlushInterval >= c.VisibilityTimeout/2) {
		bad("DeleteFlushInterval", "must be above 0 and below half the visibility timeout (%v), got %v",
			c.VisibilityTimeout/2, c.DeleteFlushInterval)
	}
	return errors.Join(errs...)
}

func wholeSeconds(d time.Duration) bool { return d%time.Second == 0 }
