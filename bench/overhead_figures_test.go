package bench

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"
)

// TestMeasureStopsAtTheStall: the window ends at the last job that finished
// before the queue went quiet, not when the stall was noticed.
func TestMeasureStopsAtTheStall(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	go func() {
		for range 5 {
			time.Sleep(2 * time.Millisecond)
			n.Add(1)
		}
	}()
	w := measure(context.Background(), n.Load, 10, 50*time.Millisecond, time.Millisecond)
	if w.jobs != 5 {
		t.Errorf("window holds %d jobs, want the 5 that finished", w.jobs)
	}
	if w.wall >= 50*time.Millisecond {
		t.Errorf("window is %s long, want it to end at the last job, before the stall", w.wall)
	}
}

// TestOverheadSummary: trials are summed per variant and concurrency, and
// tierq is compared with the loop at the same concurrency.
func TestOverheadSummary(t *testing.T) {
	t.Parallel()
	rep := overheadReport{TargetDefault: overheadTargetDefault, TargetBest: overheadTargetBest, Trials: []overheadTrial{
		{Variant: variantLoop, Concurrency: 8, Jobs: 1000, Seconds: 1, CPUSeconds: 0.8},
		{Variant: variantLoop, Concurrency: 8, Jobs: 1000, Seconds: 1, CPUSeconds: 0.8},
		{Variant: variantTierq, Concurrency: 8, Jobs: 1000, Seconds: 1.25, CPUSeconds: 1.2},
		{Variant: variantTierq, Concurrency: 8, Jobs: 1000, Seconds: 1.25, CPUSeconds: 1.2, Stuck: 3},
		{Variant: variantLoop, Concurrency: 64, Jobs: 1000, Seconds: 1, CPUSeconds: 1},
		{Variant: variantTierq, Concurrency: 64, Jobs: 1000, Seconds: 1.05, CPUSeconds: 1},
	}}
	rep.summarise()
	if len(rep.Rows) != 4 || rep.Rows[0].Variant != variantLoop || rep.Rows[1].Variant != variantTierq || rep.Rows[2].Concurrency != 64 {
		t.Fatalf("rows = %+v, want loop and tierq at 8, then at 64", rep.Rows)
	}
	tq := rep.Rows[1]
	if tq.JobsPerSec != 800 || tq.CPUMsPer1000 != 1200 || tq.Stuck != 3 || math.Abs(tq.OfLoop-0.8) > 1e-9 {
		t.Errorf("tierq at 8 = %+v, want 800 jobs/s, 1200 ms per 1,000 jobs, 3 stuck, 80%% of the loop", tq)
	}
	if math.Abs(rep.AtDefault-0.8) > 1e-9 || rep.BestConcurrency != 64 || math.Abs(rep.Best-1/1.05) > 1e-9 || !rep.Met {
		t.Errorf("at default %.3f, best %.3f at %d, met %v; want 0.8, 0.952 at 64, met", rep.AtDefault, rep.Best, rep.BestConcurrency, rep.Met)
	}
}
