package bedrocksim

import (
	"encoding/json"
	"slices"
)

// The JSON shapes below are the restJson1 members of the Bedrock Runtime API
// that the simulator reads or writes (aws-sdk-go-v2 bedrockruntime schemas).
// Members it does not model are accepted and ignored, as json.Unmarshal does.

type converseRequest struct {
	Messages        []message        `json:"messages"`
	System          []contentBlock   `json:"system"`
	InferenceConfig *inferenceConfig `json:"inferenceConfig"`
	GuardrailConfig *guardrailConfig `json:"guardrailConfig"`
	// ServiceTier is kept raw so a malformed one ("serviceTier": "flex") is
	// a ValidationException that names it, not a generic decoding error.
	ServiceTier                  json.RawMessage `json:"serviceTier"`
	AdditionalModelRequestFields json.RawMessage `json:"additionalModelRequestFields"`
	OutputConfig                 *outputConfig   `json:"outputConfig"`
}

// outputConfig is OutputConfig; effort is accepted and ignored.
type outputConfig struct {
	TextFormat *struct {
		Type      string `json:"type"`
		Structure struct {
			JSONSchema *struct {
				Schema      *string `json:"schema"`
				Name        string  `json:"name"`
				Description string  `json:"description"`
			} `json:"jsonSchema"`
		} `json:"structure"`
	} `json:"textFormat"`
}

type serviceTier struct {
	Type string `json:"type"`
}

type countTokensRequest struct {
	Input struct {
		Converse *struct {
			Messages []message      `json:"messages"`
			System   []contentBlock `json:"system"`
		} `json:"converse"`
		InvokeModel *struct {
			Body []byte `json:"body"` // base64 on the wire
		} `json:"invokeModel"`
	} `json:"input"`
}

type message struct {
	Role    string         `json:"role"`
	Content []contentBlock `json:"content"`
}

// contentBlock is a union: exactly one member is set. Messages and system
// prompts share the members tierq uses (text, guardContent, cachePoint).
type contentBlock struct {
	Text         *string          `json:"text,omitempty"`
	GuardContent *guardContent    `json:"guardContent,omitempty"`
	CachePoint   *cachePointBlock `json:"cachePoint,omitempty"`
	Image        *json.RawMessage `json:"image,omitempty"`
	Document     *json.RawMessage `json:"document,omitempty"`
}

type guardContent struct {
	Text *guardText `json:"text"`
}

type guardText struct {
	Text       string   `json:"text"`
	Qualifiers []string `json:"qualifiers,omitempty"`
}

type cachePointBlock struct {
	Type string `json:"type"`
	TTL  string `json:"ttl"`
}

type inferenceConfig struct {
	MaxTokens     *int     `json:"maxTokens"`
	Temperature   *float64 `json:"temperature"`
	TopP          *float64 `json:"topP"`
	StopSequences []string `json:"stopSequences"`

	// unknown are members InferenceConfiguration does not have, which
	// Bedrock rejects (a serviceTier put here, for one).
	unknown []string
}

func (c *inferenceConfig) UnmarshalJSON(data []byte) error {
	type plain inferenceConfig
	if err := json.Unmarshal(data, (*plain)(c)); err != nil {
		return err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return err
	}
	for k := range members {
		switch k {
		case "maxTokens", "temperature", "topP", "stopSequences":
		default:
			c.unknown = append(c.unknown, k)
		}
	}
	slices.Sort(c.unknown)
	return nil
}

type guardrailConfig struct {
	GuardrailIdentifier string `json:"guardrailIdentifier"`
	GuardrailVersion    string `json:"guardrailVersion"`
	Trace               string `json:"trace"`
}

type converseResponse struct {
	Output     converseOutput `json:"output"`
	StopReason string         `json:"stopReason"`
	Usage      tokenUsage     `json:"usage"`
	Metrics    struct {
		LatencyMs int64 `json:"latencyMs"`
	} `json:"metrics"`
	Trace       *converseTrace `json:"trace,omitempty"`
	ServiceTier serviceTier    `json:"serviceTier"`
}

type converseOutput struct {
	Message struct {
		Role    string        `json:"role"`
		Content []textContent `json:"content"`
	} `json:"message"`
}

type textContent struct {
	Text string `json:"text"`
}

type tokenUsage struct {
	InputTokens           int           `json:"inputTokens"`
	OutputTokens          int           `json:"outputTokens"`
	TotalTokens           int           `json:"totalTokens"`
	CacheReadInputTokens  *int          `json:"cacheReadInputTokens,omitempty"`
	CacheWriteInputTokens *int          `json:"cacheWriteInputTokens,omitempty"`
	CacheDetails          []cacheDetail `json:"cacheDetails,omitempty"`
}

// cacheDetail is CacheDetail: the cache writes of one TTL.
type cacheDetail struct {
	TTL         string `json:"ttl"`
	InputTokens int    `json:"inputTokens"`
}

type converseTrace struct {
	Guardrail *guardrailTrace `json:"guardrail,omitempty"`
}

type guardrailTrace struct {
	ModelOutput       []string                 `json:"modelOutput,omitempty"`
	InputAssessment   map[string]*assessment   `json:"inputAssessment,omitempty"`
	OutputAssessments map[string][]*assessment `json:"outputAssessments,omitempty"`
	ActionReason      string                   `json:"actionReason,omitempty"`
}

type applyGuardrailRequest struct {
	Source  string `json:"source"`
	Content []struct {
		Text *guardText `json:"text"`
	} `json:"content"`
	OutputScope string `json:"outputScope"`
}

type applyGuardrailResponse struct {
	Usage             guardrailUsage     `json:"usage"`
	Action            string             `json:"action"`
	ActionReason      string             `json:"actionReason,omitempty"`
	Outputs           []textContent      `json:"outputs"`
	Assessments       []*assessment      `json:"assessments"`
	GuardrailCoverage *guardrailCoverage `json:"guardrailCoverage,omitempty"`
}

// assessment is GuardrailAssessment.
type assessment struct {
	TopicPolicy                *topicPolicy       `json:"topicPolicy,omitempty"`
	ContentPolicy              *contentPolicy     `json:"contentPolicy,omitempty"`
	WordPolicy                 *wordPolicy        `json:"wordPolicy,omitempty"`
	SensitiveInformationPolicy *sensitivePolicy   `json:"sensitiveInformationPolicy,omitempty"`
	InvocationMetrics          *invocationMetrics `json:"invocationMetrics,omitempty"`
}

type topicPolicy struct {
	Topics []topicHit `json:"topics"`
}

type topicHit struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Action   string `json:"action"`
	Detected bool   `json:"detected"`
}

type contentPolicy struct {
	Filters []contentFilterHit `json:"filters"`
}

type contentFilterHit struct {
	Type           string `json:"type"`
	Confidence     string `json:"confidence"`
	FilterStrength string `json:"filterStrength"`
	Action         string `json:"action"`
	Detected       bool   `json:"detected"`
}

type wordPolicy struct {
	CustomWords []wordHit `json:"customWords"`
}

type wordHit struct {
	Match    string `json:"match"`
	Action   string `json:"action"`
	Detected bool   `json:"detected"`
}

type sensitivePolicy struct {
	PIIEntities []piiHit `json:"piiEntities"`
}

type piiHit struct {
	Match    string `json:"match"`
	Type     string `json:"type"`
	Action   string `json:"action"`
	Detected bool   `json:"detected"`
}

type invocationMetrics struct {
	GuardrailProcessingLatency int64             `json:"guardrailProcessingLatency"`
	Usage                      guardrailUsage    `json:"usage"`
	GuardrailCoverage          guardrailCoverage `json:"guardrailCoverage"`
}

type guardrailUsage struct {
	TopicPolicyUnits                    int `json:"topicPolicyUnits"`
	ContentPolicyUnits                  int `json:"contentPolicyUnits"`
	WordPolicyUnits                     int `json:"wordPolicyUnits"`
	SensitiveInformationPolicyUnits     int `json:"sensitiveInformationPolicyUnits"`
	SensitiveInformationPolicyFreeUnits int `json:"sensitiveInformationPolicyFreeUnits"`
	ContextualGroundingPolicyUnits      int `json:"contextualGroundingPolicyUnits"`
}

func (u *guardrailUsage) add(o guardrailUsage) {
	u.TopicPolicyUnits += o.TopicPolicyUnits
	u.ContentPolicyUnits += o.ContentPolicyUnits
	u.WordPolicyUnits += o.WordPolicyUnits
	u.SensitiveInformationPolicyUnits += o.SensitiveInformationPolicyUnits
	u.SensitiveInformationPolicyFreeUnits += o.SensitiveInformationPolicyFreeUnits
	u.ContextualGroundingPolicyUnits += o.ContextualGroundingPolicyUnits
}

type guardrailCoverage struct {
	TextCharacters struct {
		Guarded int `json:"guarded"`
		Total   int `json:"total"`
	} `json:"textCharacters"`
}

type countTokensResponse struct {
	InputTokens int `json:"inputTokens"`
}
