package demo

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/internal/bedrocksim"
)

// Options configure a demo run.
type Options struct {
	// Docs is a folder of .txt documents to send through the simulator.
	Docs string
	// Out is the folder the model outputs are written to.
	Out string
	// Model is the model ID every document goes to.
	Model string
}

// Run sends every document in opts.Docs through the Bedrock simulator with the
// default guardrail, using the real SDK client, writes each output to opts.Out
// and prints a summary to w.
func Run(ctx context.Context, opts Options, w io.Writer) error {
	files, err := filepath.Glob(filepath.Join(opts.Docs, "*.txt"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no .txt documents in %s", opts.Docs)
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	sim, err := bedrocksim.New(bedrocksim.DefaultConfig())
	if err != nil {
		return err
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	client := bedrockruntime.New(bedrockruntime.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("demo", "demo", ""),
	})

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOCUMENT\tSTOP REASON\tINPUT\tOUTPUT\tGUARDRAIL")
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		out, err := client.Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId: aws.String(opts.Model),
			System:  []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Summarize the document in a few sentences."}},
			Messages: []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{
				&types.ContentBlockMemberGuardContent{Value: &types.GuardrailConverseContentBlockMemberText{
					Value: types.GuardrailConverseTextBlock{Text: aws.String(string(text))}}},
			}}},
			InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(400)},
			GuardrailConfig: &types.GuardrailConfiguration{GuardrailIdentifier: aws.String(bedrocksim.DefaultGuardrailID),
				GuardrailVersion: aws.String("1"), Trace: types.GuardrailTraceEnabled},
		})
		if err != nil {
			return fmt.Errorf("converse %s: %w", filepath.Base(f), err)
		}
		answer := out.Output.(*types.ConverseOutputMemberMessage).Value.Content[0].(*types.ContentBlockMemberText).Value
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		if err := os.WriteFile(filepath.Join(opts.Out, name+".out.txt"), []byte(answer+"\n"), 0o644); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		verdict := "none"
		if out.Trace != nil && out.Trace.Guardrail != nil {
			verdict = guardrailVerdict(out.Trace.Guardrail)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", name, out.StopReason, *out.Usage.InputTokens, *out.Usage.OutputTokens, verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "\noutputs written to %s\n", opts.Out)
	return nil
}

func guardrailVerdict(tr *types.GuardrailTraceAssessment) string {
	var hits []string
	for _, a := range tr.InputAssessment {
		if a.SensitiveInformationPolicy != nil {
			for _, e := range a.SensitiveInformationPolicy.PiiEntities {
				hits = append(hits, fmt.Sprintf("%s %s", e.Type, e.Action))
			}
		}
	}
	if len(hits) == 0 {
		return "none"
	}
	return strings.Join(hits, ", ")
}
