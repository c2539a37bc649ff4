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
		s.models[id] = newModelState(id, m)
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

// call is a Converse request that passed validation: what the simulator is
// asked to serve.
type call struct {
	maxTokens int
	tier      string       // the service tier asked for
	total     int          // input tokens, cached or not
	points    []cachePoint // cache points, system first, in order
	// structured is the answer to a request with outputConfig.textFormat,
	// built from its schema; "" without one.
	structured string
}

// validateConverse checks what Bedrock rejects before any model work and
// returns the call to serve.
func validateConverse(req *converseRequest, id string, m Model) (call, error) {
	maxTokens, err := validateMessages(req, m)
	if err != nil {
		return call{}, err
	}
	c := call{maxTokens: maxTokens}
	if c.tier, err = validateServiceTier(req, id, m); err != nil {
		return call{}, err
	}
	c.total, c.points = tokenCounts(id, req.System, req.Messages)
	if err := validateCachePoints(c.points, id, m); err != nil {
		return call{}, err
	}
	if c.structured, err = validateOutputConfig(req.OutputConfig, id, m); err != nil {
		return call{}, err
	}
	if c.total > m.ContextWindow {
		return call{}, validation("Input is too long for requested model. The input is about %d tokens; the model accepts %d.", c.total, m.ContextWindow)
	}
	return c, nil
}

// validateMessages checks the conversation, inferenceConfig and guardrailConfig.
func validateMessages(req *converseRequest, m Model) (maxTokens int, err error) {
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
		for _, k := range ic.unknown {
			if k == "serviceTier" || k == "service_tier" {
				return 0, validation("Malformed input request: extraneous key [%s] is not permitted in inferenceConfig: the service tier belongs at the top level of the request, as \"serviceTier\": {\"type\": \"flex\"}.", k)
			}
		}
		if len(ic.unknown) > 0 {
			return 0, validation("Malformed input request: extraneous key [%s] is not permitted in inferenceConfig.", strings.Join(ic.unknown, ", "))
		}
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

// validateServiceTier returns the tier a request asks for (default when it
// asks for none), rejecting what Bedrock rejects: a malformed or unknown tier,
// one the model does not take, and a tier put where it does not belong.
func validateServiceTier(req *converseRequest, id string, m Model) (string, error) {
	if len(req.AdditionalModelRequestFields) > 0 {
		var fields map[string]json.RawMessage
		if json.Unmarshal(req.AdditionalModelRequestFields, &fields) == nil {
			for _, k := range []string{"serviceTier", "service_tier"} {
				if _, ok := fields[k]; ok {
					return "", validation("Malformed input request: extraneous key [%s] is not permitted in additionalModelRequestFields for model %s: the service tier belongs at the top level of the request, as \"serviceTier\": {\"type\": \"flex\"}.", k, id)
				}
			}
		}
	}
	raw := req.ServiceTier
	if len(raw) == 0 || string(raw) == "null" {
		return TierDefault, nil
	}
	var st map[string]json.RawMessage
	var tier string
	if json.Unmarshal(raw, &st) != nil || json.Unmarshal(st["type"], &tier) != nil {
		return "", validation("The service tier for model %s is malformed: serviceTier must be an object with a string type, such as {\"type\": \"flex\"}; got %s.", id, truncateRunes(string(raw), 40))
	}
	if !slices.Contains(serviceTiers, tier) {
		return "", validation("The service tier %q is not valid for model %s: serviceTier.type must be one of %s.", truncateRunes(tier, 40), id, strings.Join(serviceTiers, ", "))
	}
	if !m.accepts(tier) {
		return "", validation("The service tier %q is not supported for model %s. Try again with the default service tier or one the model supports (%s).",
			tier, id, strings.Join(append([]string{TierDefault}, m.ServiceTiers...), ", "))
	}
	return tier, nil
}

// maxCachePoints is the most cachePoint blocks a request may carry.
const maxCachePoints = 4

// validateCachePoints checks cachePoint blocks as Bedrock does: type default,
// a ttl the model takes, at most four, and TTLs that do not increase from
// system to messages (a 1h point after a 5m one is refused).
func validateCachePoints(points []cachePoint, id string, m Model) error {
	if len(points) > maxCachePoints {
		return validation("The request has %d cache points; at most %d are allowed. Remove cache points and try again.", len(points), maxCachePoints)
	}
	for i, p := range points {
		if p.typ != "default" {
			return validation("The value %q at %s.cachePoint.type is not valid: use default.", truncateRunes(p.typ, 40), p.path)
		}
		if p.ttlName != TTL5m && p.ttlName != TTL1h {
			return validation("The value %q at %s.cachePoint.ttl is not valid: use 5m or 1h.", truncateRunes(p.ttlName, 40), p.path)
		}
		if !slices.Contains(m.cacheTTLs(), p.ttlName) {
			return validation("The cache TTL %s at %s.cachePoint.ttl is not supported for model %s (supported: %s).",
				p.ttlName, p.path, id, strings.Join(m.cacheTTLs(), ", "))
		}
		if i > 0 && p.ttlName == TTL1h && points[i-1].ttlName == TTL5m {
			return validation("Cache point TTLs must not increase from system to messages: the 1h cache point at %s follows a 5m one at %s. Put the 1h cache points first.",
				p.path, points[i-1].path)
		}
	}
	return nil
}

// validateOutputConfig checks a structured-output request and returns the
// answer it gets; "" when the request asks for none.
func validateOutputConfig(oc *outputConfig, id string, m Model) (string, error) {
	if oc == nil || oc.TextFormat == nil {
		return "", nil
	}
	if !m.StructuredOutputs {
		return "", validation("Structured output (outputConfig.textFormat) is not supported for model %s.", id)
	}
	tf := oc.TextFormat
	if tf.Type != "json_schema" {
		return "", validation("The value %q at outputConfig.textFormat.type is not valid: use json_schema.", truncateRunes(tf.Type, 40))
	}
	if tf.Structure.JSONSchema == nil || tf.Structure.JSONSchema.Schema == nil {
		return "", validation("outputConfig.textFormat.structure.jsonSchema.schema is required with type json_schema.")
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(*tf.Structure.JSONSchema.Schema), &schema); err != nil || schema == nil {
		return "", validation("The JSON schema at outputConfig.textFormat.structure.jsonSchema.schema must be a JSON object: %v.", errOr(err, "got null"))
	}
	answer, err := structuredAnswer(schema)
	if err != nil {
		return "", validation("The JSON schema at outputConfig.textFormat.structure.jsonSchema.schema is not supported: %v.", err)
	}
	return answer, nil
}

func errOr(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}

// cachePoint is one cachePoint block and the prompt before it.
type cachePoint struct {
	path    string // where it is, for messages: "system.1", "messages.0.content.2"
	typ     string
	ttlName string // "5m" when the request gives none
	prefix  int    // tokens before it
	key     uint64 // hash of the model and the prompt before it
}

// ttl is how long a cache entry lives, in simulated minutes.
func (p cachePoint) ttl(minute time.Duration) time.Duration {
	if p.ttlName == TTL1h {
		return 60 * minute
	}
	return 5 * minute
}

// tokenCounts walks system then messages in order and returns the total input
// tokens and the cache points with the prefix before each. The prefix hashes
// start with the model ID: Bedrock's cache is per model.
func tokenCounts(modelID string, system []contentBlock, msgs []message) (total int, points []cachePoint) {
	h := fnv.New64a()
	h.Write([]byte(modelID))
	h.Write([]byte{0})
	runes := 0
	visit := func(b contentBlock, path string) {
		if t, _ := blockText(b); t != "" {
			runes += utf8.RuneCountInString(t)
			h.Write([]byte(t))
			h.Write([]byte{0})
		}
		if cp := b.CachePoint; cp != nil {
			ttl := cp.TTL
			if ttl == "" {
				ttl = TTL5m
			}
			points = append(points, cachePoint{path: path, typ: cp.Type, ttlName: ttl, prefix: (runes + 3) / 4, key: h.Sum64()})
		}
	}
	for i, b := range system {
		visit(b, fmt.Sprintf("system.%d", i))
	}
	for i, m := range msgs {
		h.Write([]byte(m.Role))
		for j, b := range m.Content {
			visit(b, fmt.Sprintf("messages.%d.content.%d", i, j))
		}
	}
	return (runes + 3) / 4, points
}

// maxCacheEntries bounds the prompt cache; past it expired entries go, then all.
const maxCacheEntries = 100_000

// useCache reads and writes the prompt cache for a call's cache points and
// returns the tokens read and the tokens written by TTL. As on Bedrock:
//
//   - a point whose prefix is below the model's minimum is not cached, and
//     that is no error;
//   - the longest cached, unexpired prefix is read, and the read refreshes
//     its expiry to now + its TTL;
//   - every eligible point after it is written: the tokens between the
//     previous point and it, at its TTL.
func (s *Server) useCache(m Model, points []cachePoint) (read int, written map[string]int) {
	if m.CacheMinTokens <= 0 {
		return 0, nil
	}
	var eligible []cachePoint
	for _, p := range points {
		if p.prefix > 0 && p.prefix >= m.CacheMinTokens {
			eligible = append(eligible, p)
		}
	}
	if len(eligible) == 0 {
		return 0, nil
	}
	now := s.now()
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	hit := -1
	for i := len(eligible) - 1; i >= 0; i-- {
		if exp, ok := s.cache[eligible[i].key]; ok && now.Before(exp) {
			hit = i
			break
		}
	}
	done := 0
	if hit >= 0 {
		p := eligible[hit]
		read, done = p.prefix, p.prefix
		s.cache[p.key] = now.Add(p.ttl(s.minute))
	}
	written = map[string]int{}
	for _, p := range eligible[hit+1:] {
		written[p.ttlName] += p.prefix - done
		done = p.prefix
		if len(s.cache) >= maxCacheEntries {
			s.evictCache(now)
		}
		s.cache[p.key] = now.Add(p.ttl(s.minute))
	}
	return read, written
}

// evictCache drops expired entries, and everything if that is not enough.
// cacheMu must be held.
func (s *Server) evictCache(now time.Time) {
	for k, exp := range s.cache {
		if !now.Before(exp) {
			delete(s.cache, k)
		}
	}
	if len(s.cache) >= maxCacheEntries {
		clear(s.cache)
	}
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
	var c call
	if err == nil {
		c, err = validateConverse(&req, ms.id, m)
	}
	var g *guard
	if err == nil && req.GuardrailConfig != nil {
		g, err = s.guardrail(req.GuardrailConfig.GuardrailIdentifier, req.GuardrailConfig.GuardrailVersion)
	}
	if err != nil {
		ms.count(func(st *ModelStats) { st.Requests++; st.Errors[errorKey(err)]++ })
		s.failErr(w, err)
		return
	}

	t, reason := ms.admit(start, s.minute, c.tier, c.total+c.maxTokens)
	switch reason {
	case reasonRPM, reasonFlexRPM:
		s.fail(w, apiError{http.StatusTooManyRequests, "ThrottlingException", "Too many requests, please wait before trying again."})
		return
	case reasonTPM, reasonFlexTPM:
		s.fail(w, apiError{http.StatusTooManyRequests, "ThrottlingException", "Too many tokens, please wait before trying again."})
		return
	}
	// Settle before replying, so a client that has its answer sees the
	// quota as settled; calls that fail after admission settle on return.
	settled := false
	settle := func(used int) {
		if !settled {
			settled = true
			ms.settle(s.now(), s.minute, t, used)
		}
	}
	defer settle(0)

	if e, ok := s.injectFault(m.Faults); ok {
		ms.count(func(st *ModelStats) { st.Errors[e.code]++ })
		s.fail(w, e)
		return
	}

	resp, used := s.respond(&req, m, g, c)
	resp.ServiceTier.Type = t.tier
	latency := s.latency(m, t.tier, resp.Usage.OutputTokens, resp.StopReason == "guardrail_intervened" && resp.Usage.OutputTokens == 0)
	s.sleep(r.Context(), latency)
	resp.Metrics.LatencyMs = latency.Milliseconds()
	ms.count(func(st *ModelStats) {
		st.Accepted++
		st.Tiers[t.tier]++
		st.InputTokens += int64(resp.Usage.InputTokens)
		st.OutputTokens += int64(resp.Usage.OutputTokens)
		if resp.Usage.CacheReadInputTokens != nil {
			st.CacheReadTokens += int64(*resp.Usage.CacheReadInputTokens)
			st.CacheWriteTokens += int64(*resp.Usage.CacheWriteInputTokens)
		}
	})
	settle(used)
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
func (s *Server) respond(req *converseRequest, m Model, g *guard, c call) (*converseResponse, int) {
	resp := &converseResponse{}
	resp.Output.Message.Role = "assistant"

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
		// The model is not invoked: nothing is read from or written to the cache.
		resp.Output.Message.Content = []textContent{{Text: g.cfg.BlockedInputMessage}}
		resp.StopReason = "guardrail_intervened"
		if trace {
			resp.Trace = &converseTrace{Guardrail: &guardrailTrace{
				InputAssessment: map[string]*assessment{g.id: in.assessment()},
				ActionReason:    actionReason(true, false),
			}}
		}
		return resp, 0
	}

	// Prompt caching: see useCache. Cached tokens are outside inputTokens.
	cacheRead, written := s.useCache(m, c.points)
	cacheWrite := written[TTL1h] + written[TTL5m]
	input := c.total - cacheRead - cacheWrite
	if len(c.points) > 0 {
		resp.Usage.CacheReadInputTokens = &cacheRead
		resp.Usage.CacheWriteInputTokens = &cacheWrite
		for _, ttl := range []string{TTL1h, TTL5m} { // 1h before 5m, as Bedrock sorts them
			if n := written[ttl]; n > 0 {
				resp.Usage.CacheDetails = append(resp.Usage.CacheDetails, cacheDetail{TTL: ttl, InputTokens: n})
			}
		}
	}

	answer := c.structured
	if answer == "" {
		answer = generate(buildPrompt(req, masked))
	}
	out, stop := limitOutput(answer, c.maxTokens, stopSequences(req))
	outTokens := EstimateTokens(out)
	if stop == "max_tokens" {
		outTokens = c.maxTokens
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

// tierLatencyFactor is how much slower (flex) or faster (priority) a tier
// serves than the default.
func tierLatencyFactor(m Model, tier string) float64 {
	switch tier {
	case TierFlex:
		return m.Flex.latencyFactor()
	case TierPriority:
		return m.Priority.latencyFactor()
	}
	return 1
}

// latency is the simulated duration of a call after LatencyScale: the model's
// latency with jitter, times the tier's factor, plus any spike.
func (s *Server) latency(m Model, tier string, outputTokens int, blockedEarly bool) time.Duration {
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
	d = time.Duration(float64(d) * (1 + m.Latency.Jitter*(2*j-1)) * tierLatencyFactor(m, tier))
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
		n, _ = tokenCounts("", req.Input.Converse.System, req.Input.Converse.Messages)
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
