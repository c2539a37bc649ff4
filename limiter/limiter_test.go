package limiter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tierq/tierq/limiter"
)

func TestFixedBoundsEachModel(t *testing.T) {
	t.Parallel()
	l := limiter.NewFixed(1, map[string]int{"a": 2, "b": 1})
	ctx := context.Background()
	if got := l.Available(); got != 3 {
		t.Fatalf("available = %d, want 3", got)
	}
	a1, _ := l.Acquire(ctx, "a", 0)
	a2, _ := l.Acquire(ctx, "a", 0)
	if _, err := l.Acquire(ctx, "b", 0); err != nil {
		t.Fatal(err)
	}
	if got := l.Available(); got != 0 {
		t.Errorf("available = %d with every permit held, want 0", got)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(short, "a", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("third permit for a: %v, want deadline exceeded", err)
	}
	a1.Release(limiter.Success)
	a1.Release(limiter.Success) // a second release must not free another permit
	if got := l.Available(); got != 1 {
		t.Errorf("available = %d after one release (twice), want 1", got)
	}
	a2.Release(limiter.Dropped)
	if _, err := l.Acquire(ctx, "unlisted", 0); err != nil {
		t.Errorf("model without a listed limit: %v, want the per-model default", err)
	}
}
