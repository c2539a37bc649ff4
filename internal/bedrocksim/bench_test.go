package bedrocksim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/internal/bedrocksim"
)

// BenchmarkConverseSDK measures Converse calls per second through the real SDK
// client over loopback HTTP at zero latency, so later benchmarks know the
// simulator is never their bottleneck. Client and simulator share the machine.
func BenchmarkConverseSDK(b *testing.B) {
	for _, bc := range []struct {
		name  string
		guard bool
	}{{"plain", false}, {"guardrail", true}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := bedrocksim.DefaultConfig()
			m := cfg.Models[micro]
			m.RPM, m.TPM = 0, 0 // unlimited: measure the simulator, not the quota
			cfg.Models[micro] = m
			sim, err := bedrocksim.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			client := bedrockruntime.New(bedrockruntime.Options{
				Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
				HTTPClient:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
			})
			in := &bedrockruntime.ConverseInput{
				ModelId:         aws.String(micro),
				System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Summarize the document."}},
				Messages:        guarded("Be brief.", doc),
				InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(200)},
			}
			if bc.guard {
				in.GuardrailConfig = guardrailConfig()
			}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Converse(context.Background(), in); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
