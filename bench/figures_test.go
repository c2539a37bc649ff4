package bench

import (
	"math"
	"slices"
	"testing"
)

// quotaBound is the most a model quota lets any client complete per quota
// minute with a given job mix.
//
// Bedrock (and the simulator) reserve input + maxTokens of the TPM quota when
// a call is admitted and settle it to input + output × burndown when it ends;
// a minute's admitted calls, reservations of running ones and settlements of
// finished ones, must stay within TPM, and their number within RPM. Once
// settled, a job costs its settled tokens, so in steady state at most
//
//	jobs/minute ≤ min(RPM, TPM / mean(input + output × burndown))
//
// complete per quota minute, and the quota tokens they settle are at most
// TPM. Reservations only lower this: a call running across a minute boundary
// is held at its reservation in the new minute until it settles, and the last
// admission of a minute needs its whole reservation free (at most
// max(reserve − settled) lost per minute). With this benchmark's mix
// (maxTokens 1,000, answers of about 200 tokens at burndown 5) reservation
// and settlement are nearly equal, so the bound is tight.
type quotaBound struct {
	RPM int `json:"rpm"`
	TPM int `json:"tpm"`
	// MeanSettled and MeanReserve are the job mix's mean quota tokens per
	// job at settlement and at admission.
	MeanSettled float64 `json:"mean_settled_tokens"`
	MeanReserve float64 `json:"mean_reserved_tokens"`
	// JobsPerMinute is min(RPM, TPM / MeanSettled); Binding says which.
	JobsPerMinute float64 `json:"jobs_per_minute"`
	Binding       string  `json:"binding"`
}

func boundFor(rpm, tpm int, meanSettled, meanReserve float64) quotaBound {
	b := quotaBound{RPM: rpm, TPM: tpm, MeanSettled: meanSettled, MeanReserve: meanReserve}
	byTokens := math.Inf(1)
	if tpm > 0 && meanSettled > 0 {
		byTokens = float64(tpm) / meanSettled
	}
	byRequests := math.Inf(1)
	if rpm > 0 {
		byRequests = float64(rpm)
	}
	b.JobsPerMinute, b.Binding = byTokens, "tpm"
	if byRequests < byTokens {
		b.JobsPerMinute, b.Binding = byRequests, "rpm"
	}
	return b
}

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of sorted
// values, or 0 for none. Nearest rank reports a value that was observed,
// which a p99 of a few hundred jobs should be.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// reconverge finds how many minutes after minute from the per-minute series
// g (each a fraction of that minute's bound) settles for good within tol of
// the bound: the first minute m ≥ from from which every later minute is
// within tol, provided at least minStable such minutes were observed (a run
// ending on one good minute has not shown it stays there). ok is false when
// it never does.
func reconverge(g []float64, from int, tol float64, minStable int) (minutes int, ok bool) {
	m := len(g)
	for k := len(g) - 1; k >= from; k-- {
		if math.Abs(g[k]-1) > tol {
			break
		}
		m = k
	}
	if m >= len(g) || len(g)-m < max(minStable, 1) {
		return 0, false
	}
	return m - from, true
}

// ratio is a / b, or 0 when b is 0 (no attempts means no throttles).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// sortedCopy returns v sorted, leaving v alone.
func sortedCopy(v []float64) []float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s
}

func TestBoundFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		rpm, tpm    int
		settled     float64
		wantJobs    float64
		wantBinding string
	}{
		{"tokens bind", 300, 150_000, 2_000, 75, "tpm"},
		{"requests bind", 50, 150_000, 2_000, 50, "rpm"},
		{"halved quota", 150, 75_000, 2_000, 37.5, "tpm"},
		{"no token quota", 300, 0, 2_000, 300, "rpm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := boundFor(tc.rpm, tc.tpm, tc.settled, tc.settled)
			if got.JobsPerMinute != tc.wantJobs || got.Binding != tc.wantBinding {
				t.Errorf("boundFor(%d, %d, %g) = %g jobs/min bound by %s, want %g by %s",
					tc.rpm, tc.tpm, tc.settled, got.JobsPerMinute, got.Binding, tc.wantJobs, tc.wantBinding)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		name   string
		values []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one value", []float64{7}, 99, 7},
		{"median of four is the second", []float64{1, 2, 3, 4}, 50, 2},
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 is the maximum", hundred, 100, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tc.values, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %g) = %g, want %g", tc.values, tc.p, got, tc.want)
			}
		})
	}
}

func TestReconverge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		g       []float64
		from    int
		want    int
		wantOK  bool
		comment string
	}{
		{"at once", []float64{1, 1, 0.99, 1.01, 1}, 1, 0, true, "every minute after the change is within 5%"},
		{"after a dip", []float64{1, 0.5, 0.8, 0.97, 1, 0.99}, 1, 2, true, "minutes 3.. are within 5%"},
		{"relapse counts", []float64{1, 0.99, 0.8, 1, 1}, 1, 2, true, "the dip at minute 2 resets the clock"},
		{"never", []float64{1, 0.8, 0.85, 0.9, 0.9}, 1, 0, false, "never within 5%"},
		{"one good minute at the end is not enough", []float64{1, 0.5, 0.5, 1}, 1, 0, false, "needs 2 stable minutes"},
		{"over the bound counts too", []float64{1, 1.2, 1, 1}, 1, 1, true, "a minute 20% over is not converged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := reconverge(tc.g, tc.from, 0.05, 2)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("reconverge(%v, %d) = %d, %v; want %d, %v (%s)", tc.g, tc.from, got, ok, tc.want, tc.wantOK, tc.comment)
			}
		})
	}
}
