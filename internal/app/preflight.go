package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tierq/tierq/internal/awserr"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
)

// How the start-up checks prove a model (Settings.ModelCheck).
const (
	// ModelCheckConverse makes one Converse call per model with maxTokens 1
	// and the tier's guardrail: the only call that proves what every job
	// needs, bedrock:InvokeModel on the model with the guardrail the IAM
	// policy requires, plus model access, the Region and the endpoint. It
	// costs a few input tokens, one output token and the guardrail's text
	// units for "ok" and the one-token answer (one text unit per configured
	// policy each way) per model per start.
	ModelCheckConverse = "converse"
	// ModelCheckCountTokens calls CountTokens, which is free, and where the
	// model does not support it (some Claude models, including those
	// launched cross-Region-only) makes the one-token Converse instead.
	// CountTokens proves the endpoint, the credentials, the Region and the
	// model ID, but it is authorised by its own IAM action
	// (bedrock:CountTokens), so it does not prove bedrock:InvokeModel.
	ModelCheckCountTokens = "count-tokens"
	// ModelCheckCountTokensOnly calls CountTokens and never spends a token:
	// a model that does not support it is skipped with a WARN.
	ModelCheckCountTokensOnly = "count-tokens-only"
	// DefaultModelCheck is converse: the shipped IAM policy grants
	// bedrock:InvokeModel, not bedrock:CountTokens, and the failure the
	// checks are for (a model the role may not call) is only proven by a
	// call the role makes for jobs.
	DefaultModelCheck = ModelCheckConverse
)

// checkTimeout bounds each start-up check call: an endpoint that does not
// answer within it is reported as unreachable.
const checkTimeout = 15 * time.Second

// QueueInfo is the SQS call the start-up checks make to prove a queue
// exists. *sqs.Client satisfies it.
type QueueInfo interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// BedrockChecks are the Bedrock Runtime calls the start-up checks make
// besides Converse. *bedrockruntime.Client satisfies it.
type BedrockChecks interface {
	CountTokens(ctx context.Context, in *bedrockruntime.CountTokensInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.CountTokensOutput, error)
	ApplyGuardrail(ctx context.Context, in *bedrockruntime.ApplyGuardrailInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ApplyGuardrailOutput, error)
}

var (
	_ QueueInfo     = (*sqs.Client)(nil)
	_ BedrockChecks = (*bedrockruntime.Client)(nil)
)

// CheckProblem is one failed start-up check: what was checked (a tier's
// model, a guardrail, a queue, the results bucket) and what to do.
type CheckProblem struct {
	// Resource names what was checked, with the tiers that use it:
	// `model us.anthropic... (tiers standard, premium)`.
	Resource string
	// Problem says what is wrong and the likely fix.
	Problem string
	// Err is the AWS error, when there was one.
	Err error
}

func (p CheckProblem) Error() string { return p.Resource + ": " + p.Problem }
func (p CheckProblem) Unwrap() error { return p.Err }

// PreflightError is every failed start-up check.
type PreflightError struct {
	Problems []CheckProblem
}

func (e *PreflightError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "start-up checks failed (%d):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.Error())
	}
	return b.String()
}

// Unwrap gives each problem, for errors.As and errors.Is.
func (e *PreflightError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// Preflight checks, before the worker receives anything, what every job
// would otherwise find broken one by one: the results bucket (see
// pipeline.Pipeline.Preflight), that the job queue and the dead-letter
// queue exist (GetQueueAttributes), that each tier's guardrail version
// exists (ApplyGuardrail of "ok" as INPUT: one text unit per configured
// policy), and that each tier's model and fallback model answers (see
// ModelCheckConverse and the other modes). Every failure is collected and
// returned together as a *PreflightError, each naming the resource, the
// tiers that use it and the likely fix; the caller refuses to start.
//
// Only misconfiguration fails: a throttled check passes (the model
// answered; another worker may be using the quota), and a 5xx is logged
// as a WARN and passes, since restarting would not fix it. A missing
// sqs:GetQueueAttributes permission is a WARN too: the queue could not be
// checked, which is no reason to refuse jobs. Checks whose client is nil
// in Clients are skipped.
func (w *Worker) Preflight(ctx context.Context) error {
	start := time.Now()
	c := w.checks
	var (
		mu       sync.Mutex
		problems []indexedProblem
		wg       sync.WaitGroup
	)
	report := func(order int, p CheckProblem) {
		mu.Lock()
		problems = append(problems, indexedProblem{order, p})
		mu.Unlock()
	}
	run := func(order int, f func() *CheckProblem) {
		wg.Go(func() {
			if p := f(); p != nil {
				report(order, *p)
			}
		})
	}

	run(0, func() *CheckProblem {
		if err := w.Pipeline.Preflight(ctx); err != nil {
			res := "results bucket " + c.settings.ResultsBucket
			problem := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(err.Error(), res), ":"))
			return &CheckProblem{Resource: res, Problem: problem, Err: err}
		}
		return nil
	})
	if c.queues != nil {
		run(1, func() *CheckProblem { return c.checkQueue(ctx, "job queue", c.settings.QueueURL, "the queue URL") })
		run(2, func() *CheckProblem {
			return c.checkQueue(ctx, "dead-letter queue", c.settings.DeadLetterQueueURL, "the dead-letter queue URL")
		})
	}

	guards, models := c.targets(w.Tiers)
	// Guardrails first: a model's Converse check carries its tier's
	// guardrail (the IAM policy denies InvokeModel without one), so a
	// missing guardrail would otherwise be reported again as each model's.
	failedGuard := make([]bool, len(guards))
	if c.bedrock != nil {
		for i, g := range guards {
			run(10+i, func() *CheckProblem {
				p := c.checkGuardrail(ctx, g)
				if p != nil {
					failedGuard[i] = true
				}
				return p
			})
		}
	}
	wg.Wait()
	if c.converser != nil {
		for i, m := range models {
			if m.guard >= 0 && failedGuard[m.guard] {
				continue // reported as the guardrail's problem
			}
			var g tiering.GuardrailRef
			if m.guard >= 0 {
				g = guards[m.guard].ref
			}
			run(100+i, func() *CheckProblem { return c.checkModel(ctx, m, g) })
		}
	}
	wg.Wait()

	if len(problems) == 0 {
		c.log.Info("start-up checks passed", "models", len(models), "guardrails", len(guards),
			"model_check", c.mode(), "took", time.Since(start).Round(time.Millisecond))
		return nil
	}
	slices.SortFunc(problems, func(a, b indexedProblem) int { return a.order - b.order })
	e := &PreflightError{}
	for _, p := range problems {
		e.Problems = append(e.Problems, p.CheckProblem)
	}
	return e
}

type indexedProblem struct {
	order int
	CheckProblem
}

// checker holds what the start-up checks need; New fills it.
type checker struct {
	settings         Settings
	queues           QueueInfo
	bedrock          BedrockChecks
	converser        pipeline.Converser
	region, endpoint string
	log              *slog.Logger
}

func (c checker) mode() string {
	if c.settings.ModelCheck == "" {
		return DefaultModelCheck
	}
	return c.settings.ModelCheck
}

// guardTarget is one distinct guardrail version and the tiers that use it.
type guardTarget struct {
	ref   tiering.GuardrailRef
	tiers []string
}

// modelTarget is one distinct model ID, the tiers that use it, and the
// index in the guardrail list of the first such tier's guardrail (-1:
// that tier has none).
type modelTarget struct {
	id    string
	tiers []string
	guard int
}

func (c checker) targets(tiers *tiering.Config) ([]guardTarget, []modelTarget) {
	var guards []guardTarget
	var models []modelTarget
	guardIdx := func(g tiering.GuardrailRef) int {
		if !g.Enabled() {
			return -1
		}
		for i := range guards {
			if guards[i].ref == g {
				return i
			}
		}
		guards = append(guards, guardTarget{ref: g})
		return len(guards) - 1
	}
	for _, t := range tiers.Tiers {
		gi := guardIdx(t.Guardrail)
		if gi >= 0 && !slices.Contains(guards[gi].tiers, t.Name) {
			guards[gi].tiers = append(guards[gi].tiers, t.Name)
		}
		for _, id := range t.Models() {
			i := slices.IndexFunc(models, func(m modelTarget) bool { return m.id == id })
			if i < 0 {
				models = append(models, modelTarget{id: id, guard: gi})
				i = len(models) - 1
			}
			if !slices.Contains(models[i].tiers, t.Name) {
				models[i].tiers = append(models[i].tiers, t.Name)
			}
		}
	}
	return guards, models
}

func tierList(tiers []string) string {
	if len(tiers) == 1 {
		return "tier " + tiers[0]
	}
	return "tiers " + strings.Join(tiers, ", ")
}

func (c checker) checkQueue(ctx context.Context, what, url, setting string) *CheckProblem {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	_, err := c.queues.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	res := what + " " + url
	switch {
	case err == nil:
		return nil
	case awserr.MissingQueue(err):
		return &CheckProblem{res, fmt.Sprintf("does not exist in region %s (%s): create it, or fix %s", c.region, awserr.Code(err), setting), err}
	case isCredential(err):
		return &CheckProblem{res, credentialProblem(err), err}
	case awserr.AccessDenied(err):
		c.log.Warn("cannot check that the queue exists: allow sqs:GetQueueAttributes on it to have it checked at start-up",
			"queue_url", url, "error_code", awserr.Code(err))
		return nil
	case unreachable(err):
		return &CheckProblem{res, fmt.Sprintf("cannot reach SQS: check AWS_REGION (%s) and AWS_ENDPOINT_URL_SQS, and that the URL is right: %v", c.region, err), err}
	case awserr.ClientFault(err):
		return &CheckProblem{res, fmt.Sprintf("SQS refused it (%s): fix %s: %v", awserr.Code(err), setting, err), err}
	}
	c.log.Warn("queue check failed with a server error; starting anyway", "queue_url", url, "error", err)
	return nil
}

func (c checker) checkGuardrail(ctx context.Context, g guardTarget) *CheckProblem {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	_, err := c.bedrock.ApplyGuardrail(ctx, &bedrockruntime.ApplyGuardrailInput{
		GuardrailIdentifier: aws.String(g.ref.ID), GuardrailVersion: aws.String(g.ref.Version),
		Source:  brtypes.GuardrailContentSourceInput,
		Content: []brtypes.GuardrailContentBlock{&brtypes.GuardrailContentBlockMemberText{Value: brtypes.GuardrailTextBlock{Text: aws.String("ok")}}},
	}, oneAttempt)
	res := fmt.Sprintf("guardrail %s version %s (%s)", g.ref.ID, g.ref.Version, tierList(g.tiers))
	switch {
	case err == nil, awserr.Throttled(err):
		return nil
	case isCredential(err):
		return &CheckProblem{res, credentialProblem(err), err}
	case awserr.AccessDenied(err):
		return &CheckProblem{res, fmt.Sprintf("access denied (%s): allow bedrock:ApplyGuardrail on arn:aws:bedrock:%s:ACCOUNT:guardrail/%s (tierq iam-policy prints the policy)",
			awserr.Code(err), c.region, g.ref.ID), err}
	case awserr.Code(err) == "ResourceNotFoundException" || awserr.Code(err) == "ValidationException":
		return &CheckProblem{res, fmt.Sprintf("does not exist in region %s (%s: %s): create and publish the version, or fix guardrail.id and guardrail.version in the tiers file",
			c.region, awserr.Code(err), apiMessage(err)), err}
	case unreachable(err):
		return &CheckProblem{res, c.unreachableProblem(err), err}
	}
	c.log.Warn("guardrail check failed with a server error; starting anyway", "guardrail_id", g.ref.ID, "guardrail_version", g.ref.Version, "error", err)
	return nil
}

// checkModel proves one model as Settings.ModelCheck says.
func (c checker) checkModel(ctx context.Context, m modelTarget, g tiering.GuardrailRef) *CheckProblem {
	res := fmt.Sprintf("model %s (%s)", m.id, tierList(m.tiers))
	mode := c.mode()
	if mode != ModelCheckConverse && c.bedrock != nil {
		err := c.countTokens(ctx, m.id)
		switch {
		case err == nil || awserr.Throttled(err):
			return nil
		case countTokensUnsupported(err) && mode == ModelCheckCountTokensOnly:
			c.log.Warn("model not checked at start-up: it does not support CountTokens; --model-check converse checks it with a one-token call",
				"model_id", m.id, "error_code", awserr.Code(err))
			return nil
		case countTokensUnsupported(err):
			// checked below with Converse
		default:
			return c.modelProblem(res, m.id, err, true)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	in := &bedrockruntime.ConverseInput{
		ModelId: aws.String(m.id),
		Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser,
			Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "ok"}}}},
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(1)},
	}
	if g.Enabled() {
		in.GuardrailConfig = &brtypes.GuardrailConfiguration{GuardrailIdentifier: aws.String(g.ID), GuardrailVersion: aws.String(g.Version)}
	}
	_, err := c.converser.Converse(ctx, in, oneAttempt)
	if err == nil || awserr.Throttled(err) || awserr.Code(err) == "ModelNotReadyException" {
		return nil
	}
	return c.modelProblem(res, m.id, err, false)
}

func (c checker) countTokens(ctx context.Context, model string) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	_, err := c.bedrock.CountTokens(ctx, &bedrockruntime.CountTokensInput{
		ModelId: aws.String(model),
		Input: &brtypes.CountTokensInputMemberConverse{Value: brtypes.ConverseTokensRequest{
			Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser,
				Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "ok"}}}},
		}},
	}, oneAttempt)
	return err
}

// countTokensUnsupported reports CountTokens refusing a model it does not
// count for (a ValidationException that says so), or an endpoint without
// the operation at all. Bedrock has no code of its own for it, so this one
// place reads the message; an invalid model ID is a ValidationException
// too, and is not this.
func countTokensUnsupported(err error) bool {
	code := awserr.Code(err)
	if code == "UnknownOperationException" || code == "UnknownOperation" {
		return true
	}
	if code != "ValidationException" {
		return false
	}
	msg := strings.ToLower(apiMessage(err))
	return strings.Contains(msg, "count") && (strings.Contains(msg, "support") || strings.Contains(msg, "not available"))
}

// modelProblem explains a failed model check.
func (c checker) modelProblem(res, model string, err error, countTokens bool) *CheckProblem {
	code := awserr.Code(err)
	switch {
	case isCredential(err):
		return &CheckProblem{res, credentialProblem(err), err}
	case awserr.AccessDenied(err):
		p := fmt.Sprintf("access denied (%s: %s): enable model access for %s in the Bedrock console and allow bedrock:InvokeModel on its ARN (tierq iam-policy prints the policy)",
			code, apiMessage(err), model)
		if countTokens {
			p += "; this check calls CountTokens, which also needs bedrock:CountTokens (or use --model-check converse)"
		}
		return &CheckProblem{res, p, err}
	case code == "ResourceNotFoundException" || code == "ValidationException":
		return &CheckProblem{res, fmt.Sprintf("model ID %s is not available in region %s (%s: %s): check the ID, that the Region offers the model, and whether it must be called through an inference profile (us., eu., global.)",
			model, c.region, code, apiMessage(err)), err}
	case unreachable(err):
		return &CheckProblem{res, c.unreachableProblem(err), err}
	}
	c.log.Warn("model check failed with a server error; starting anyway", "model_id", model, "error", err)
	return nil
}

func (c checker) unreachableProblem(err error) string {
	endpoint := c.endpoint
	if endpoint == "" {
		endpoint = "https://bedrock-runtime." + c.region + ".amazonaws.com"
	}
	return fmt.Sprintf("cannot reach Bedrock at %s: check AWS_REGION / AWS_ENDPOINT_URL_BEDROCK_RUNTIME (%v)", endpoint, err)
}

// unreachable reports an error without an AWS answer: no HTTP response
// (connection refused, DNS, TLS) or no answer within checkTimeout.
func unreachable(err error) bool {
	return awserr.HTTPStatus(err) == 0 && awserr.Code(err) == "" && !errors.Is(err, context.Canceled)
}

func isCredential(err error) bool {
	_, ok := awserr.Credential(err)
	return ok
}

func credentialProblem(err error) string {
	return fmt.Sprintf("AWS rejected the credentials (%s): check the task role or AWS credentials, and the clock", awserr.Code(err))
}

// apiMessage is the message of the AWS error in err, or err's text.
func apiMessage(err error) string {
	var ae interface{ ErrorMessage() string }
	if errors.As(err, &ae) && ae.ErrorMessage() != "" {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// oneAttempt makes the SDK try a check once: a start-up check that retries
// an unreachable endpoint only delays the answer.
func oneAttempt(o *bedrockruntime.Options) { o.RetryMaxAttempts = 1 }
