package taskprotect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AgentURIEnv is the environment variable the ECS agent sets in every
// container of a task: the base of its task metadata and protection API.
const AgentURIEnv = "ECS_AGENT_URI"

// statePath is the protection endpoint below the agent URI.
const statePath = "/task-protection/v1/state"

// Bounds of ExpiresInMinutes: "a minimum of 1 minute to up to 2,880 minutes
// (48 hours)" (ECS developer guide, task scale-in protection endpoint).
const (
	MinExpires = time.Minute
	MaxExpires = 2880 * time.Minute
)

// Client calls the ECS agent's task scale-in protection endpoint. A nil
// *Client is off: every method returns the zero State and no error.
type Client struct {
	url  string
	http *http.Client
}

// New returns a client of the agent at agentURI (the value of ECS_AGENT_URI),
// or nil when agentURI is empty. hc nil means a client with a 10 s timeout:
// the agent is local, and it answers after its own call to ECS.
func New(agentURI string, hc *http.Client) (*Client, error) {
	if agentURI == "" {
		return nil, nil
	}
	u, err := url.Parse(agentURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q is not an http URL", AgentURIEnv, agentURI)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{url: strings.TrimSuffix(agentURI, "/") + statePath, http: hc}, nil
}

// FromEnv is New(getenv(ECS_AGENT_URI), nil): nil outside ECS.
func FromEnv(getenv func(string) string) (*Client, error) {
	return New(getenv(AgentURIEnv), nil)
}

// State is the task's protection as the agent reports it.
type State struct {
	Enabled bool
	// ExpiresAt is when protection lapses; zero when the agent did not say
	// or protection is off.
	ExpiresAt time.Time
	TaskARN   string
}

// Error is a refusal from the agent: its own validation (error, with a code
// such as InvalidParameterException) or ECS's answer to its call (failure,
// with a reason such as TASK_NOT_VALID for a task outside a service).
type Error struct {
	Status  int    // HTTP status
	Code    string // error.Code or failure.Reason
	Message string // error.Message or failure.Detail
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("task protection: HTTP %d", e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Enable protects the task for expires, rounded up to whole minutes; it must
// be within [MinExpires, MaxExpires]. Calling it again while protected
// restarts the period: that is how protection is renewed.
func (c *Client) Enable(ctx context.Context, expires time.Duration) (State, error) {
	if c == nil {
		return State{}, nil
	}
	if expires < MinExpires || expires > MaxExpires {
		return State{}, fmt.Errorf("task protection: expiry %s is outside %s to %s", expires, MinExpires, MaxExpires)
	}
	minutes := int(math.Ceil(expires.Minutes()))
	return c.put(ctx, map[string]any{"ProtectionEnabled": true, "ExpiresInMinutes": minutes})
}

// Disable clears protection, so scale-in may stop the task.
func (c *Client) Disable(ctx context.Context) (State, error) {
	if c == nil {
		return State{}, nil
	}
	return c.put(ctx, map[string]any{"ProtectionEnabled": false})
}

// Get reads the task's protection.
func (c *Client) Get(ctx context.Context) (State, error) {
	if c == nil {
		return State{}, nil
	}
	return c.do(ctx, http.MethodGet, nil)
}

func (c *Client) put(ctx context.Context, body map[string]any) (State, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return State{}, err
	}
	return c.do(ctx, http.MethodPut, b)
}

// response is the agent's answer: protection on success, failure when ECS
// refused, error when the agent did (amazon-ecs-agent's
// TaskProtectionResponse).
type response struct {
	Protection *struct {
		ProtectionEnabled bool
		ExpirationDate    json.RawMessage
		TaskArn           string
	} `json:"protection"`
	Failure *struct {
		Arn, Reason, Detail string
	} `json:"failure"`
	Error *struct {
		Arn, Code, Message string
	} `json:"error"`
}

func (c *Client) do(ctx context.Context, method string, body []byte) (State, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url, bytes.NewReader(body))
	if err != nil {
		return State{}, fmt.Errorf("task protection: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats the URL, which holds the task's endpoint ID;
		// say what was done instead.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return State{}, fmt.Errorf("task protection: %s %s: %w", method, statePath, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return State{}, fmt.Errorf("task protection: read answer: %w", err)
	}
	var r response
	decodeErr := json.Unmarshal(raw, &r)
	switch {
	case decodeErr == nil && r.Error != nil:
		return State{}, &Error{Status: res.StatusCode, Code: r.Error.Code, Message: r.Error.Message}
	case decodeErr == nil && r.Failure != nil:
		return State{}, &Error{Status: res.StatusCode, Code: r.Failure.Reason, Message: r.Failure.Detail}
	case res.StatusCode/100 != 2:
		return State{}, &Error{Status: res.StatusCode}
	case decodeErr != nil || r.Protection == nil:
		return State{}, fmt.Errorf("task protection: HTTP %d with an answer that has no protection state", res.StatusCode)
	}
	return State{Enabled: r.Protection.ProtectionEnabled, ExpiresAt: parseTime(r.Protection.ExpirationDate), TaskARN: r.Protection.TaskArn}, nil
}

// parseTime reads the agent's ExpirationDate: an RFC 3339 string, or epoch
// seconds as ECS's own API sends them. Anything else is the zero time.
func parseTime(raw json.RawMessage) time.Time {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, _ := time.Parse(time.RFC3339Nano, s)
		return t
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil && f > 0 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	return time.Time{}
}
