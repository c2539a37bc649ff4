package worker

import "testing"

// TestMessageLifecycle walks every state through every event.
func TestMessageLifecycle(t *testing.T) {
	t.Parallel()
	type want struct {
		to msgState
		ok bool
	}
	states := []msgState{msgRunning, msgLost, msgSettled, msgDeferred, msgAbandoned}
	events := []msgEvent{evReturned, evReturnedLate, evLost, evAbandon}
	table := map[msgState]map[msgEvent]want{
		msgRunning:   {evReturned: {msgSettled, true}, evReturnedLate: {msgDeferred, true}, evLost: {msgLost, true}, evAbandon: {msgAbandoned, true}},
		msgLost:      {evReturned: {msgSettled, true}, evReturnedLate: {msgSettled, true}, evAbandon: {msgAbandoned, true}},
		msgDeferred:  {evAbandon: {msgAbandoned, true}},
		msgSettled:   {},
		msgAbandoned: {},
	}
	for _, s := range states {
		for _, e := range events {
			w, listed := table[s][e]
			if !listed {
				w = want{s, false} // does not apply: nothing changes
			}
			if got, ok := s.next(e); got != w.to || ok != w.ok {
				t.Errorf("%s --%s--> %s (applies %v), want %s (%v)", s, e, got, ok, w.to, w.ok)
			}
		}
	}
	for _, s := range states {
		if want := s == msgRunning || s == msgLost; s.running() != want {
			t.Errorf("%s.running() = %v, want %v", s, s.running(), want)
		}
	}
}
