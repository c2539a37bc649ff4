package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/tiering"
)

// Converser is the part of Bedrock Runtime the pipeline uses.
// *bedrockruntime.Client satisfies it.
type Converser interface {
	Converse(ctx context.Context, in *bedrockruntime.ConverseInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error)
}

var _ Converser = (*bedrockruntime.Client)(nil)

// model is what the pipeline needs of Bedrock: one call, answered in the
// pipeline's terms or failed with a classified error (modelErr). The
// pipeline's retries, snoozes and spillover (callpolicy.go) and its limiter
// work above it; bedrockModel adapts Bedrock's Converse to it, and with
// request.go and guardrail.go is the only code that reads Bedrock's types.
type model interface {
	Call(ctx context.Context, req request, guardrail tiering.GuardrailRef) (modelAnswer, error)
}

// modelAnswer is one answered call.
type modelAnswer struct {
	text       string
	stopReason string
	// usage is what Bedrock billed, guardrail text units included.
	usage tiering.Usage
	guard *jobv1.GuardrailOutcome
	// servedTier is the service tier that served the call.
	servedTier string
	// structured: the answer was constrained to the job's schema.
	structured bool
}

// modelCallError is a failed call with what it means for the job.
type modelCallError struct {
	modelErr
	err error
}

func (e *modelCallError) Error() string { return e.err.Error() }
func (e *modelCallError) Unwrap() error { return e.err }

// modelFailure reads what a failed call means; an error that is not a
// modelCallError (a model port other than bedrockModel) counts as a
// transient network error.
func modelFailure(err error) modelErr {
	var me *modelCallError
	if errors.As(err, &me) {
		return me.modelErr
	}
	return modelErr{kind: kindTransient, code: "network", msg: err.Error()}
}

// bedrockModel adapts Bedrock Runtime's Converse to model.
type bedrockModel struct {
	conv Converser
	// timeout bounds one attempt (Config.CallTimeout).
	timeout time.Duration
}

// Call is one Converse call under its own timeout. The SDK client is told
// to try once: the pipeline retries itself, so the limiter sees every
// throttle and attempts are counted. A per-call RetryMaxAttempts of 1 gives
// exactly one attempt (aws-sdk-go-v2's finalizeOperationRetryMaxAttempts),
// and typed errors such as *types.ThrottlingException still match. ctx is
// the job's: an attempt that ran out of its own time is transient, a job
// whose context ended is canceled (classifyModelError).
func (m bedrockModel) Call(ctx context.Context, req request, guardrail tiering.GuardrailRef) (modelAnswer, error) {
	actx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	out, err := m.conv.Converse(actx, req.in, disableSDKRetries)
	if err != nil {
		return modelAnswer{}, &modelCallError{modelErr: classifyModelError(ctx, err, modelOf(req), guardrailName(guardrail)), err: err}
	}
	g := guardrailOutcome(guardrail, out.StopReason, out.Trace)
	return modelAnswer{text: outputText(out), stopReason: string(out.StopReason), guard: g, usage: callUsage(out, g), servedTier: servedTier(out),
		structured: req.in.OutputConfig != nil}, nil
}

// disableSDKRetries makes the SDK try a call once (see Call).
func disableSDKRetries(o *bedrockruntime.Options) { o.RetryMaxAttempts = 1 }
