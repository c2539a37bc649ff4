package limiter

import (
	"slices"
	"testing"
)

// budgetWorld admits calls while fewer than limit are admitted and their
// tokens, with held, fit budget: the shape of what Adaptive asks of a fifo.
type budgetWorld struct {
	limit, budget, held int
	admitted            []int // tokens, in the order admitted
}

func (b *budgetWorld) open() bool          { return len(b.admitted) < b.limit }
func (b *budgetWorld) fits(w *waiter) bool { return b.held+w.tokens <= b.budget }
func (b *budgetWorld) admit(w *waiter) {
	b.held += w.tokens
	b.admitted = append(b.admitted, w.tokens)
}

func testQueue(maxBypass int, tokens ...int) *fifo {
	q := &fifo{maxBypass: maxBypass}
	for _, n := range tokens {
		q.push(&waiter{tokens: n})
	}
	return q
}

func waitingTokens(q *fifo) []int {
	var out []int
	for _, w := range q.waiters {
		out = append(out, w.tokens)
	}
	return out
}

func TestFIFOServe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		maxBypass int
		limit     int
		held      int // of a 10,000-token budget
		waiting   []int
		admitted  []int
		left      []int
		bypassed  int // of the first call left
	}{
		{"in order while they fit", 8, 10, 0, []int{1_000, 2_000, 3_000}, []int{1_000, 2_000, 3_000}, nil, 0},
		{"the limit stops serving", 8, 2, 0, []int{1_000, 2_000, 3_000}, []int{1_000, 2_000}, []int{3_000}, 0},
		{"bounded bypass", 2, 10, 6_000, []int{8_000, 1_000, 1_000, 1_000}, []int{1_000, 1_000}, []int{8_000, 1_000}, 2},
		{"strict FIFO", -1, 10, 6_000, []int{8_000, 1_000, 1_000}, nil, []int{8_000, 1_000, 1_000}, 0},
		{"no bypass", 0, 10, 6_000, []int{8_000, 1_000}, nil, []int{8_000, 1_000}, 0},
		{"skipped calls keep their place", 8, 10, 6_000, []int{8_000, 1_000, 5_000, 1_000}, []int{1_000, 1_000}, []int{8_000, 5_000}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := testQueue(tt.maxBypass, tt.waiting...)
			b := &budgetWorld{limit: tt.limit, budget: 10_000, held: tt.held}
			q.serve(b.open, b.fits, b.admit)
			if !slices.Equal(b.admitted, tt.admitted) || !slices.Equal(waitingTokens(q), tt.left) {
				t.Errorf("admitted %v, left %v; want %v and %v", b.admitted, waitingTokens(q), tt.admitted, tt.left)
			}
			if len(q.waiters) > 0 && q.waiters[0].bypassed != tt.bypassed {
				t.Errorf("the first call left was passed %d times, want %d", q.waiters[0].bypassed, tt.bypassed)
			}
		})
	}
}

func TestFIFOBypassIsCountedAcrossServes(t *testing.T) {
	t.Parallel()
	q := testQueue(2, 8_000)
	b := &budgetWorld{limit: 10, budget: 10_000, held: 6_000}
	for i, want := range []int{1, 1, 0} { // small calls arriving one by one
		q.push(&waiter{tokens: 1_000})
		before := len(b.admitted)
		q.serve(b.open, b.fits, b.admit)
		if got := len(b.admitted) - before; got != want {
			t.Errorf("serve %d admitted %d small calls past the big one, want %d", i+1, got, want)
		}
	}
	b.held = 0 // the calls in flight finished
	q.serve(b.open, b.fits, b.admit)
	if got := b.admitted[len(b.admitted)-2:]; !slices.Equal(got, []int{8_000, 1_000}) {
		t.Errorf("once it fits, admitted %v last, want the big call and then the small one behind it", got)
	}
}

func TestFIFOQueue(t *testing.T) {
	t.Parallel()
	q := testQueue(8)
	if _, ok := q.head(); ok || q.waiting() != 0 || q.tokens() != 0 {
		t.Fatalf("empty queue: head ok %v, %d waiting, %d tokens; want none", ok, q.waiting(), q.tokens())
	}
	a, b, c := &waiter{tokens: 1}, &waiter{tokens: 20}, &waiter{tokens: 300}
	q.push(a)
	q.push(b)
	q.push(c)
	q.remove(b)
	if head, ok := q.head(); !ok || head != 1 || q.waiting() != 2 || q.tokens() != 301 {
		t.Errorf("after removing the middle call: head %d (%v), %d waiting, %d tokens; want 1, 2, 301", head, ok, q.waiting(), q.tokens())
	}
	q.remove(b) // not there: nothing happens
	if q.waiting() != 2 {
		t.Errorf("removing a call twice left %d waiting, want 2", q.waiting())
	}
}
