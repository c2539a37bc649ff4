package worker

import (
	"context"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// batchResult is the per-entry outcome of one batch call, by entry Id.
type batchResult struct {
	ok     []string
	failed map[string]string
}

type batchFailure struct {
	it     *inflight
	reason string
}

// newBatchResult reads a batch answer: the Ids of its successful entries
// (whose type differs per API, hence id) and the reasons of its failed ones.
func newBatchResult[S any](successful []S, id func(S) *string, failed []types.BatchResultErrorEntry) *batchResult {
	r := &batchResult{failed: map[string]string{}}
	for _, s := range successful {
		r.ok = append(r.ok, aws.ToString(id(s)))
	}
	for _, f := range failed {
		r.failed[aws.ToString(f.Id)] = aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
	}
	return r
}

// inBatches runs call over items in batches of ten (entry Id = index in the
// batch) and retries the failed entries once.
func (w *Worker) inBatches(items []*inflight, call func(context.Context, []*inflight) (*batchResult, error)) (ok []*inflight, failed []batchFailure) {
	attempt := func(items []*inflight) {
		failed = nil
		for batch := range slices.Chunk(items, maxBatch) {
			ctx, cancel := w.callCtx()
			r, err := call(ctx, batch)
			cancel()
			if err != nil {
				for _, it := range batch {
					failed = append(failed, batchFailure{it, err.Error()})
				}
				continue
			}
			succeeded := map[string]bool{}
			for _, id := range r.ok {
				succeeded[id] = true
			}
			for i, it := range batch {
				id := strconv.Itoa(i)
				switch {
				case succeeded[id]:
					ok = append(ok, it)
				case r.failed[id] != "":
					failed = append(failed, batchFailure{it, r.failed[id]})
				default:
					failed = append(failed, batchFailure{it, "entry missing from the response"})
				}
			}
		}
	}
	attempt(items)
	if len(failed) > 0 {
		retry := make([]*inflight, len(failed))
		for i, f := range failed {
			retry[i] = f.it
		}
		attempt(retry)
	}
	return ok, failed
}
