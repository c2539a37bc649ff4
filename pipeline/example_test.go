package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/jobv1"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
	"github.com/tierq/tierq/worker"
)

func ExampleParseJob() {
	_, err := jobv1.ParseJob([]byte(`{"version":"1","job_id":"ticket-7","task":"classify","text":"Refund please.","labels":["billing"]}`))
	// An invalid job still has a usable ID: it gets a failed result.
	fmt.Println(errors.Is(err, jobv1.ErrInvalidJob))
	fmt.Println(err)

	_, err = jobv1.ParseJob([]byte(`{"version":"1","job_id":"../../etc","task":"summarize","text":"x"}`))
	// A message without a usable job ID cannot get a result: it is dead-lettered.
	fmt.Println(errors.Is(err, jobv1.ErrBadJobID))
	// Output:
	// true
	// invalid job: labels: classify needs at least 2 labels
	// true
}

func ExampleResultKey() {
	fmt.Println(jobv1.ResultKey(pipeline.DefaultResultsPrefix, "ticket-7"))
	// Output: results/ticket-7.json
}

// ExamplePipeline_Process runs one job through the pipeline, with the Bedrock
// simulator and kumo standing in for Bedrock and S3. In production cmd/tierq
// builds the same Deps from the real AWS clients.
// exampleRuns numbers runs of ExamplePipeline_Process.
var exampleRuns atomic.Int64

func ExamplePipeline_Process() {
	ctx := context.Background()
	sim, err := bedrocksim.New(bedrocksim.DefaultConfig())
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	bedrock := bedrockruntime.New(bedrockruntime.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: creds,
		RetryMaxAttempts: 1, // the pipeline retries; see bedrock.md §2.3
	})
	store := emulator.S3(kumoURL)
	// kumo keeps one store per process: -count=N runs need a new bucket.
	bucket := fmt.Sprintf("example-results-%d", exampleRuns.Add(1))
	if _, err := store.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		panic(err)
	}

	p, err := pipeline.New(pipeline.Config{
		ResultsBucket: bucket,
		Tiers:         tiering.Default(),
	}, pipeline.Deps{
		Converser: bedrock,
		Store:     store,
		Limiter:   limiter.NewFixed(8, nil),
		Metrics:   io.Discard, // os.Stdout on ECS: one EMF line per job
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	body := `{"version":"1","job_id":"ticket-7","task":"classify",` +
		`"text":"Our billing shows a double charge on the last invoice.","labels":["billing","outage"]}`
	err = p.Process(ctx, worker.Message{ID: "m-1", Body: []byte(body), ReceiveCount: 1})
	fmt.Println("Process:", err)

	out, err := store.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(jobv1.ResultKey(pipeline.DefaultResultsPrefix, "ticket-7")),
	})
	if err != nil {
		panic(err)
	}
	defer out.Body.Close()
	var r jobv1.Result
	if err := json.NewDecoder(out.Body).Decode(&r); err != nil {
		panic(err)
	}
	fmt.Println(r.Status, r.Tier, r.Output.Text)
	// Output:
	// Process: <nil>
	// succeeded economy billing
}
