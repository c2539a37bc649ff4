package worker

import (
	"context"
	"time"
)

// Message is one SQS message handed to a Processor.
type Message struct {
	ID   string
	Body []byte
	// ReceiveCount is SQS's ApproximateReceiveCount (1 on first delivery).
	ReceiveCount int
	// SentAt is SQS's SentTimestamp: when the message was enqueued.
	SentAt time.Time
	// ReceivedAt is when this worker received it.
	ReceivedAt time.Time
	// Attributes are the message's string message attributes.
	Attributes map[string]string

	receiptHandle string
}

// Processor handles one message. What it returns decides what happens to
// the message (see outcome.go):
//
//   - nil: the message is done and is deleted.
//   - DeadLetter(err): the message can never succeed (it is not a job); it is
//     sent to the dead-letter queue with err.Error() as the reason attribute,
//     then deleted.
//   - Release(err), ReleaseAfter(err, d), ReleaseWithin(err, d): transient
//     trouble; the message is released (ChangeMessageVisibility) to reappear
//     after Config.ReleaseDelay, after d, or after the sooner of the two.
//   - any other error: released after Config.ReleaseDelay, like Release. The
//     queue's redrive policy is the last safety net.
//
// The context is cancelled when the worker gives up on the message: at
// shutdown past the drain window, or when the message's visibility can no
// longer be extended (SQS's 12h limit, or extensions failing), since it is
// then about to be redelivered to another worker. The processor must then
// return promptly; after a lost visibility the message is left to its next
// delivery unless the job returns nil, when it is still deleted.
type Processor interface {
	Process(ctx context.Context, m Message) error
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, m Message) error

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, m Message) error { return f(ctx, m) }

// Capacity tells the receive loop how many more messages downstream can take
// soon (for example the free permits of the model limiters). The loop never
// asks SQS for more than min(free slots, Available()). nil means no limit
// beyond the slots.
type Capacity interface {
	Available() int
}
