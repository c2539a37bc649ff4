package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/taskprotect"
	"github.com/tierq/tierq/internal/testenv"
)

// On ECS the worker protects its task from scale-in while it holds a job
// and clears the protection when it stops: a stand-in of the agent's
// task-protection endpoint sees ProtectionEnabled true, then false.
func TestWorkerProtectsItsTaskWhileBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("kumo and the simulator")
	}
	t.Parallel()
	var mu sync.Mutex
	var states []bool
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ProtectionEnabled bool
		}
		if r.Method == http.MethodPut {
			_ = json.NewDecoder(r.Body).Decode(&body)
			mu.Lock()
			states = append(states, body.ProtectionEnabled)
			mu.Unlock()
		}
		_, _ = io.WriteString(w, `{"protection":{"ProtectionEnabled":true,"ExpirationDate":"2026-12-01T00:00:00Z","TaskArn":"arn:aws:ecs:us-east-1:123456789012:task/c/t"}}`)
	}))
	t.Cleanup(agent.Close)
	client, err := taskprotect.New(agent.URL, nil)
	if err != nil {
		t.Fatal(err)
	}

	e := newCheckEnv(t, nil)
	ctx := t.Context()
	sqsc := e.clients.QueueInfo.(*sqs.Client)
	s3c := e.clients.Store.(*s3.Client)
	if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(e.settings.QueueURL),
		MessageBody: aws.String(`{"version":"1","job_id":"protected-1","task":"summarize","text":"Protect me."}`)}); err != nil {
		t.Fatal(err)
	}
	s := e.settings
	s.WaitTime, s.DrainTimeout = time.Second, time.Second
	c := e.clients
	c.TaskProtection = client
	logs := &testenv.Buffer{}
	w, err := app.New(s, c, io.Discard, app.NewLogger(logs, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(runCtx) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.ResultsBucket), Key: aws.String("results/protected-1.json")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no result:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(states) < 2 || !states[0] || states[len(states)-1] {
		t.Fatalf("protection states %v: want enabled while busy, then disabled", states)
	}
}
