package bedrocksim

import (
	"maps"
	"sync"
	"time"
)

// Throttle reasons, as reported by /_sim/stats. The flex ones are flex calls
// refused because they would take the window above the flex share of the
// quota (FlexTier.QuotaShare) while other tiers were still admitted.
const (
	reasonRPM     = "rpm"
	reasonTPM     = "tpm"
	reasonFlexRPM = "flex_rpm"
	reasonFlexTPM = "flex_tpm"
)

// modelState is one model's quota window and counters. Bedrock counts quotas
// per model per minute; the simulator uses fixed windows of Config.Minute.
//
// Accounting follows Bedrock's three stages, collapsed to two: a call reserves
// input + maxTokens when admitted and settles to input + cacheWrite +
// output × burndown when it ends (cache reads are released). A call still
// running when its window rolls keeps its reservation held in the new window
// (carried) until it settles, so long calls cannot hide from the budget.
type modelState struct {
	id  string // as configured, for error messages and the prompt cache
	mu  sync.Mutex
	cfg Model

	windowStart   time.Time
	windowReqs    int // calls admitted in this window
	windowTokens  int // reserved or settled tokens of calls admitted in this window
	carried       int // reservations of running calls admitted in earlier windows
	reservedTotal int // reservations of every running call
	// reservedTier is the window's use of the reserved tier's own capacity
	// (Model.ReservedTPM), counted apart from the on-demand quota.
	reservedTier int

	stats ModelStats
}

// ticket is an admitted call's claim on the quota.
type ticket struct {
	window   time.Time
	reserved int
	// tier is the tier that serves the call; onReserved says its claim is on
	// the reserved tier's capacity rather than the on-demand quota.
	tier       string
	onReserved bool
}

// ModelStats are one model's counters since start or the last reset.
type ModelStats struct {
	Requests         int64            `json:"requests"`
	Accepted         int64            `json:"accepted"`
	Throttled        map[string]int64 `json:"throttled"`
	Errors           map[string]int64 `json:"errors"`
	InputTokens      int64            `json:"input_tokens"`
	OutputTokens     int64            `json:"output_tokens"`
	CacheReadTokens  int64            `json:"cache_read_tokens"`
	CacheWriteTokens int64            `json:"cache_write_tokens"`
	// Tiers counts answered calls by the service tier that served them
	// (default, flex, priority, reserved).
	Tiers        map[string]int64 `json:"tiers"`
	InFlight     int64            `json:"in_flight"`
	PeakInFlight int64            `json:"peak_in_flight"`
	// Window is the current quota window's use.
	Window WindowStats `json:"window"`
	// Quota is the model's configured quota now.
	Quota Quota `json:"quota"`
}

// WindowStats describes the current quota window.
type WindowStats struct {
	Start    time.Time `json:"start"`
	Requests int       `json:"requests"`
	// Tokens counts reservations of running calls and settlements of finished ones.
	Tokens int `json:"tokens"`
	// ReservedTierTokens is the same for calls served from the reserved
	// tier's own capacity (Model.ReservedTPM), which Tokens does not count.
	ReservedTierTokens int `json:"reserved_tier_tokens,omitempty"`
}

// Quota is a model's per-window request and token budget; 0 is unlimited.
type Quota struct {
	RPM int `json:"rpm"`
	TPM int `json:"tpm"`
}

func newModelState(id string, m Model) *modelState {
	s := &modelState{id: id, cfg: m}
	s.resetStats()
	return s
}

func (s *modelState) resetStats() {
	inFlight := s.stats.InFlight
	s.stats = ModelStats{Throttled: map[string]int64{}, Errors: map[string]int64{}, Tiers: map[string]int64{},
		InFlight: inFlight, PeakInFlight: inFlight}
}

// roll starts a new window when the current one has ended. Windows are aligned
// to multiples of minute so every model rolls at the same instant.
func (s *modelState) roll(now time.Time, minute time.Duration) {
	if !s.windowStart.IsZero() && now.Before(s.windowStart.Add(minute)) {
		return
	}
	s.windowStart = now.Truncate(minute)
	s.windowReqs = 0
	s.windowTokens = 0
	s.carried = s.reservedTotal
	s.reservedTier = 0
}

// admit reserves quota for a call asking for tier, or returns the reason it is
// throttled. The ticket says which tier serves the call: a reserved call over
// the reserved tier's capacity overflows to default, as on Bedrock.
//
// Every tier shares the on-demand quota (Bedrock: "your on-demand quota for a
// model is shared across all service tiers"), but flex is served at lower
// priority: a flex call is admitted only while the window stays within
// FlexTier.QuotaShare of RPM and TPM, so near the quota flex is throttled
// first and default and priority calls still get the rest.
func (s *modelState) admit(now time.Time, minute time.Duration, tier string, reserve int) (ticket, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roll(now, minute)
	s.stats.Requests++
	if tier == TierReserved && s.cfg.ReservedTPM > 0 {
		if s.reservedTier+reserve <= s.cfg.ReservedTPM {
			s.reservedTier += reserve
			s.stats.InFlight++
			s.stats.PeakInFlight = max(s.stats.PeakInFlight, s.stats.InFlight)
			return ticket{window: s.windowStart, reserved: reserve, tier: TierReserved, onReserved: true}, ""
		}
		tier = TierDefault
	}
	share, rpmReason, tpmReason := 1.0, reasonRPM, reasonTPM
	if tier == TierFlex {
		share, rpmReason, tpmReason = s.cfg.Flex.quotaShare(), reasonFlexRPM, reasonFlexTPM
	}
	if s.cfg.RPM > 0 && float64(s.windowReqs+1) > share*float64(s.cfg.RPM) {
		s.stats.Throttled[rpmReason]++
		return ticket{}, rpmReason
	}
	if s.cfg.TPM > 0 && float64(s.windowTokens+s.carried+reserve) > share*float64(s.cfg.TPM) {
		s.stats.Throttled[tpmReason]++
		return ticket{}, tpmReason
	}
	s.windowReqs++
	s.windowTokens += reserve
	s.reservedTotal += reserve
	s.stats.InFlight++
	s.stats.PeakInFlight = max(s.stats.PeakInFlight, s.stats.InFlight)
	return ticket{window: s.windowStart, reserved: reserve, tier: tier}, ""
}

// settle replaces a call's reservation by what it actually used.
func (s *modelState) settle(now time.Time, minute time.Duration, t ticket, used int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roll(now, minute)
	s.stats.InFlight--
	if t.onReserved {
		// The reserved tier's capacity is not carried across windows: a
		// reservation ending in a later window simply lapses.
		if t.window.Equal(s.windowStart) {
			s.reservedTier += used - t.reserved
		}
		return
	}
	s.reservedTotal -= t.reserved
	if t.window.Equal(s.windowStart) {
		s.windowTokens += used - t.reserved
		return
	}
	// Admitted in an earlier window: its settled cost belonged to that window;
	// here it only held capacity while it ran.
	s.carried -= t.reserved
}

// count records a finished call or an error outside the quota path.
func (s *modelState) count(f func(st *ModelStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

func (s *modelState) snapshot(now time.Time, minute time.Duration) ModelStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roll(now, minute)
	st := s.stats
	st.Throttled = maps.Clone(st.Throttled)
	st.Errors = maps.Clone(st.Errors)
	st.Tiers = maps.Clone(st.Tiers)
	st.Window = WindowStats{Start: s.windowStart, Requests: s.windowReqs, Tokens: s.windowTokens + s.carried,
		ReservedTierTokens: s.reservedTier}
	st.Quota = Quota{RPM: s.cfg.RPM, TPM: s.cfg.TPM}
	return st
}
