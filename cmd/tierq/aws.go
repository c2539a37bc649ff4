package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tierq/tierq/internal/app"
)

// awsSettings are the few AWS client settings tierq exposes. Credentials and
// Region come only from the SDK's default chain (environment, shared config,
// ECS task role, IMDS); endpoints from AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> when set (emulators, VPC endpoints).
type awsSettings struct {
	// S3PathStyle addresses buckets as http://host/bucket: needed by LocalStack
	// and the embedded emulators, which do not resolve bucket subdomains.
	S3PathStyle bool
	// Log receives the SDK's own log lines (app.SDKLogger), so that a
	// command whose stderr is JSON stays JSON. Nil: the SDK's warnings as
	// JSON lines on stderr (sdkLogging), never its plain-text lines.
	Log *slog.Logger
}

type awsClients struct {
	// Config is the configuration the clients were made from, for a client
	// only one command needs (CloudWatch).
	Config  aws.Config
	SQS     *sqs.Client
	S3      *s3.Client
	Bedrock *bedrockruntime.Client
	// Region is the clients' Region; BedrockEndpoint the Bedrock Runtime
	// endpoint set in the environment, "" for the Region's own.
	Region, BedrockEndpoint string
}

func newAWSClients(ctx context.Context, s awsSettings) (awsClients, error) {
	cfg, err := loadAWSConfig(ctx, "", false, s.Log)
	if err != nil {
		return awsClients{}, err
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
	if endpoint == "" {
		endpoint = aws.ToString(cfg.BaseEndpoint)
	}
	return awsClients{
		Config: cfg,
		SQS:    sqs.NewFromConfig(cfg),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.UsePathStyle = s.S3PathStyle
		}),
		// The SDK must not retry Converse: tierq's own retry and limiter have
		// to see every throttle; a retried throttle is also counted again in
		// CloudWatch's InvocationThrottles (Bedrock's monitoring docs).
		Bedrock: bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
			o.RetryMaxAttempts = 1
		}),
		Region: cfg.Region, BedrockEndpoint: endpoint,
	}, nil
}

// sdkLogging routes the SDK's own log lines through log, or, for commands
// without a JSON log of their own (submit, status, redrive, result,
// sizing), through a JSON logger of warnings on stderr: the SDK's DEBUG
// chatter ("Response has no supported checksum" on emulators) is dropped
// and its warnings stay one JSON line each. ClientLogMode zero: the SDK
// logs no request or response (bodies would carry documents).
func sdkLogging(log *slog.Logger) []func(*config.LoadOptions) error {
	if log == nil {
		log = app.NewLogger(os.Stderr, slog.LevelWarn)
	}
	return []func(*config.LoadOptions) error{config.WithLogger(app.SDKLogger(log)), config.WithClientLogMode(aws.ClientLogMode(0))}
}

// loadAWSConfig loads the SDK's default configuration, in region when it is
// given, with the SDK's own log lines routed as sdkLogging says. regionFlag
// says the command has a --region flag, for the message when no Region is
// found.
func loadAWSConfig(ctx context.Context, region string, regionFlag bool, log *slog.Logger) (aws.Config, error) {
	opts := sdkLogging(log)
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" && regionFlag {
		return cfg, errors.New("no AWS Region: give --region, or set AWS_REGION (or a region in the shared config)")
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS Region: set AWS_REGION (or a region in the shared config)")
	}
	return cfg, nil
}
