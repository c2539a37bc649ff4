package taskprotect_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tierq/tierq/internal/taskprotect"
)

// On ECS the agent's URI comes from the environment (FromEnv); here a
// stand-in answers as the agent does.
func ExampleClient_Enable() {
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("%s %s %s\n", r.Method, r.URL.Path, body)
		_, _ = io.WriteString(w, `{"protection":{"ProtectionEnabled":true,"ExpirationDate":"2026-11-24T13:00:00Z","TaskArn":"arn:aws:ecs:us-east-1:123456789012:task/tierq/abc"}}`)
	}))
	defer agent.Close()

	c, _ := taskprotect.New(agent.URL+"/api/endpoint-id", nil)
	st, err := c.Enable(context.Background(), 60*time.Minute)
	fmt.Println(st.Enabled, st.ExpiresAt.Format(time.RFC3339), err)
	// Output:
	// PUT /api/endpoint-id/task-protection/v1/state {"ExpiresInMinutes":60,"ProtectionEnabled":true}
	// true 2026-11-24T13:00:00Z <nil>
}
