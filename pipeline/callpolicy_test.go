package pipeline

import (
	"testing"
	"time"
)

// TestCallPolicy runs scripted attempt outcomes through the policy: each
// row is one call, each event one failed attempt at a time, and the steps
// are what the policy decided after each.
func TestCallPolicy(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	type event struct {
		at        time.Duration // since t0
		throttled bool
	}
	tests := []struct {
		name   string
		pol    callPolicy
		snooze time.Duration // every snooze wait
		errs   []time.Duration
		events []event
		steps  []callStep
		waits  []time.Duration
	}{
		{"errors spend attempts, then release",
			callPolicy{maxAttempts: 3, maxSnooze: time.Minute}, 0, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
			[]event{{0, false}, {time.Second, false}, {3 * time.Second, false}},
			[]callStep{stepRetry, stepRetry, stepReleaseExhausted}, []time.Duration{time.Second, 2 * time.Second, 0}},
		{"an ended backoff schedule releases early",
			callPolicy{maxAttempts: 10, maxSnooze: time.Minute}, 0, []time.Duration{time.Second},
			[]event{{0, false}, {time.Second, false}},
			[]callStep{stepRetry, stepReleaseExhausted}, []time.Duration{time.Second, 0}},
		{"throttles spend no attempt",
			callPolicy{maxAttempts: 1, maxSnooze: time.Minute}, 5 * time.Second, nil,
			[]event{{0, true}, {5 * time.Second, true}, {10 * time.Second, true}},
			[]callStep{stepRetry, stepRetry, stepRetry}, []time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"a snooze that would end past MaxSnooze releases",
			callPolicy{maxAttempts: 4, maxSnooze: 12 * time.Second}, 5 * time.Second, nil,
			[]event{{0, true}, {5 * time.Second, true}, {10 * time.Second, true}},
			[]callStep{stepRetry, stepRetry, stepReleaseSnoozed}, []time.Duration{5 * time.Second, 5 * time.Second, 0}},
		{"spill over once the spillover delay has passed, at once",
			callPolicy{maxAttempts: 4, maxSnooze: time.Minute, fallback: true, spillAfter: 8 * time.Second}, 5 * time.Second, nil,
			[]event{{0, true}, {5 * time.Second, true}, {10 * time.Second, true}, {15 * time.Second, true}},
			[]callStep{stepRetry, stepRetry, stepSpill, stepRetry}, []time.Duration{5 * time.Second, 5 * time.Second, 0, 5 * time.Second}},
		{"no fallback, no spill",
			callPolicy{maxAttempts: 4, maxSnooze: time.Minute, spillAfter: time.Second}, 5 * time.Second, nil,
			[]event{{0, true}, {5 * time.Second, true}},
			[]callStep{stepRetry, stepRetry}, []time.Duration{5 * time.Second, 5 * time.Second}},
		{"the snooze budget counts both models",
			callPolicy{maxAttempts: 4, maxSnooze: 20 * time.Second, fallback: true, spillAfter: 10 * time.Second}, 6 * time.Second, nil,
			[]event{{0, true}, {6 * time.Second, true}, {12 * time.Second, true}, {12 * time.Second, true}, {18 * time.Second, true}},
			[]callStep{stepRetry, stepRetry, stepSpill, stepRetry, stepReleaseSnoozed}, []time.Duration{6 * time.Second, 6 * time.Second, 0, 6 * time.Second, 0}},
		{"errors and throttles mixed: only errors spend attempts",
			callPolicy{maxAttempts: 2, maxSnooze: time.Minute}, time.Second, []time.Duration{time.Second, time.Second},
			[]event{{0, true}, {time.Second, false}, {2 * time.Second, true}, {3 * time.Second, false}},
			[]callStep{stepRetry, stepRetry, stepRetry, stepReleaseExhausted}, []time.Duration{time.Second, time.Second, time.Second, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var st callState
			errs := tt.errs
			snoozes, errAsks := 0, 0
			for i, ev := range tt.events {
				var step callStep
				var wait time.Duration
				st, step, wait = tt.pol.next(st, ev.throttled, t0.Add(ev.at),
					func() time.Duration { snoozes++; return tt.snooze },
					func() (time.Duration, bool) {
						errAsks++
						if len(errs) == 0 {
							return 0, true
						}
						d := errs[0]
						errs = errs[1:]
						return d, false
					})
				if step != tt.steps[i] || wait != tt.waits[i] {
					t.Fatalf("event %d (%+v): step %s wait %s; want %s wait %s", i, ev, step, wait, tt.steps[i], tt.waits[i])
				}
			}
			// A spill asks for no snooze: the fallback is tried at once.
			throttles := 0
			for _, ev := range tt.events {
				if ev.throttled {
					throttles++
				}
			}
			spills := 0
			for _, s := range tt.steps {
				if s == stepSpill {
					spills++
				}
			}
			if snoozes != throttles-spills || errAsks != len(tt.events)-throttles {
				t.Errorf("asked %d snooze waits and %d backoffs; want %d and %d", snoozes, errAsks, throttles-spills, len(tt.events)-throttles)
			}
		})
	}
}
