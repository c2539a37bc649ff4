package iampolicy_test

import (
	"fmt"
	"strings"

	"github.com/tierq/tierq/internal/iampolicy"
	"github.com/tierq/tierq/tiering"
)

// One guarded tier on a US inference profile, a results bucket and one input
// bucket: what each statement grants (or denies) on what.
func ExampleGenerate() {
	policy, err := iampolicy.Generate(iampolicy.Config{
		Tiers: &tiering.Config{Tiers: []tiering.Tier{{
			Name:      "economy",
			ModelID:   "us.amazon.nova-micro-v1:0",
			Guardrail: tiering.GuardrailRef{ID: "gr1abc", Version: "3"},
		}}},
		QueueARN:      "arn:aws:sqs:us-east-1:123456789012:tierq-jobs",
		ResultsBucket: "tierq-results",
		InputBuckets:  []string{"tierq-inputs/incoming/"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range policy.Statement {
		fmt.Printf("%s %s %s\n", s.Effect, s.Sid, strings.Join(s.Action, ","))
		for _, r := range s.Resource {
			fmt.Println("   ", r)
		}
	}
	// Output:
	// Allow ReceiveJobs sqs:ChangeMessageVisibility,sqs:DeleteMessage,sqs:GetQueueAttributes,sqs:ReceiveMessage
	//     arn:aws:sqs:us-east-1:123456789012:tierq-jobs
	// Allow DeadLetterPoisonMessages sqs:GetQueueAttributes,sqs:SendMessage
	//     arn:aws:sqs:us-east-1:123456789012:tierq-jobs-dlq
	// Allow ReadAndWriteResults s3:GetObject,s3:PutObject
	//     arn:aws:s3:::tierq-results/results/*
	// Allow TellMissingResultsFromForbidden s3:ListBucket
	//     arn:aws:s3:::tierq-results
	// Allow ReadInputDocuments s3:GetObject
	//     arn:aws:s3:::tierq-inputs/incoming/*
	// Allow InvokeTierInferenceProfiles bedrock:InvokeModel
	//     arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0
	// Allow InvokeModelsThroughInferenceProfiles bedrock:InvokeModel
	//     arn:aws:bedrock:*::foundation-model/amazon.nova-micro-v1:0
	// Allow CountTokensForStartupChecks bedrock:CountTokens
	//     arn:aws:bedrock:*::foundation-model/amazon.nova-micro-v1:0
	//     arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0
	// Allow ApplyTierGuardrails bedrock:ApplyGuardrail
	//     arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1abc
	// Deny DenyInvokeWithoutTierGuardrail bedrock:InvokeModel
	//     *
	// Deny DenyBedrockAPIKeys bedrock-mantle:CallWithBearerToken,bedrock:CallWithBearerToken
	//     *
}
