package limiter

import (
	"testing"
	"time"
)

func TestDropScoreDecays(t *testing.T) {
	t.Parallel()
	var d dropScore
	steps := []struct {
		at   time.Time
		drop bool
		want float64
	}{
		{t0, false, 0},
		{t0, true, 1},
		{sec(10), false, 0.5}, // one half-life
		{sec(10), true, 1.5},
		{sec(30), false, 0.375},
		{sec(-10), false, 1.5}, // a clock that went back does not grow it
	}
	for _, s := range steps {
		if s.drop {
			d.add(s.at)
		}
		if got := d.decayed(s.at); got != s.want {
			t.Errorf("score at t0%+v = %v, want %v", s.at.Sub(t0), got, s.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	const base, ms = 100 * time.Millisecond, time.Millisecond
	tests := []struct {
		name    string
		maxWait time.Duration
		drops   float64
		until   time.Duration
		r       float64
		want    time.Duration
	}{
		{"no drops counts as one", 2 * time.Second, 0, 0, 0.5, 75 * ms},
		{"less than one drop counts as one", 2 * time.Second, 0.3, 0, 0.5, 75 * ms},
		{"grows with the drops", 2 * time.Second, 8, 0, 0.5, 600 * ms},
		{"half fixed", 2 * time.Second, 8, 0, 0, 400 * ms},
		{"half jitter", 2 * time.Second, 8, 0, 0.75, 700 * ms},
		{"the base is capped", 2 * time.Second, 100, 0, 0.5, 1500 * ms},
		{"covers the window", 2 * time.Minute, 1, 45 * time.Second, 0.5, 45*time.Second + 75*ms},
		{"capped, with jitter below the cap", 2 * time.Second, 1, 10 * time.Second, 0.5, 2*time.Second - 25*ms},
	}
	for _, tt := range tests {
		if got := backoff(base, tt.maxWait, tt.drops, tt.until, tt.r); got != tt.want {
			t.Errorf("%s: backoff = %v, want %v", tt.name, got, tt.want)
		}
	}
}
