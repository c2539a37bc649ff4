package pipeline

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
)

// panicky is a model client whose call panics, as a bug would.
type panicky struct{}

func (panicky) Converse(context.Context, *bedrockruntime.ConverseInput, ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	panic("bug in a model call")
}

// A panic in the middle of a job (the worker recovers it and releases the
// message) must end the claim's lease, not leave it renewed for ever.
func TestPanicEndsTheClaim(t *testing.T) {
	t.Parallel()
	u := newUnit(t, nil, func(c *Config) { c.ClaimLease = time.Hour })
	u.p.conv = panicky{}
	m := msg(t, Job{JobID: "j1", Task: "summarize", Text: shortDoc})
	func() {
		defer func() { _ = recover() }()
		_ = u.p.Process(context.Background(), m)
		t.Fatal("Process returned; want the model call's panic")
	}()
	var rec claimRecord
	if err := json.Unmarshal(u.store.object("results", ClaimKey(DefaultResultsPrefix, "j1")), &rec); err != nil {
		t.Fatalf("claim: %v", err)
	}
	if rec.Until.After(u.p.now()) {
		t.Errorf("claim lease ends %s, want ended: a panicked delivery gave its job back", rec.Until)
	}
	// The next delivery runs at once, without waiting an hour.
	u.p.conv = u.conv
	u.conv.replies = []reply{{out: answer("A summary.", "end_turn", 10, 3, nil)}}
	u.process(t, m)
	if r := u.result(t, "j1"); r.Status != StatusSucceeded {
		t.Errorf("status %s, want succeeded", r.Status)
	}
}
