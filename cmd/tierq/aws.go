package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// awsSettings are the few AWS client settings tierq exposes. Credentials and
// Region come only from the SDK's default chain (environment, shared config,
// ECS task role, IMDS); endpoints from AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> when set (emulators, VPC endpoints).
type awsSettings struct {
	// S3PathStyle addresses buckets as http://host/bucket: needed by LocalStack
	// and the embedded emulators, which do not resolve bucket subdomains.
	S3PathStyle bool
}

type awsClients struct {
	SQS     *sqs.Client
	S3      *s3.Client
	Bedrock *bedrockruntime.Client
}

func newAWSClients(ctx context.Context, s awsSettings) (awsClients, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return awsClients{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return awsClients{}, fmt.Errorf("no AWS Region: set AWS_REGION (or a region in the shared config)")
	}
	return awsClients{
		SQS: sqs.NewFromConfig(cfg),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.UsePathStyle = s.S3PathStyle
		}),
		// The SDK must not retry Converse: tierq's own retry and limiter have
		// to see every throttle; a retried throttle is also counted again in
		// CloudWatch's InvocationThrottles (Bedrock's monitoring docs).
		Bedrock: bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
			o.RetryMaxAttempts = 1
		}),
	}, nil
}
