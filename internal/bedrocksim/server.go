package bedrocksim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// MaxRequestBytes bounds a request body; larger bodies get a ValidationException.
const MaxRequestBytes = 32 << 20

// Server simulates Bedrock Runtime. It is an http.Handler; it is safe for
// concurrent use. Create it with New.
type Server struct {
	minute       time.Duration
	latencyScale float64
	now          func() time.Time
	sleep        func(context.Context, time.Duration)

	models map[string]*modelState // fixed set; each guards itself
	guards map[string]*guard

	guardMu    sync.Mutex
	guardStats map[string]*GuardrailStats

	rngMu sync.Mutex
	rng   *rand.Rand

	cacheMu sync.Mutex
	cache   map[uint64]time.Time // prompt-prefix hash -> expiry

	reqID atomic.Uint64
	mux   *http.ServeMux
}

// GuardrailStats are one guardrail's counters.
type GuardrailStats struct {
	Evaluations   int64 `json:"evaluations"`
	Interventions int64 `json:"interventions"`
	Blocked       int64 `json:"blocked"`
	Masked        int64 `json:"masked"`
	TextUnits     int64 `json:"text_units"`
}

// Stats is the body of GET /_sim/stats.
type Stats struct {
	Minute     string                    `json:"minute"`
	Models     map[string]ModelStats     `json:"models"`
	Guardrails map[string]GuardrailStats `json:"guardrails"`
}

// New validates cfg and returns a simulator serving it.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bedrock simulator config: %w", err)
	}
	s := &Server{
		minute:       cfg.Minute,
		latencyScale: cfg.LatencyScale,
		now:          cfg.Now,
		sleep:        cfg.Sleep,
		models:       map[string]*modelState{},
		guards:       map[string]*guard{},
		guardStats:   map[string]*GuardrailStats{},
		rng:          rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		cache:        map[uint64]time.Time{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sleep == nil {
		s.sleep = sleepCtx
	}
	for id, m := range cfg.Models {
		s.models[id] = newModelState(m)
	}
	for id, g := range cfg.Guardrails {
		s.guards[id] = compileGuard(id, g)
		s.guardStats[id] = &GuardrailStats{}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /model/{modelId}/converse", s.converse)
	mux.HandleFunc("POST /model/{modelId}/count-tokens", s.countTokens)
	mux.HandleFunc("POST /guardrail/{id}/version/{version}/apply", s.applyGuardrail)
	mux.HandleFunc("GET /_sim/stats", s.handleStats)
	mux.HandleFunc("POST /_sim/quota", s.handleQuota)
	mux.HandleFunc("POST /_sim/faults", s.handleFaults)
	mux.HandleFunc("POST /_sim/reset", s.handleReset)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, apiError{http.StatusNotFound, "UnknownOperationException",
			fmt.Sprintf("the simulator does not serve %s %s", r.Method, r.URL.Path)})
	})
	s.mux = mux
	return s, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// apiError is an error as Bedrock encodes it: a status, an error type the SDK
// reads from the X-Amzn-ErrorType header, and a message in the JSON body.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e apiError) Error() string { return e.code + ": " + e.msg }

func validation(format string, args ...any) apiError {
	return apiError{http.StatusBadRequest, "ValidationException", fmt.Sprintf(format, args...)}
}

func (s *Server) requestID(w http.ResponseWriter) {
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("sim-%016x", s.reqID.Add(1)))
}

func (s *Server) fail(w http.ResponseWriter, e apiError) {
	s.requestID(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", e.code)
	w.WriteHeader(e.status)
	body, _ := json.Marshal(map[string]string{"message": e.msg})
	w.Write(body)
}

func (s *Server) reply(w http.ResponseWriter, v any) {
	s.requestID(w)
	w.Header().Set("Content-Type", "application/json")
	body, err := json.Marshal(v)
	if err != nil {
		s.fail(w, apiError{http.StatusInternalServerError, "InternalServerException", "encode response: " + err.Error()})
		return
	}
	w.Write(body)
}

// decode reads a JSON body; anything malformed is the client's fault.
func decode(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		return validation("read request body: %v", err)
	}
	if len(data) > MaxRequestBytes {
		return validation("request body is larger than %d bytes", MaxRequestBytes)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return validation("malformed request body: %v", err)
	}
	return nil
}

// model resolves the path's model ID. An inference-profile or foundation-model
// ARN resolves to the ID after its last slash.
func (s *Server) model(r *http.Request) (*modelState, error) {
	id := r.PathValue("modelId")
	if strings.HasPrefix(id, "arn:") {
		id = id[strings.LastIndex(id, "/")+1:]
	}
	m, ok := s.models[id]
	if !ok {
		return nil, validation("The provided model identifier is invalid.")
	}
	m.mu.Lock()
	disabled := m.cfg.Disabled
	m.mu.Unlock()
	if disabled {
		return nil, apiError{http.StatusForbidden, "AccessDeniedException",
			"You don't have access to the model with the specified model ID."}
	}
	return m, nil
}

func (s *Server) guardrail(id, version string) (*guard, error) {
	g, ok := s.guards[id]
	if !ok || !g.versions[version] {
		return nil, apiError{http.StatusNotFound, "ResourceNotFoundException",
			fmt.Sprintf("The guardrail identifier or version provided in the request does not exist: %s version %s.", id, version)}
	}
	return g, nil
}

func (s *Server) failErr(w http.ResponseWriter, err error) {
	var e apiError
	if !errors.As(err, &e) {
		e = apiError{http.StatusInternalServerError, "InternalServerException", err.Error()}
	}
	s.fail(w, e)
}

// validateConverse checks what Bedrock rejects before any model work.
func validateConverse(req *converseRequest, m Model) (maxTokens int, err error) {
	if len(req.Messages) == 0 {
		return 0, validation("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
	}
	for i, msg := range req.Messages {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if msg.Role != want {
			if i == 0 {
				return 0, validation("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
			}
			return 0, validation("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.")
		}
		if len(msg.Content) == 0 {
			return 0, validation("The content field in the Message object at messages.%d is empty. Add a ContentBlock object to the content field and try again.", i)
		}
	}
	if req.Messages[len(req.Messages)-1].Role != "user" {
		return 0, validation("A conversation must end with a user message. Try again with a conversation that ends with a user message.")
	}
	maxTokens = m.MaxOutputTokens
	if ic := req.InferenceConfig; ic != nil {
		if ic.MaxTokens != nil {
			if *ic.MaxTokens < 1 {
				return 0, validation("The value at inferenceConfig.maxTokens must be at least 1, got %d.", *ic.MaxTokens)
			}
			if *ic.MaxTokens > m.MaxOutputTokens {
				return 0, validation("The maximum tokens you requested exceeds the model limit of %d. Try again with a maximum tokens value that is lower than %d.",
					m.MaxOutputTokens, m.MaxOutputTokens+1)
			}
			maxTokens = *ic.MaxTokens
		}
		if t := ic.Temperature; t != nil && (*t < 0 || *t > 1) {
			return 0, validation("The value at inferenceConfig.temperature must be within [0, 1], got %g.", *t)
		}
		if p := ic.TopP; p != nil && (*p < 0 || *p > 1) {
			return 0, validation("The value at inferenceConfig.topP must be within [0, 1], got %g.", *p)
		}
	}
	if gc := req.GuardrailConfig; gc != nil {
		if gc.GuardrailIdentifier == "" || gc.GuardrailVersion == "" {
			return 0, validation("guardrailConfig needs both guardrailIdentifier and guardrailVersion.")
		}
		switch gc.Trace {
		case "", "enabled", "disabled", "enabled_full":
		default:
			return 0, validation("The value at guardrailConfig.trace must be enabled, disabled or enabled_full, got %q.", gc.Trace)
		}
	}
	return maxTokens, nil
}

// blockText returns the text a block carries, guarded or not.
func blockText(b contentBlock) (string, bool) {
	switch {
	case b.Text != nil:
		return *b.Text, false
	case b.GuardContent != nil && b.GuardContent.Text != nil:
		return b.GuardContent.Text.Text, true
	}
	return "", false
}

// tokenCounts walks system then messages in order and returns the total input
// tokens and the tokens before the last cachePoint, with that prefix's hash.
func tokenCounts(system []contentBlock, msgs []message) (total, prefix int, prefixHash uint64) {
	h := fnv.New64a()
	runes := 0
	visit := func(b contentBlock) {
		if t, _ := blockText(b); t != "" {
			runes += utf8.RuneCountInString(t)
			h.Write([]byte(t))
			h.Write([]byte{0})
		}
		if b.CachePoint != nil {
			prefix = (runes + 3) / 4
			prefixHash = h.Sum64()
		}
	}
	for _, b := range system {
		visit(b)
	}
	for _, m := range msgs {
		h.Write([]byte(m.Role))
		for _, b := range m.Content {
			visit(b)
		}
	}
	return (runes + 3) / 4, prefix, prefixHash
}

// cacheLookup reports whether a prompt prefix is cached, caching it if not.
func (s *Server) cacheLookup(h uint64, ttl time.Duration) (hit bool) {
	now := s.now()
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if exp, ok := s.cache[h]; ok && now.Before(exp) {
		return true
	}
	if len(s.cache) >= 100_000 {
		for k, exp := range s.cache {
			if !now.Before(exp) {
				delete(s.cache, k)
			}
		}
		if len(s.cache) >= 100_000 {
			clear(s.cache)
		}
	}
	s.cache[h] = now.Add(ttl)
	return false
}

func (s *Server) converse(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	ms, err := s.model(r)
	if err != nil {
		s.failErr(w, err)
		return
	}
	var req converseRequest
	err = decode(r, &req)
	ms.mu.Lock()
	m := ms.cfg
	ms.mu.Unlock()
	var maxTokens int
	if err == nil {
		maxTokens, err = validateConverse(&req, m)
	}
	var g *guard
	if err == nil && req.GuardrailConfig != nil {
		g, err = s.guardrail(req.GuardrailConfig.GuardrailIdentifier, req.GuardrailConfig.GuardrailVersion)
	}
	total, prefix, prefixHash := tokenCounts(req.System, req.Messages)
	if err == nil && total > m.ContextWindow {
		err = validation("Input is too long for requested model. The input is about %d tokens; the model accepts %d.", total, m.ContextWindow)
	}
	if err != nil {
		ms.count(func(st *ModelStats) { st.Requests++; st.Errors[errorKey(err)]++ })
		s.failErr(w, err)
		return
	}

	t, reason := ms.admit(start, s.minute, total+maxTokens)
	switch reason {
	case reasonRPM:
		s.fail(w, apiError{http.StatusTooManyRequests, "ThrottlingException", "Too many requests, please wait before trying again."})
		return
	case reasonTPM:
		s.fail(w, apiError{http.StatusTooManyRequests, "ThrottlingException", "Too many tokens, please wait before trying again."})
		return
	}
	used := 0
	defer func() { ms.settle(s.now(), s.minute, t, used) }()

	if e, ok := s.injectFault(m.Faults); ok {
		ms.count(func(st *ModelStats) { st.Errors[e.code]++ })
		s.fail(w, e)
		return
	}

	resp, used := s.respond(&req, m, g, maxTokens, total, prefix, prefixHash)
	latency := s.latency(m, resp.Usage.OutputTokens, resp.StopReason == "guardrail_intervened" && resp.Usage.OutputTokens == 0)
	s.sleep(r.Context(), latency)
	resp.Metrics.LatencyMs = latency.Milliseconds()
	ms.count(func(st *ModelStats) {
		st.Accepted++
		st.InputTokens += int64(resp.Usage.InputTokens)
		st.OutputTokens += int64(resp.Usage.OutputTokens)
		if resp.Usage.CacheReadInputTokens != nil {
			st.CacheReadTokens += int64(*resp.Usage.CacheReadInputTokens)
			st.CacheWriteTokens += int64(*resp.Usage.CacheWriteInputTokens)
		}
	})
	s.reply(w, resp)
}

func errorKey(err error) string {
	var e apiError
	if errors.As(err, &e) {
		return e.code
	}
	return "InternalServerException"
}

// respond builds the Converse answer and the tokens it burns from the quota.
func (s *Server) respond(req *converseRequest, m Model, g *guard, maxTokens, total, prefix int, prefixHash uint64) (*converseResponse, int) {
	resp := &converseResponse{}
	resp.Output.Message.Role = "assistant"

	// Prompt caching: the prefix before the last cachePoint is written on first
	// sight and read afterwards, while its TTL (in simulated minutes) lasts.
	var cacheRead, cacheWrite int
	if prefix > 0 && m.CacheMinTokens > 0 && prefix >= m.CacheMinTokens {
		ttl := 5 * s.minute
		if s.cacheLookup(prefixHash, ttl) {
			cacheRead = prefix
		} else {
			cacheWrite = prefix
		}
	}
	input := total - cacheRead - cacheWrite
	if prefix > 0 {
		resp.Usage.CacheReadInputTokens = &cacheRead
		resp.Usage.CacheWriteInputTokens = &cacheWrite
	}

	// Guardrail on input: only guardContent blocks when there are any,
	// otherwise every message's text.
	scoped := hasGuardContent(req.Messages)
	var in verdict
	masked := map[*contentBlock]string{}
	if g != nil {
		for i := range req.Messages {
			for j := range req.Messages[i].Content {
				b := &req.Messages[i].Content[j]
				text, guarded := blockText(*b)
				if text == "" || (scoped && !guarded) {
					continue
				}
				v := g.evaluate(text, true)
				in.merge(v)
				masked[b] = v.masked
			}
		}
		s.countGuard(g.id, in)
	}
	trace := g != nil && req.GuardrailConfig.Trace != "" && req.GuardrailConfig.Trace != "disabled"
	if in.blocked {
		resp.Output.Message.Content = []textContent{{Text: g.cfg.BlockedInputMessage}}
		resp.StopReason = "guardrail_intervened"
		if trace {
			resp.Trace = &converseTrace{Guardrail: &guardrailTrace{
				InputAssessment: map[string]*assessment{g.id: in.assessment()},
				ActionReason:    actionReason(true, false),
			}}
		}
		resp.Usage.InputTokens, resp.Usage.OutputTokens, resp.Usage.TotalTokens = 0, 0, 0
		resp.Usage.CacheReadInputTokens, resp.Usage.CacheWriteInputTokens = nil, nil
		return resp, 0
	}

	out, stop := limitOutput(generate(buildPrompt(req, masked)), maxTokens, stopSequences(req))
	outTokens := EstimateTokens(out)
	if stop == "max_tokens" {
		outTokens = maxTokens
	}
	resp.StopReason = stop

	var ov verdict
	if g != nil {
		ov = g.evaluate(out, false)
		s.countGuard(g.id, ov)
		switch {
		case ov.blocked:
			out = g.cfg.BlockedOutputMessage
			resp.StopReason = "guardrail_intervened"
		case ov.masking:
			out = ov.masked
			resp.StopReason = "guardrail_intervened"
		}
		if trace {
			resp.Trace = &converseTrace{Guardrail: &guardrailTrace{
				InputAssessment:   map[string]*assessment{g.id: in.assessment()},
				OutputAssessments: map[string][]*assessment{g.id: {ov.assessment()}},
				ActionReason:      actionReason(in.blocked || ov.blocked, in.masking || ov.masking),
			}}
		}
	}
	resp.Output.Message.Content = []textContent{{Text: out}}
	resp.Usage.InputTokens = input
	resp.Usage.OutputTokens = outTokens
	resp.Usage.TotalTokens = input + cacheRead + cacheWrite + outTokens
	return resp, input + cacheWrite + outTokens*m.OutputBurndown
}

func hasGuardContent(msgs []message) bool {
	for _, m := range msgs {
		for _, b := range m.Content {
			if b.GuardContent != nil {
				return true
			}
		}
	}
	return false
}

func (s *Server) countGuard(id string, v verdict) {
	u := v.usage
	units := u.TopicPolicyUnits + u.ContentPolicyUnits + u.WordPolicyUnits + u.SensitiveInformationPolicyUnits
	s.guardMu.Lock()
	defer s.guardMu.Unlock()
	st := s.guardStats[id]
	st.Evaluations++
	st.TextUnits += int64(units)
	if v.intervened() {
		st.Interventions++
	}
	if v.blocked {
		st.Blocked++
	} else if v.masking {
		st.Masked++
	}
}

// buildPrompt splits a request into what the simulator's generator reads as
// instructions (the system prompt and every user block but the last) and the
// document (the last user block), guarded or not: callers put the document
// last, and put other parts of a job (instructions, labels, a schema) in
// guardContent too, so being guarded says nothing about which part a block
// is. Masked text replaces the original, as the model would see it.
func buildPrompt(req *converseRequest, masked map[*contentBlock]string) prompt {
	var inst strings.Builder
	for _, b := range req.System {
		if t, _ := blockText(b); t != "" {
			inst.WriteString(t + "\n")
		}
	}
	var texts []string
	for i := range req.Messages {
		msg := &req.Messages[i]
		if msg.Role != "user" {
			continue
		}
		texts = texts[:0]
		for j := range msg.Content {
			b := &msg.Content[j]
			t, _ := blockText(*b)
			if mt, ok := masked[b]; ok {
				t = mt
			}
			if t != "" {
				texts = append(texts, t)
			}
		}
	}
	if len(texts) == 0 {
		return prompt{instructions: inst.String()}
	}
	for _, t := range texts[:len(texts)-1] {
		inst.WriteString(t + "\n")
	}
	return prompt{instructions: inst.String(), document: texts[len(texts)-1] + "\n"}
}

func stopSequences(req *converseRequest) []string {
	if req.InferenceConfig == nil {
		return nil
	}
	return req.InferenceConfig.StopSequences
}

// limitOutput applies stop sequences and maxTokens, returning the stop reason.
func limitOutput(out string, maxTokens int, stops []string) (string, string) {
	cut := -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(out, s); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 && EstimateTokens(out[:cut]) <= maxTokens {
		return out[:cut], "stop_sequence"
	}
	if EstimateTokens(out) > maxTokens {
		return truncateRunes(out, maxTokens*4), "max_tokens"
	}
	return out, "end_turn"
}

// injectFault draws whether an admitted call fails on purpose.
func (s *Server) injectFault(f Faults) (apiError, bool) {
	if f.errorSum() == 0 {
		return apiError{}, false
	}
	s.rngMu.Lock()
	u := s.rng.Float64()
	s.rngMu.Unlock()
	for _, c := range []struct {
		p float64
		e apiError
	}{
		{f.InternalError, apiError{http.StatusInternalServerError, "InternalServerException", "The server encountered an internal error (injected by the simulator)."}},
		{f.ServiceUnavailable, apiError{http.StatusServiceUnavailable, "ServiceUnavailableException", "The service is unavailable. Try again later (injected by the simulator)."}},
		{f.Timeout, apiError{http.StatusRequestTimeout, "ModelTimeoutException", "Model has timed out in processing the request (injected by the simulator)."}},
		{f.NotReady, apiError{http.StatusTooManyRequests, "ModelNotReadyException", "Model is not ready to serve inference requests (injected by the simulator)."}},
	} {
		if u < c.p {
			return c.e, true
		}
		u -= c.p
	}
	return apiError{}, false
}

// latency is the simulated duration of a call after LatencyScale.
func (s *Server) latency(m Model, outputTokens int, blockedEarly bool) time.Duration {
	if s.latencyScale == 0 {
		return 0
	}
	d := m.Latency.FirstToken
	if !blockedEarly {
		d += time.Duration(outputTokens) * m.Latency.PerOutputToken
	}
	s.rngMu.Lock()
	j, spike := s.rng.Float64(), s.rng.Float64()
	s.rngMu.Unlock()
	d = time.Duration(float64(d) * (1 + m.Latency.Jitter*(2*j-1)))
	if spike < m.Faults.SpikeFraction {
		d += m.Faults.Spike
	}
	return time.Duration(float64(d) * s.latencyScale)
}

func (s *Server) countTokens(w http.ResponseWriter, r *http.Request) {
	ms, err := s.model(r)
	if err != nil {
		s.failErr(w, err)
		return
	}
	var req countTokensRequest
	if err := decode(r, &req); err != nil {
		s.failErr(w, err)
		return
	}
	ms.mu.Lock()
	m := ms.cfg
	ms.mu.Unlock()
	var n int
	switch {
	case req.Input.Converse != nil:
		if len(req.Input.Converse.Messages) == 0 {
			s.fail(w, validation("input.converse.messages must not be empty."))
			return
		}
		n, _, _ = tokenCounts(req.Input.Converse.System, req.Input.Converse.Messages)
	case req.Input.InvokeModel != nil:
		n = EstimateTokens(string(req.Input.InvokeModel.Body))
	default:
		s.fail(w, validation("input must have converse or invokeModel set."))
		return
	}
	if n > m.ContextWindow {
		s.fail(w, validation("Input is too long for requested model. The input is about %d tokens; the model accepts %d.", n, m.ContextWindow))
		return
	}
	s.reply(w, countTokensResponse{InputTokens: n})
}

func (s *Server) applyGuardrail(w http.ResponseWriter, r *http.Request) {
	g, err := s.guardrail(r.PathValue("id"), r.PathValue("version"))
	if err != nil {
		s.failErr(w, err)
		return
	}
	var req applyGuardrailRequest
	if err := decode(r, &req); err != nil {
		s.failErr(w, err)
		return
	}
	if req.Source != "INPUT" && req.Source != "OUTPUT" {
		s.fail(w, validation("source must be INPUT or OUTPUT, got %q.", req.Source))
		return
	}
	if len(req.Content) == 0 {
		s.fail(w, validation("content must not be empty."))
		return
	}
	var all verdict
	var outputs []textContent
	for _, c := range req.Content {
		if c.Text == nil {
			continue
		}
		v := g.evaluate(c.Text.Text, req.Source == "INPUT")
		all.merge(v)
		outputs = append(outputs, textContent{Text: v.masked})
	}
	s.countGuard(g.id, all)
	a := all.assessment()
	resp := applyGuardrailResponse{Usage: all.usage, Action: "NONE", Assessments: []*assessment{a}}
	resp.GuardrailCoverage = &a.InvocationMetrics.GuardrailCoverage
	switch {
	case all.blocked:
		resp.Action = "GUARDRAIL_INTERVENED"
		msg := g.cfg.BlockedInputMessage
		if req.Source == "OUTPUT" {
			msg = g.cfg.BlockedOutputMessage
		}
		resp.Outputs = []textContent{{Text: msg}}
	case all.masking:
		resp.Action = "GUARDRAIL_INTERVENED"
		resp.Outputs = outputs
	case req.OutputScope == "FULL":
		resp.Outputs = outputs
	default:
		resp.Outputs = []textContent{}
	}
	resp.ActionReason = actionReason(all.blocked, all.masking)
	if resp.ActionReason == "" {
		resp.ActionReason = "No action."
	}
	s.reply(w, resp)
}

// Stats returns every model's and guardrail's counters.
func (s *Server) Stats() Stats {
	now := s.now()
	st := Stats{Minute: s.minute.String(), Models: map[string]ModelStats{}, Guardrails: map[string]GuardrailStats{}}
	for id, m := range s.models {
		st.Models[id] = m.snapshot(now, s.minute)
	}
	s.guardMu.Lock()
	for id, g := range s.guardStats {
		st.Guardrails[id] = *g
	}
	s.guardMu.Unlock()
	return st
}

// ResetStats zeroes the counters (not the quota windows or configuration).
func (s *Server) ResetStats() {
	for _, m := range s.models {
		m.mu.Lock()
		m.resetStats()
		m.mu.Unlock()
	}
	s.guardMu.Lock()
	for id := range s.guardStats {
		s.guardStats[id] = &GuardrailStats{}
	}
	s.guardMu.Unlock()
}

// selectModels returns the named model, or every model for "".
func (s *Server) selectModels(id string) ([]*modelState, error) {
	if id == "" {
		return slices.Collect(maps.Values(s.models)), nil
	}
	m, ok := s.models[id]
	if !ok {
		return nil, fmt.Errorf("unknown model %q", id)
	}
	return []*modelState{m}, nil
}

// QuotaChange changes quotas while running: absolute RPM and TPM values, or a
// Factor applied to the current ones (0.5 halves them).
type QuotaChange struct {
	ModelID string   `json:"model_id"` // "" for every model
	RPM     *int     `json:"rpm,omitempty"`
	TPM     *int     `json:"tpm,omitempty"`
	Factor  *float64 `json:"factor,omitempty"`
}

// SetQuota applies a QuotaChange and returns the resulting quotas.
func (s *Server) SetQuota(c QuotaChange) (map[string]Quota, error) {
	if (c.RPM != nil && *c.RPM < 0) || (c.TPM != nil && *c.TPM < 0) || (c.Factor != nil && *c.Factor < 0) {
		return nil, errors.New("rpm, tpm and factor must not be negative")
	}
	ms, err := s.selectModels(c.ModelID)
	if err != nil {
		return nil, err
	}
	out := map[string]Quota{}
	for id, m := range s.models {
		if !slices.Contains(ms, m) {
			continue
		}
		m.mu.Lock()
		if c.Factor != nil {
			m.cfg.RPM = int(float64(m.cfg.RPM) * *c.Factor)
			m.cfg.TPM = int(float64(m.cfg.TPM) * *c.Factor)
		}
		if c.RPM != nil {
			m.cfg.RPM = *c.RPM
		}
		if c.TPM != nil {
			m.cfg.TPM = *c.TPM
		}
		out[id] = Quota{RPM: m.cfg.RPM, TPM: m.cfg.TPM}
		m.mu.Unlock()
	}
	return out, nil
}

// SetFaults replaces the fault injection of one model, or of every model for "".
func (s *Server) SetFaults(modelID string, f Faults) error {
	if err := f.validate("faults"); err != nil {
		return err
	}
	ms, err := s.selectModels(modelID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		m.mu.Lock()
		m.cfg.Faults = f
		m.mu.Unlock()
	}
	return nil
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) { s.reply(w, s.Stats()) }

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	s.ResetStats()
	s.reply(w, map[string]string{"status": "reset"})
}

func (s *Server) handleQuota(w http.ResponseWriter, r *http.Request) {
	var c QuotaChange
	if err := decode(r, &c); err != nil {
		s.failErr(w, err)
		return
	}
	q, err := s.SetQuota(c)
	if err != nil {
		s.fail(w, validation("%v", err))
		return
	}
	s.reply(w, q)
}

// faultsChange is the body of POST /_sim/faults; spike is a Go duration string.
type faultsChange struct {
	ModelID            string  `json:"model_id"`
	InternalError      float64 `json:"internal_error"`
	ServiceUnavailable float64 `json:"service_unavailable"`
	Timeout            float64 `json:"timeout"`
	NotReady           float64 `json:"not_ready"`
	SpikeFraction      float64 `json:"spike_fraction"`
	Spike              string  `json:"spike"`
}

func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	var c faultsChange
	if err := decode(r, &c); err != nil {
		s.failErr(w, err)
		return
	}
	f := Faults{InternalError: c.InternalError, ServiceUnavailable: c.ServiceUnavailable, Timeout: c.Timeout,
		NotReady: c.NotReady, SpikeFraction: c.SpikeFraction}
	if c.Spike != "" {
		d, err := time.ParseDuration(c.Spike)
		if err != nil {
			s.fail(w, validation("spike: %v", err))
			return
		}
		f.Spike = d
	}
	if err := s.SetFaults(c.ModelID, f); err != nil {
		s.fail(w, validation("%v", err))
		return
	}
	s.reply(w, map[string]string{"status": "ok", "model_id": c.ModelID})
}
