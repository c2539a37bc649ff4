package demo

import (
	"context"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/devstack"
	"github.com/tierq/tierq/internal/emulator"
)

// Stack is the embedded AWS: kumo serving SQS and S3, and the Bedrock
// simulator, each on a loopback port, with real SDK clients pointed at them.
type Stack struct {
	SQS     *sqs.Client
	S3      *s3.Client
	Bedrock *bedrockruntime.Client
	Sim     *bedrocksim.Server

	stopKumo func()
	simSrv   *httptest.Server
}

// NewStack starts the emulators. kumo keeps one store per process, so callers
// give every queue and bucket a name of its own.
func NewStack(simCfg bedrocksim.Config) (*Stack, error) {
	sim, err := bedrocksim.New(simCfg)
	if err != nil {
		return nil, err
	}
	kumoURL, stopKumo := emulator.Start()
	st := &Stack{Sim: sim, stopKumo: stopKumo, simSrv: httptest.NewServer(sim)}
	st.SQS = emulator.SQS(kumoURL)
	st.S3 = emulator.S3(kumoURL)
	st.Bedrock = emulator.Bedrock(st.simSrv.URL)
	return st, nil
}

// Close stops the emulators.
func (st *Stack) Close() {
	st.simSrv.Close()
	st.stopKumo()
}

// Queues are a job queue and its dead-letter queue.
type Queues = devstack.Queues

// CreateQueues creates name and name-dlq, with a redrive policy sending a
// message to the dead-letter queue after maxReceive deliveries.
func (st *Stack) CreateQueues(ctx context.Context, name string, maxReceive int) (Queues, error) {
	return devstack.CreateQueues(ctx, st.SQS, name, maxReceive, devstack.DefaultQueueVisibility)
}

// CreateBuckets creates each bucket.
func (st *Stack) CreateBuckets(ctx context.Context, names ...string) error {
	return devstack.CreateBuckets(ctx, st.S3, names...)
}
