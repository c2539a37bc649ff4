package pipeline_test

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/testenv"
)

// The S3 behaviours results and claims depend on, on kumo: the same suite
// as the unit tests' fake runs against (TestFakeStoreBehavesLikeS3).
func TestKumoBehavesLikeS3(t *testing.T) {
	t.Parallel()
	c := emulator.S3(kumoURL)
	bucket := emulator.Name(t, "suite")
	createBucket(t, c, bucket)
	testenv.RunObjectStoreSuite(t, testenv.StoreBackend{Name: "kumo", Store: c, Bucket: bucket})
}

// The same suite against the endpoint AWS_ENDPOINT_URL_S3 names (LocalStack
// where Docker runs: AWS_ENDPOINT_URL_S3=http://localhost:4566), with the
// credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (test keys
// when unset, as LocalStack takes any); skipped when it is unset.
func TestEndpointBehavesLikeS3(t *testing.T) {
	endpoint := os.Getenv("AWS_ENDPOINT_URL_S3")
	if endpoint == "" {
		t.Skip("AWS_ENDPOINT_URL_S3 is not set: no external S3 endpoint to check")
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = emulator.Region
	}
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	if id := os.Getenv("AWS_ACCESS_KEY_ID"); id != "" {
		creds = credentials.NewStaticCredentialsProvider(id, os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
	}
	c := s3.New(s3.Options{Region: region, BaseEndpoint: aws.String(endpoint), Credentials: creds, UsePathStyle: true})
	bucket := emulator.Name(t, "tierq-suite")
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s on %s: %v", bucket, endpoint, err)
	}
	testenv.RunObjectStoreSuite(t, testenv.StoreBackend{Name: "endpoint", Store: c, Bucket: bucket})
}
