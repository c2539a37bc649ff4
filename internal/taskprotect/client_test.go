package taskprotect_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierq/tierq/internal/taskprotect"
)

// agent is a stand-in of the ECS agent's task protection endpoint, with the
// agent's answer shapes (amazon-ecs-agent TaskProtectionResponse): protection
// on success, error for its own validation, failure for ECS's refusal.
type agent struct {
	mu       sync.Mutex
	requests []request
	// answer, when set, replaces the normal answer (status, body).
	answer func(r request) (int, string)
	// hang holds every answer until it is closed.
	hang      chan struct{}
	protected bool
	srv       *httptest.Server
}

type request struct {
	Method, Path, ContentType string
	Body                      map[string]any
}

func newAgent(t *testing.T) *agent {
	a := &agent{}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

// uri is what ECS_AGENT_URI looks like: the agent's address and the
// container's v3 endpoint ID.
func (a *agent) uri() string { return a.srv.URL + "/api/0f1e2d3c-endpoint-id" }

func (a *agent) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	req := request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type")}
	_ = json.Unmarshal(raw, &req.Body)
	a.mu.Lock()
	a.requests = append(a.requests, req)
	answer, hang := a.answer, a.hang
	a.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	if answer != nil {
		status, body := answer(req)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return
	}
	if r.URL.Path != "/api/0f1e2d3c-endpoint-id/task-protection/v1/state" {
		http.NotFound(w, r)
		return
	}
	a.mu.Lock()
	if r.Method == http.MethodPut {
		a.protected = req.Body["ProtectionEnabled"] == true
	}
	on := a.protected
	a.mu.Unlock()
	p := map[string]any{"ProtectionEnabled": on, "TaskArn": "arn:aws:ecs:us-east-1:123456789012:task/tierq/abc"}
	if on {
		p["ExpirationDate"] = "2026-11-24T12:00:00Z"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"protection": p})
}

func (a *agent) got() []request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]request(nil), a.requests...)
}

func (a *agent) set(answer func(request) (int, string)) {
	a.mu.Lock()
	a.answer = answer
	a.mu.Unlock()
}

func client(t *testing.T, a *agent) *taskprotect.Client {
	t.Helper()
	c, err := taskprotect.New(a.uri(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientCalls(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	c := client(t, a)
	ctx := context.Background()

	st, err := c.Enable(ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := taskprotect.State{Enabled: true, ExpiresAt: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		TaskARN: "arn:aws:ecs:us-east-1:123456789012:task/tierq/abc"}
	if st != want {
		t.Errorf("Enable: state %+v, want %+v", st, want)
	}
	if st, err = c.Get(ctx); err != nil || !st.Enabled {
		t.Errorf("Get: %+v, %v; want enabled", st, err)
	}
	if st, err = c.Disable(ctx); err != nil || st.Enabled || !st.ExpiresAt.IsZero() {
		t.Errorf("Disable: %+v, %v; want disabled", st, err)
	}
	reqs := a.got()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3: %+v", len(reqs), reqs)
	}
	for i, w := range []struct {
		method string
		body   map[string]any
	}{
		// 90 s is rounded up: asking for less than was meant could let
		// protection lapse under a job.
		{http.MethodPut, map[string]any{"ProtectionEnabled": true, "ExpiresInMinutes": 2.0}},
		{http.MethodGet, nil},
		{http.MethodPut, map[string]any{"ProtectionEnabled": false}},
	} {
		r := reqs[i]
		if r.Method != w.method || r.Path != "/api/0f1e2d3c-endpoint-id/task-protection/v1/state" {
			t.Errorf("request %d: %s %s, want %s .../task-protection/v1/state", i, r.Method, r.Path, w.method)
		}
		if w.body != nil && (r.ContentType != "application/json" || !equalJSON(r.Body, w.body)) {
			t.Errorf("request %d: %s body %v, want application/json %v", i, r.ContentType, r.Body, w.body)
		}
	}
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestClientRefusesExpiriesOutsideTheAgentsRange(t *testing.T) {
	t.Parallel()
	a := newAgent(t)
	c := client(t, a)
	for _, d := range []time.Duration{0, 59 * time.Second, 2881 * time.Minute} {
		if _, err := c.Enable(context.Background(), d); err == nil || !strings.Contains(err.Error(), "outside 1m0s to 48h0m0s") {
			t.Errorf("Enable(%s): %v, want an error naming the range", d, err)
		}
	}
	if n := len(a.got()); n != 0 {
		t.Errorf("%d requests sent for refused expiries, want 0", n)
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"agent validation", 400, `{"error":{"Code":"InvalidParameterException","Message":"Invalid request: expiration duration must be between 1 and 2880 minutes"}}`,
			400, "InvalidParameterException", "between 1 and 2880"},
		{"ECS refusal", 200, `{"failure":{"Arn":"arn:aws:ecs:us-east-1:123456789012:task/tierq/abc","Reason":"TASK_NOT_VALID","Detail":"standalone task"}}`,
			200, "TASK_NOT_VALID", "standalone task"},
		{"server error without a body", 500, ``, 500, "", ""},
		{"access denied", 400, `{"requestID":"r-1","error":{"Code":"AccessDeniedException","Message":"not authorized to perform ecs:UpdateTaskProtection"}}`,
			400, "AccessDeniedException", "ecs:UpdateTaskProtection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAgent(t)
			a.set(func(request) (int, string) { return tt.status, tt.body })
			_, err := client(t, a).Enable(context.Background(), time.Hour)
			var pe *taskprotect.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T), want *taskprotect.Error", err, err)
			}
			if pe.Status != tt.wantStatus || pe.Code != tt.wantCode || !strings.Contains(pe.Message, tt.wantMsg) {
				t.Errorf("error %+v, want status %d code %q message containing %q", pe, tt.wantStatus, tt.wantCode, tt.wantMsg)
			}
		})
	}
	t.Run("an answer without state", func(t *testing.T) {
		t.Parallel()
		a := newAgent(t)
		a.set(func(request) (int, string) { return 200, `<html>` })
		if _, err := client(t, a).Get(context.Background()); err == nil || !strings.Contains(err.Error(), "no protection state") {
			t.Errorf("Get: %v, want an error saying the answer has no state", err)
		}
	})
	t.Run("timeout, without the endpoint ID in the message", func(t *testing.T) {
		t.Parallel()
		a := newAgent(t)
		a.hang = make(chan struct{})
		defer close(a.hang)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := client(t, a).Enable(ctx, time.Hour)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Enable: %v, want context.DeadlineExceeded", err)
		}
		if strings.Contains(err.Error(), "0f1e2d3c") {
			t.Errorf("error %q repeats the agent URI", err)
		}
	})
}

func TestOffOutsideECS(t *testing.T) {
	t.Parallel()
	c, err := taskprotect.FromEnv(func(string) string { return "" })
	if c != nil || err != nil {
		t.Fatalf("FromEnv without ECS_AGENT_URI: %v, %v; want nil, nil", c, err)
	}
	if st, err := c.Enable(context.Background(), time.Hour); st.Enabled || err != nil {
		t.Errorf("nil client Enable: %+v, %v; want a no-op", st, err)
	}
	g, err := taskprotect.NewGuard(c, taskprotect.GuardConfig{}, nil)
	if g != nil || err != nil {
		t.Fatalf("NewGuard(nil client): %v, %v; want nil, nil", g, err)
	}
	g.Busy(3) // a nil Guard ignores it
	g.Close(context.Background())

	if _, err := taskprotect.New("169.254.170.2/api/x", nil); err == nil || !strings.Contains(err.Error(), "ECS_AGENT_URI") {
		t.Errorf("New with a URI without scheme: %v, want an error naming ECS_AGENT_URI", err)
	}
	c, err = taskprotect.FromEnv(func(k string) string {
		if k == taskprotect.AgentURIEnv {
			return "http://169.254.170.2/api/x"
		}
		return ""
	})
	if c == nil || err != nil {
		t.Errorf("FromEnv with ECS_AGENT_URI: %v, %v; want a client", c, err)
	}
}
