package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sivchari/kumo"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/worker"
)

func ExampleNew() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// An in-process SQS emulator stands in for AWS; in production the client
	// comes from config.LoadDefaultConfig and the URLs from configuration.
	srv := kumo.NewServer()
	defer srv.Close()
	client := emulator.SQS(srv.URL)
	queueURL, dlqURL := createQueue(client, "example-jobs"), createQueue(client, "example-jobs-dlq")
	defer deleteQueue(client, queueURL)
	defer deleteQueue(client, dlqURL)
	for _, body := range []string{`{"id":1}`, `{"id":2}`, `hello`} {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}); err != nil {
			log.Fatal(err)
		}
	}

	var handled atomic.Int32
	process := worker.ProcessorFunc(func(ctx context.Context, m worker.Message) error {
		defer func() {
			if handled.Add(1) == 3 {
				cancel() // stop after three messages: Run drains and returns
			}
		}()
		var job struct{ ID int }
		if err := json.Unmarshal(m.Body, &job); err != nil {
			// It can never succeed: the worker copies it to the
			// dead-letter queue instead of retrying it.
			return worker.DeadLetter(fmt.Errorf("not a job: %w", err))
		}
		return nil // done: the worker deletes the message
	})

	w, err := worker.New(worker.Config{
		QueueURL:           queueURL,
		DeadLetterQueueURL: dlqURL,
		Concurrency:        4,
		WaitTime:           time.Second,
	}, client, process, worker.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
	s := w.Stats()
	fmt.Printf("received %d, succeeded %d, dead-lettered %d, deleted %d, in flight %d\n",
		s.Received, s.Succeeded, s.DeadLettered, s.Deleted, s.InFlight)
	// Output: received 3, succeeded 2, dead-lettered 1, deleted 3, in flight 0
}

func createQueue(c *sqs.Client, name string) string {
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		log.Fatal(err)
	}
	return *out.QueueUrl
}

// deleteQueue cleans up: every kumo server in a process shares one store.
func deleteQueue(c *sqs.Client, url string) {
	_, _ = c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
}
