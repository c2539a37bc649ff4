#!/bin/sh
# LocalStack ready hook: the queue with its dead-letter queue (redrive after 50
# receives: a safety net behind tierq's own failure policy, set high because
# throttled jobs are released and redelivered while a model is at its quota)
# and buckets.
set -eu
awslocal sqs create-queue --queue-name tierq-jobs-dlq >/dev/null
dlq_arn=$(awslocal sqs get-queue-attributes --queue-url http://localhost:4566/000000000000/tierq-jobs-dlq \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal sqs create-queue --queue-name tierq-jobs --attributes \
  "{\"VisibilityTimeout\":\"30\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":\\\"50\\\"}\"}" >/dev/null
awslocal s3 mb s3://tierq-results >/dev/null
awslocal s3 mb s3://tierq-inputs >/dev/null
echo "tierq: queues and buckets ready"
