package bedrocksim_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/testenv"
)

func jsonSchemaOutput(schema string) *types.OutputConfig {
	return &types.OutputConfig{TextFormat: &types.OutputFormat{
		Type: types.OutputFormatTypeJsonSchema,
		Structure: &types.OutputFormatStructureMemberJsonSchema{Value: types.JsonSchemaDefinition{
			Schema: aws.String(schema), Name: aws.String("answer"), Description: aws.String("the answer"),
		}},
	}}
}

func TestStructuredOutputIsValidAgainstTheSchema(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	tests := []struct {
		name   string
		schema string
		check  func(t *testing.T, v map[string]any)
	}{
		{"flat object", `{"type":"object","properties":{"title":{"type":"string"},"pages":{"type":"integer"},
			"score":{"type":"number"},"draft":{"type":"boolean"},"note":{"type":"null"}},
			"required":["title","pages","score","draft"],"additionalProperties":false}`, nil},
		{"enum and const take their first value", `{"type":"object","properties":{
			"category":{"type":"string","enum":["billing","outage","other"]},
			"version":{"const":"v1"},"priority":{"enum":[3,1,2]}},"required":["category","version","priority"]}`,
			func(t *testing.T, v map[string]any) {
				if v["category"] != "billing" || v["version"] != "v1" || v["priority"] != 3.0 {
					t.Errorf("got %v, want category billing, version v1, priority 3", v)
				}
			}},
		{"$ref to $defs", `{"type":"object","$defs":{"party":{"type":"object","properties":{
			"name":{"type":"string","minLength":10},"email":{"type":"string","format":"email"}},"required":["name","email"]}},
			"properties":{"buyer":{"$ref":"#/$defs/party"},"seller":{"$ref":"#/$defs/party"},
			"signed":{"type":"string","format":"date"}},"required":["buyer","seller","signed"]}`, nil},
		{"$ref to definitions (draft-07)", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
			"definitions":{"amount":{"type":"number","exclusiveMinimum":0,"maximum":1000}},
			"properties":{"total":{"$ref":"#/definitions/amount"}},"required":["total"]}`,
			func(t *testing.T, v map[string]any) {
				if v["total"] != 1.0 {
					t.Errorf("total = %v, want 1 (the least integer above the exclusive minimum 0)", v["total"])
				}
			}},
		{"arrays, bounds and nullable types", `{"type":"object","properties":{
			"tags":{"type":"array","items":{"type":"string","maxLength":2},"minItems":2},
			"pair":{"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}]},
			"rating":{"type":"integer","minimum":3,"maximum":5},
			"below":{"type":"number","maximum":-2.5},
			"maybe":{"type":["null","string"]}},
			"required":["tags","pair","rating","below","maybe"]}`, nil},
		{"anyOf and oneOf take their first branch", `{"type":"object","properties":{
			"id":{"anyOf":[{"type":"integer","minimum":7},{"type":"string"}]},
			"kind":{"oneOf":[{"const":"a"},{"const":"b"}]}},"required":["id","kind"]}`,
			func(t *testing.T, v map[string]any) {
				if v["id"] != 7.0 || v["kind"] != "a" {
					t.Errorf("got %v, want id 7 and kind a", v)
				}
			}},
		{"recursive schema ends", `{"$defs":{"node":{"type":"object","properties":{"label":{"type":"string"},
			"children":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["label"]}},"$ref":"#/$defs/node"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			compiled := testenv.CompileSchema(t, "schema.json", []byte(tt.schema))
			in := &bedrockruntime.ConverseInput{
				ModelId:         aws.String(sonnet),
				System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Extract the fields."}},
				Messages:        userText(doc),
				OutputConfig:    jsonSchemaOutput(tt.schema),
				InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(4000)},
			}
			out, err := client.Converse(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			got := text(t, out)
			if out.StopReason != types.StopReasonEndTurn {
				t.Errorf("stopReason %s, want end_turn", out.StopReason)
			}
			if err := testenv.Validate(compiled, []byte(got)); err != nil {
				t.Fatalf("answer %s is not valid against the schema: %v", got, err)
			}
			again, err := client.Converse(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if text(t, again) != got {
				t.Errorf("same request gave %s then %s", got, text(t, again))
			}
			if tt.check != nil {
				var v map[string]any
				if err := json.Unmarshal([]byte(got), &v); err != nil {
					t.Fatal(err)
				}
				tt.check(t, v)
			}
		})
	}
}

func TestStructuredOutputCutAtMaxTokensAndGuarded(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	schema := `{"type":"object","properties":{"summary":{"type":"string","minLength":200}},"required":["summary"]}`
	full, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String(haiku), Messages: userText(doc), OutputConfig: jsonSchemaOutput(schema)})
	if err != nil {
		t.Fatal(err)
	}
	cut, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String(haiku), Messages: userText(doc), OutputConfig: jsonSchemaOutput(schema),
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(10)}})
	if err != nil {
		t.Fatal(err)
	}
	if cut.StopReason != types.StopReasonMaxTokens || *cut.Usage.OutputTokens != 10 {
		t.Errorf("stopReason %s, %d output tokens; want max_tokens and 10", cut.StopReason, *cut.Usage.OutputTokens)
	}
	if !strings.HasPrefix(text(t, full), text(t, cut)) || json.Valid([]byte(text(t, cut))) {
		t.Errorf("cut answer %q: want a prefix of %q that is no longer valid JSON", text(t, cut), text(t, full))
	}

	// The guardrail still reads the answer: an e-mail in it is masked.
	out, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String(sonnet), Messages: userText("Who do I write to?"),
		OutputConfig:    jsonSchemaOutput(`{"type":"object","properties":{"contact":{"const":"write to jane@example.com"}},"required":["contact"]}`),
		GuardrailConfig: guardrailConfig(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, out); out.StopReason != types.StopReasonGuardrailIntervened || !strings.Contains(got, "{EMAIL}") {
		t.Errorf("answer %q, stopReason %s; want the e-mail masked and guardrail_intervened", got, out.StopReason)
	}
}

func TestStructuredOutputRejections(t *testing.T) {
	t.Parallel()
	_, client, _ := start(t, bedrocksim.DefaultConfig())
	tests := []struct {
		name   string
		model  string
		schema string
		want   []string
	}{
		{"model without structured outputs", micro, `{"type":"object"}`, []string{"not supported", micro}},
		{"Claude Sonnet 4 has none either", sonnet4, `{"type":"object"}`, []string{"not supported", sonnet4}},
		{"schema is not JSON", sonnet, `{"type":`, []string{"must be a JSON object"}},
		{"schema is not an object", sonnet, `["type"]`, []string{"must be a JSON object"}},
		{"schema is null", sonnet, `null`, []string{"must be a JSON object"}},
		{"remote $ref", sonnet, `{"$ref":"https://example.com/s.json"}`, []string{"not a local reference"}},
		{"required members that recurse widely", sonnet, `{"type":"object","properties":{"a":{"$ref":"#"},"b":{"$ref":"#"},"c":{"$ref":"#"}},
			"required":["a","b","c"]}`, []string{"more than 10000 values"}},
		{"an array of ten million", sonnet, `{"type":"array","minItems":1e7,"items":true}`, []string{"more than 10000 values"}},
		{"boolean items count too", sonnet, `{"type":"array","minItems":10000,"items":true}`, []string{"more than 10000 values"}},
		{"a string of a hundred million", sonnet, `{"type":"string","minLength":1e8}`, []string{"longer than 65536 characters"}},
		{"dangling $ref", sonnet, `{"type":"object","properties":{"a":{"$ref":"#/$defs/missing"}}}`, []string{"does not resolve", "properties.a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := client.Converse(context.Background(), &bedrockruntime.ConverseInput{
				ModelId: aws.String(tt.model), Messages: userText("hello"), OutputConfig: jsonSchemaOutput(tt.schema)})
			var ve *types.ValidationException
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want ValidationException", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(ve.ErrorMessage(), w) {
					t.Errorf("message %q does not contain %q", ve.ErrorMessage(), w)
				}
			}
		})
	}
}
