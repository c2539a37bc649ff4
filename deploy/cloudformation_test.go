package deploy_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/deploy/cloudformation"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/iampolicy"
	"github.com/tierq/tierq/limiter"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
)

// deploy/cloudformation/tierq.yaml is rendered from tierq.yaml.tmpl: its
// guardrail is guardrail.yaml, its task role's worker policy is
// internal/iampolicy's output, its tiers file, per-model alarms and
// dashboard follow tiering/default.yaml. TestCloudFormationTemplateIsGenerated
// keeps the file equal to the rendering (-update rewrites it);
// TestCloudFormationTemplate checks the file itself.

const (
	templatePath = "deploy/cloudformation/tierq.yaml"
	// tiersDir is where the init container writes the tiers file and the
	// worker reads it (TIERQ_TIERS_FILE).
	tiersDir = "/etc/tierq-run"
)

// cfnSentinels are the placeholder values the worker policy is generated
// with, each standing for the CloudFormation expression the template puts
// in its place, most specific first (the ARNs contain the Region, account
// and partition placeholders).
var cfnSentinels = []struct{ value, expr string }{
	{"arn:aws:bedrock:REGION:ACCOUNT_ID:guardrail/GUARDRAIL_ID:99999999", "${Guardrail.GuardrailArn}:${GuardrailVersion.Version}"},
	{"arn:aws:bedrock:REGION:ACCOUNT_ID:guardrail/GUARDRAIL_ID", "${Guardrail.GuardrailArn}"},
	{"arn:aws:sqs:REGION:ACCOUNT_ID:TIERQ_JOBS", "${Queue.Arn}"},
	{"arn:aws:sqs:REGION:ACCOUNT_ID:TIERQ_DEAD_LETTERS", "${DeadLetterQueue.Arn}"},
	{"RESULTS_BUCKET", "${ResultsBucket}"},
	{"INPUT_BUCKET", "${InputBucket}"},
	{"arn:aws:", "arn:${AWS::Partition}:"},
	{"REGION", "${AWS::Region}"},
	{"ACCOUNT_ID", "${AWS::AccountId}"},
}

// stackTiers are the shipped tiers with every guardrail reference pointed at
// the stack's guardrail: id and version become id and version, which the
// policy's sentinels and the tiers file's ${...} stand for.
func stackTiers(t *testing.T, id, version string) *tiering.Config {
	t.Helper()
	tiers := tiering.Default()
	for i, tier := range tiers.Tiers {
		if tier.Guardrail.ID != bedrocksim.DefaultGuardrailID {
			t.Fatalf("tier %s uses guardrail %q; the stack deploys one guardrail, %s (deploy/cloudformation/guardrail.yaml)",
				tier.Name, tier.Guardrail.ID, bedrocksim.DefaultGuardrailID)
		}
		tiers.Tiers[i].Guardrail = tiering.GuardrailRef{ID: id, Version: version}
	}
	return tiers
}

// stackPolicy is the generator's policy for the stack's resources, with
// sentinel names.
func stackPolicy(t *testing.T) iampolicy.Policy {
	t.Helper()
	p, err := iampolicy.Generate(iampolicy.Config{
		Tiers:              stackTiers(t, "GUARDRAIL_ID", "99999999"),
		QueueARN:           "arn:aws:sqs:REGION:ACCOUNT_ID:TIERQ_JOBS",
		DeadLetterQueueARN: "arn:aws:sqs:REGION:ACCOUNT_ID:TIERQ_DEAD_LETTERS",
		ResultsBucket:      "RESULTS_BUCKET",
		InputBuckets:       []string{"INPUT_BUCKET"},
	})
	if err != nil {
		t.Fatalf("generate the stack's worker policy: %v", err)
	}
	return p
}

// cfnValue writes s as a YAML scalar: !Sub where it names stack values.
func cfnValue(t *testing.T, s string) string {
	t.Helper()
	if strings.Contains(s, "${") {
		t.Fatalf("generator output %q already holds ${: it would be read as a substitution", s)
	}
	for _, r := range cfnSentinels {
		s = strings.ReplaceAll(s, r.value, r.expr)
	}
	if strings.Contains(s, "GUARDRAIL_ID") || strings.Contains(s, "99999999") {
		t.Fatalf("%q: a guardrail sentinel is left; the generator wrote the guardrail in a form cfnSentinels does not know", s)
	}
	if strings.Contains(s, "${") {
		return "!Sub " + strconv.Quote(s)
	}
	return strconv.Quote(s)
}

// policyYAML renders the statements as YAML list items at indent.
func policyYAML(t *testing.T, p iampolicy.Policy, indent int) string {
	var b strings.Builder
	pad := strings.Repeat(" ", indent)
	list := func(in string, key string, vals []string) {
		fmt.Fprintf(&b, "%s%s:\n", in, key)
		for _, v := range vals {
			fmt.Fprintf(&b, "%s  - %s\n", in, cfnValue(t, v))
		}
	}
	for _, s := range p.Statement {
		fmt.Fprintf(&b, "%s- Sid: %s\n%s  Effect: %s\n", pad, s.Sid, pad, s.Effect)
		list(pad+"  ", "Action", s.Action)
		list(pad+"  ", "Resource", s.Resource)
		if len(s.Condition) > 0 {
			fmt.Fprintf(&b, "%s  Condition:\n", pad)
			for _, op := range slices.Sorted(maps.Keys(s.Condition)) {
				fmt.Fprintf(&b, "%s    %s:\n", pad, op)
				for _, k := range slices.Sorted(maps.Keys(s.Condition[op])) {
					list(pad+"      ", strconv.Quote(k), s.Condition[op][k])
				}
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// tiersYAML is tiering/default.yaml without comments, its guardrails the
// stack's, escaped for !Sub and indented.
func tiersYAML(t *testing.T, indent int) string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(tiering.DefaultYAML(), &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		n.HeadComment, n.LineComment, n.FootComment = "", "", ""
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "guardrail" && v.Kind == yaml.MappingNode && len(v.Content) == 4 &&
					v.Content[0].Value == "id" && v.Content[2].Value == "version" {
					v.Content[1].Value = "${Guardrail.GuardrailId}"
					v.Content[3].Value = "${GuardrailVersion.Version}"
					v.Content[3].Style = yaml.DoubleQuotedStyle
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// Everything but the guardrail references is literal text for !Sub.
	out = strings.ReplaceAll(out, "${", "${!")
	out = strings.ReplaceAll(out, "${!Guardrail.GuardrailId}", "${Guardrail.GuardrailId}")
	out = strings.ReplaceAll(out, "${!GuardrailVersion.Version}", "${GuardrailVersion.Version}")
	return indentLines(strings.TrimRight(out, "\n"), indent)
}

func indentLines(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

type cfnModel struct {
	ID, Logical, MetricID, Tiers string
}

type cfnTier struct{ Name, MetricID string }

// stackModels are the tiers' models and fallback models, each once.
func stackModels() []cfnModel {
	var out []cfnModel
	byID := map[string]int{}
	for _, tier := range tiering.Default().Tiers {
		for _, id := range tier.Models() {
			if i, ok := byID[id]; ok {
				out[i].Tiers += ", " + tier.Name
				continue
			}
			byID[id] = len(out)
			out = append(out, cfnModel{ID: id, Logical: logicalID(id), MetricID: fmt.Sprintf("m%d", len(out)), Tiers: tier.Name})
		}
	}
	return out
}

// logicalID turns a model ID into a CloudFormation logical ID suffix.
func logicalID(id string) string {
	var b strings.Builder
	up := true
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z':
			if up {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			up = false
		case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			up = false
		default:
			up = true
		}
	}
	return b.String()
}

// dashboard is the CloudWatch dashboard body: queue, tasks, and tierq's EMF
// metrics per tier (job lines) and per model (call and limiter lines).
func dashboard(t *testing.T, ns string, models []cfnModel, tiers []cfnTier) string {
	t.Helper()
	type widget = map[string]any
	var widgets []widget
	add := func(title, stat string, period int, metrics [][]any) {
		x := (len(widgets) % 2) * 12
		y := (len(widgets) / 2) * 6
		widgets = append(widgets, widget{"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
			"properties": map[string]any{"title": title, "region": "${AWS::Region}", "view": "timeSeries",
				"stat": stat, "period": period, "metrics": metrics}})
	}
	// perTier and perModel give one series per tier or model, labelled
	// with it and what (the metric name unless given).
	perTier := func(name string, what ...string) [][]any {
		var m [][]any
		for _, tier := range tiers {
			m = append(m, []any{ns, name, "Tier", tier.Name, map[string]any{"label": tier.Name + " " + cmp.Or(strings.Join(what, ""), name)}})
		}
		return m
	}
	perModel := func(namespace, name string) [][]any {
		var m [][]any
		for _, model := range models {
			m = append(m, []any{namespace, name, "ModelId", model.ID, map[string]any{"label": model.ID + " " + name}})
		}
		return m
	}
	queue := func(name, q, label string) []any {
		return []any{"AWS/SQS", name, "QueueName", "${" + q + ".QueueName}", map[string]any{"label": label}}
	}
	add("Queue", "Maximum", 60, [][]any{
		queue("ApproximateNumberOfMessagesVisible", "Queue", "waiting"),
		queue("ApproximateNumberOfMessagesNotVisible", "Queue", "in flight"),
		queue("ApproximateNumberOfMessagesVisible", "DeadLetterQueue", "dead letters"),
	})
	add("Oldest waiting job (s)", "Maximum", 60, [][]any{queue("ApproximateAgeOfOldestMessage", "Queue", "age")})
	add("Tasks", "Average", 60, [][]any{
		{"ECS/ContainerInsights", "RunningTaskCount", "ClusterName", "${Cluster}", "ServiceName", "${Service.Name}", map[string]any{"label": "running"}},
		{"ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", "${Cluster}", "ServiceName", "${Service.Name}", map[string]any{"label": "desired"}},
	})
	add("Jobs per tier", "SampleCount", 300, perTier("CostUSD", "jobs"))
	add("Cost per tier (USD per hour)", "Sum", 3600, perTier("CostUSD"))
	add("Tokens per tier", "Sum", 300, append(perTier("InputTokens"), perTier("OutputTokens")...))
	add("Model time per job, p90 (ms)", "p90", 300, perTier("LatencyMs"))
	add("Throttles and guardrail interventions per tier", "Sum", 300, append(perTier("Throttles"), perTier("GuardrailInterventions")...))
	add("Cost per model (USD per hour)", "Sum", 3600, perModel(ns, "CostUSD"))
	add("Tokens per model", "Sum", 300, slices.Concat(perModel(ns, "InputTokens"), perModel(ns, "OutputTokens"),
		perModel(ns, "CacheReadInputTokens"), perModel(ns, "CacheWriteInputTokens")))
	add("Limiter per model", "Maximum", 60, slices.Concat(perModel(ns, "ConcurrencyLimit"), perModel(ns, "InFlight"), perModel(ns, "Waiting")))
	add("Throttles per model: Bedrock (all callers) and tierq's", "Sum", 60, append(perModel("AWS/Bedrock", "InvocationThrottles"), perModel(ns, "Throttles")...))
	add("Worker errors and failed jobs", "Sum", 300, [][]any{{ns, "WorkerErrors"}, {ns, "FailedJobs"}})
	// Compact: the template must stay under the 51,200 bytes that
	// CloudFormation takes without an S3 bucket.
	b, err := json.Marshal(map[string]any{"widgets": widgets})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// renderTemplate renders tierq.yaml.tmpl.
func renderTemplate(t *testing.T) []byte {
	t.Helper()
	tmpl, err := template.New("tierq.yaml.tmpl").ParseFiles(filepath.Join("cloudformation", "tierq.yaml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	cd := taskContainer(t)
	drain := cd.env()["TIERQ_DRAIN_TIMEOUT"]
	ns := pipeline.DefaultMetricsNamespace
	models := stackModels()
	var tiers []cfnTier
	var throttles, costs []string
	for _, m := range models {
		throttles = append(throttles, "FILL("+m.MetricID+", 0)")
	}
	for i, tier := range tiering.Default().Tiers {
		id := fmt.Sprintf("c%d", i)
		tiers = append(tiers, cfnTier{Name: tier.Name, MetricID: id})
		costs = append(costs, "FILL("+id+", 0)")
	}
	for i := range models {
		models[i].ID = strconv.Quote(models[i].ID)
	}
	policy := stackPolicy(t)
	data := map[string]any{
		"Guardrail":        indentLines(strings.TrimRight(string(cloudformation.GuardrailYAML), "\n"), 4),
		"PolicyVersion":    policy.Version,
		"PolicyStatements": policyYAML(t, policy, 14),
		"TiersYAML":        tiersYAML(t, 16),
		"TiersDir":         tiersDir,
		"ResultsPrefix":    pipeline.DefaultResultsPrefix,
		"Namespace":        ns,
		"StopTimeout":      cd.StopTimeout,
		"Drain":            strconv.Quote(drain),
		"Models":           models,
		"Tiers":            tiers,
		"ThrottleSum":      strings.Join(throttles, " + "),
		"CostSum":          strings.Join(costs, " + "),
		"Dashboard":        indentLines(dashboard(t, ns, stackModels(), tiers), 8),
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCloudFormationTemplateIsGenerated(t *testing.T) {
	want := renderTemplate(t)
	if *update {
		if err := os.WriteFile(filepath.Join("..", templatePath), want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got := read(t, templatePath)
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the rendering of tierq.yaml.tmpl with guardrail.yaml, tiering/default.yaml and internal/iampolicy's policy%s; regenerate it:\n\n  go test ./deploy -run TestCloudFormation -update",
			templatePath, firstDiff(got, want))
	}
}

// firstDiff names the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf(" (line %d: %q, want %q)", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf(" (%d lines, want %d)", len(g), len(w))
}

// cfnTemplate is the parsed template: its top-level sections as nodes.
type cfnTemplate struct {
	root       *yaml.Node
	parameters map[string]*yaml.Node
	conditions map[string]*yaml.Node
	resources  map[string]*yaml.Node
}

func parseTemplate(t *testing.T, data []byte) *cfnTemplate {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", templatePath, err)
	}
	c := &cfnTemplate{root: doc.Content[0]}
	section := func(name string) map[string]*yaml.Node {
		out := map[string]*yaml.Node{}
		if n := get(c.root, name); n != nil {
			for i := 0; i+1 < len(n.Content); i += 2 {
				out[n.Content[i].Value] = n.Content[i+1]
			}
		}
		return out
	}
	c.parameters, c.conditions, c.resources = section("Parameters"), section("Conditions"), section("Resources")
	return c
}

// get follows mapping keys; nil when one is missing.
func get(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// decode turns a node into plain Go values, intrinsic tags dropped
// (!Ref X reads as "X").
func decode(t *testing.T, n *yaml.Node) any {
	t.Helper()
	var v any
	if err := n.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func (c *cfnTemplate) resourcesOf(typ string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for name, r := range c.resources {
		if get(r, "Type").Value == typ {
			out[name] = r
		}
	}
	return out
}

// pseudoParameters are CloudFormation's own names.
var pseudoParameters = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true, "AWS::Partition": true,
	"AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true, "AWS::URLSuffix": true,
}

// getAtts are the attributes the template may read of each resource type
// (CloudFormation reference, "Return values").
var getAtts = map[string][]string{
	"AWS::SQS::Queue":                             {"Arn", "QueueName", "QueueUrl"},
	"AWS::S3::Bucket":                             {"Arn", "DomainName", "RegionalDomainName"},
	"AWS::Bedrock::Guardrail":                     {"GuardrailArn", "GuardrailId", "Version", "Status", "CreatedAt", "UpdatedAt"},
	"AWS::Bedrock::GuardrailVersion":              {"GuardrailArn", "GuardrailId", "Version"},
	"AWS::IAM::Role":                              {"Arn", "RoleId"},
	"AWS::ECS::Cluster":                           {"Arn"},
	"AWS::ECS::Service":                           {"Name", "ServiceArn"},
	"AWS::Logs::LogGroup":                         {"Arn"},
	"AWS::EC2::SecurityGroup":                     {"GroupId", "VpcId"},
	"AWS::SNS::Topic":                             {"TopicArn", "TopicName"},
	"AWS::ECS::TaskDefinition":                    {"TaskDefinitionArn"},
	"AWS::ApplicationAutoScaling::ScalableTarget": {"Id"},
}

var subRefRE = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// references checks that every Ref, GetAtt, Sub variable, If condition and
// resource Condition names something the template defines, and returns what
// was referred to.
func (c *cfnTemplate) references(t *testing.T) map[string]bool {
	t.Helper()
	used := map[string]bool{}
	resolve := func(where, name string, locals map[string]bool) {
		used[name] = true
		if _, ok := c.parameters[name]; ok || pseudoParameters[name] || locals[name] {
			return
		}
		if _, ok := c.resources[name]; ok {
			return
		}
		t.Errorf("line %s: %q is not a parameter, resource or pseudo parameter", where, name)
	}
	getAtt := func(where, res, attr string) {
		used[res] = true
		r, ok := c.resources[res]
		if !ok {
			t.Errorf("line %s: GetAtt of %q, which is not a resource", where, res)
			return
		}
		typ := get(r, "Type").Value
		if attrs, known := getAtts[typ]; !known || !slices.Contains(attrs, attr) {
			t.Errorf("line %s: %s.%s: %s has no attribute %q the test knows (known: %v)", where, res, attr, typ, attr, attrs)
		}
	}
	sub := func(where, s string, locals map[string]bool) {
		for _, m := range subRefRE.FindAllStringSubmatch(s, -1) {
			name := m[1]
			if res, attr, ok := strings.Cut(name, "."); ok && !pseudoParameters[name] {
				getAtt(where, res, attr)
				continue
			}
			resolve(where, name, locals)
		}
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		where := strconv.Itoa(n.Line)
		switch n.Tag {
		case "!Ref":
			resolve(where, n.Value, nil)
		case "!GetAtt":
			parts := strings.SplitN(n.Value, ".", 2)
			if n.Kind == yaml.SequenceNode && len(n.Content) == 2 {
				parts = []string{n.Content[0].Value, n.Content[1].Value}
			}
			if len(parts) != 2 {
				t.Errorf("line %s: GetAtt %q is not RESOURCE.ATTRIBUTE", where, n.Value)
			} else {
				getAtt(where, parts[0], parts[1])
			}
		case "!Sub":
			if n.Kind == yaml.ScalarNode {
				sub(where, n.Value, nil)
			} else if n.Kind == yaml.SequenceNode && len(n.Content) == 2 {
				locals := map[string]bool{}
				for i := 0; i < len(n.Content[1].Content); i += 2 {
					locals[n.Content[1].Content[i].Value] = true
				}
				sub(where, n.Content[0].Value, locals)
				walk(n.Content[1])
			}
			return
		case "!If":
			if len(n.Content) != 3 {
				t.Errorf("line %s: If needs a condition and two values", where)
			} else if _, ok := c.conditions[n.Content[0].Value]; !ok {
				t.Errorf("line %s: If on %q, which is not a condition", where, n.Content[0].Value)
			} else {
				used[n.Content[0].Value] = true
			}
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "Ref" {
					resolve(where, n.Content[i+1].Value, nil)
				}
				if strings.HasPrefix(n.Content[i].Value, "Fn::") {
					t.Errorf("line %d: %s: use the short form (!Ref, !Sub, ...), which this test checks", n.Content[i].Line, n.Content[i].Value)
				}
			}
		}
		for _, ch := range n.Content {
			walk(ch)
		}
	}
	walk(get(c.root, "Conditions"))
	walk(get(c.root, "Resources"))
	walk(get(c.root, "Outputs"))
	for name, r := range c.resources {
		if d := get(r, "DependsOn"); d != nil {
			t.Errorf("resource %s: DependsOn; let references order the resources", name)
		}
		if cond := get(r, "Condition"); cond != nil {
			if _, ok := c.conditions[cond.Value]; !ok {
				t.Errorf("line %d: resource %s: Condition %q is not defined", cond.Line, name, cond.Value)
			}
			used[cond.Value] = true
		}
		if get(r, "Type") == nil || get(r, "Properties") == nil && get(r, "Type").Value != "AWS::SNS::Topic" {
			t.Errorf("resource %s: needs a Type and Properties", name)
		}
	}
	return used
}

// evalSub evaluates a !Sub string with vars, failing on a variable it lacks.
func evalSub(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return subRefRE.ReplaceAllStringFunc(s, func(m string) string {
		v, ok := vars[m[2:len(m)-1]]
		if !ok {
			t.Errorf("%q: no value for %s in the policy check", s, m)
		}
		return v
	})
}

// evalNode is a node as plain values, !Sub strings evaluated with vars.
func evalNode(t *testing.T, n *yaml.Node, vars map[string]string) any {
	t.Helper()
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = evalNode(t, n.Content[i+1], vars)
		}
		return out
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			out = append(out, evalNode(t, c, vars))
		}
		return out
	}
	if n.Tag == "!Sub" {
		return evalSub(t, n.Value, vars)
	}
	if n.Tag != "!!str" && strings.HasPrefix(n.Tag, "!") {
		t.Errorf("line %d: %s in the worker policy; only !Sub is expected", n.Line, n.Tag)
	}
	return n.Value
}

// container finds a container definition of the task definition by name.
func (c *cfnTemplate) container(t *testing.T, name string) *yaml.Node {
	t.Helper()
	for _, cd := range get(c.resources["TaskDefinition"], "Properties", "ContainerDefinitions").Content {
		if get(cd, "Name").Value == name {
			return cd
		}
	}
	t.Fatalf("task definition has no container %q", name)
	return nil
}

// env is a container's environment by name (values as written).
func env(n *yaml.Node) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for _, e := range get(n, "Environment").Content {
		out[get(e, "Name").Value] = get(e, "Value")
	}
	return out
}

func TestCloudFormationTemplate(t *testing.T) {
	data := read(t, templatePath)
	c := parseTemplate(t, data)
	// aws cloudformation deploy sends a template up to 51,200 bytes in the
	// request; a larger one needs --s3-bucket, which README's one command
	// does not have.
	if len(data) > 51200 {
		t.Errorf("%s is %d bytes, above the 51,200 CloudFormation takes without an S3 bucket", templatePath, len(data))
	}

	t.Run("references resolve", func(t *testing.T) {
		// Ref looks names up in parameters and resources alike.
		for name := range c.parameters {
			if _, ok := c.resources[name]; ok {
				t.Errorf("%s is both a parameter and a resource: logical IDs must be unique", name)
			}
		}
		// The console shows parameters by group: each exactly once, under a
		// label that is one string (a comma in a flow mapping splits it).
		grouped := map[string]int{}
		for _, g := range get(c.root, "Metadata", "AWS::CloudFormation::Interface", "ParameterGroups").Content {
			if label := get(g, "Label"); len(label.Content) != 2 || get(label, "default").Kind != yaml.ScalarNode {
				t.Errorf("line %d: parameter group label %v: want {default: TEXT}", label.Line, decode(t, label))
			}
			for _, p := range get(g, "Parameters").Content {
				grouped[p.Value]++
			}
		}
		for name := range c.parameters {
			if grouped[name] != 1 {
				t.Errorf("parameter %s is in %d parameter groups, want 1", name, grouped[name])
			}
		}
		for name := range grouped {
			if _, ok := c.parameters[name]; !ok {
				t.Errorf("parameter group lists %s, which is not a parameter", name)
			}
		}
		used := c.references(t)
		for name := range c.parameters {
			if !used[name] {
				t.Errorf("parameter %s is never used", name)
			}
		}
		for name := range c.conditions {
			if !used[name] {
				t.Errorf("condition %s is never used", name)
			}
		}
	})

	t.Run("worker container agrees with the task definition, compose and the binary", func(t *testing.T) {
		w := c.container(t, "worker")
		shipped := taskContainer(t)
		got := env(w)
		if want := slices.Sorted(maps.Keys(shipped.env())); !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
			t.Errorf("worker environment %v, want the names of deploy/ecs-task-definition.json %v", slices.Sorted(maps.Keys(got)), want)
		}
		src := cmdSource(t)
		for name := range got {
			if strings.HasPrefix(name, "TIERQ_") && !strings.Contains(src, `"`+name+`"`) {
				t.Errorf("the template sets %s, which cmd/tierq never reads", name)
			}
		}
		var compose compose
		if err := yaml.Unmarshal(read(t, "docker-compose.yml"), &compose); err != nil {
			t.Fatal(err)
		}
		cw := compose.Services["worker"]
		for _, name := range []string{"TIERQ_QUEUE_URL", "TIERQ_DLQ_URL", "TIERQ_RESULTS_BUCKET", "TIERQ_INPUT_BUCKETS", "TIERQ_TIERS_FILE"} {
			if _, ok := got[name]; !ok {
				t.Errorf("the template's worker does not set %s", name)
			}
			if _, ok := cw.Environment[name]; !ok {
				t.Errorf("docker-compose's worker does not set %s, which the template sets", name)
			}
		}
		if cmd := decode(t, get(w, "Command")); !reflect.DeepEqual(cmd, []any{"worker"}) || !slices.Equal(cw.Command, []string{"worker"}) || !slices.Equal(shipped.Command, []string{"worker"}) {
			t.Errorf("commands: template %v, compose %v, task definition %v; want [worker] everywhere", cmd, cw.Command, shipped.Command)
		}
		// The worker listens on no port: nothing to map, nothing to let in.
		if get(w, "PortMappings") != nil || len(cw.Ports) > 0 || get(c.resources["SecurityGroup"], "Properties", "SecurityGroupIngress") != nil {
			t.Error("the worker listens on no port: no PortMappings, compose ports or security group ingress")
		}

		drain, err := time.ParseDuration(got["TIERQ_DRAIN_TIMEOUT"].Value)
		if err != nil {
			t.Fatalf("TIERQ_DRAIN_TIMEOUT: %v", err)
		}
		stop, _ := strconv.Atoi(get(w, "StopTimeout").Value)
		if time.Duration(stop)*time.Second <= drain || stop > 120 {
			t.Errorf("StopTimeout %ds must exceed the drain window %s (ECS kills jobs mid-drain otherwise) and be at most Fargate's 120 s", stop, drain)
		}
		if stop != shipped.StopTimeout || got["TIERQ_DRAIN_TIMEOUT"].Value != shipped.env()["TIERQ_DRAIN_TIMEOUT"] {
			t.Errorf("StopTimeout %d and drain %s differ from deploy/ecs-task-definition.json's %d and %s",
				stop, got["TIERQ_DRAIN_TIMEOUT"].Value, shipped.StopTimeout, shipped.env()["TIERQ_DRAIN_TIMEOUT"])
		}
		if get(w, "ReadonlyRootFilesystem").Value != "true" {
			t.Error("worker ReadonlyRootFilesystem: want true, as in deploy/ecs-task-definition.json")
		}
		if img := get(w, "Image"); img.Tag != "!Ref" || img.Value != "ImageUri" {
			t.Errorf("worker image %s %q, want !Ref ImageUri", img.Tag, img.Value)
		}
		pattern := regexp.MustCompile(get(c.parameters["ImageUri"], "AllowedPattern").Value)
		for uri, ok := range map[string]bool{
			"123456789012.dkr.ecr.us-east-1.amazonaws.com/tierq@sha256:" + strings.Repeat("ab", 32): true,
			"123456789012.dkr.ecr.us-east-1.amazonaws.com/tierq:latest":                             false,
			"tierq:1.2@sha256:" + strings.Repeat("ab", 32):                                          true, // a tag beside the digest is ignored by ECS
			"tierq@sha256:abc": false,
		} {
			if pattern.MatchString(uri) != ok {
				t.Errorf("ImageUri %q: allowed %v, want %v (pin images by digest)", uri, !ok, ok)
			}
		}
		// The tiers file the worker reads is the one the init container writes.
		tiers := c.container(t, "tiers")
		file := got["TIERQ_TIERS_FILE"].Value
		if !strings.Contains(decode(t, get(tiers, "Command")).([]any)[2].(string), "> "+file) ||
			get(tiers, "Essential").Value != "false" {
			t.Errorf("the tiers container must write %s and exit (Essential false)", file)
		}
		dep := decode(t, get(w, "DependsOn"))
		if !reflect.DeepEqual(dep, []any{map[string]any{"ContainerName": "tiers", "Condition": "SUCCESS"}}) {
			t.Errorf("worker DependsOn %v: want the tiers container to have succeeded", dep)
		}
	})

	t.Run("tiers file is the shipped tiers with the stack's guardrail", func(t *testing.T) {
		value := env(c.container(t, "tiers"))["TIERS_YAML"]
		if value.Tag != "!Sub" {
			t.Fatalf("TIERS_YAML is %s, want !Sub", value.Tag)
		}
		text := evalSub(t, value.Value, map[string]string{"Guardrail.GuardrailId": "abc123xyz", "GuardrailVersion.Version": "7"})
		text = strings.ReplaceAll(text, "${!", "${")
		got, err := tiering.Load([]byte(text))
		if err != nil {
			t.Fatalf("the tiers file the stack writes does not load: %v", err)
		}
		if want := stackTiers(t, "abc123xyz", "7"); !reflect.DeepEqual(got, want) {
			t.Error("the stack's tiers file differs from tiering/default.yaml beyond the guardrail")
		}
	})

	t.Run("task role grants what tierq iam-policy prints", func(t *testing.T) {
		var doc *yaml.Node
		for _, p := range get(c.resources["TaskRole"], "Properties", "Policies").Content {
			if get(p, "PolicyName").Value == "worker" {
				doc = get(p, "PolicyDocument")
			}
		}
		if doc == nil {
			t.Fatal("TaskRole has no policy named worker")
		}
		vars := map[string]string{}
		for _, s := range cfnSentinels {
			if strings.Count(s.expr, "${") == 1 && strings.HasPrefix(s.expr, "${") && strings.HasSuffix(s.expr, "}") {
				vars[s.expr[2:len(s.expr)-1]] = s.value
			}
		}
		vars["AWS::Partition"], vars["GuardrailVersion.Version"] = "aws", "99999999"
		got, _ := json.Marshal(evalNode(t, doc, vars))
		want, _ := json.Marshal(stackPolicy(t))
		var g, w any
		_ = json.Unmarshal(got, &g)
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("the worker policy differs from internal/iampolicy's for this stack:\n got %s\nwant %s", got, want)
		}
		// Task protection goes through the agent, with the task role.
		prot := decode(t, get(c.resources["TaskRole"], "Properties", "Policies"))
		if !strings.Contains(fmt.Sprint(prot), "ecs:UpdateTaskProtection") {
			t.Error("TaskRole does not allow ecs:UpdateTaskProtection, which task scale-in protection needs")
		}
	})

	t.Run("guardrail is the shared definition", func(t *testing.T) {
		var def yaml.Node
		if err := yaml.Unmarshal(cloudformation.GuardrailYAML, &def); err != nil {
			t.Fatal(err)
		}
		got, want := decode(t, c.resources["Guardrail"]), decode(t, def.Content[0])
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the Guardrail resource differs from deploy/cloudformation/guardrail.yaml:\n got %v\nwant %v", got, want)
		}
		if _, skipped, err := bedrocksim.ParseGuardrailDefinition(cloudformation.GuardrailYAML); err != nil || len(skipped) > 0 {
			t.Errorf("the simulator does not simulate the deployed guardrail fully: %v %v", err, skipped)
		}
		gv := get(c.resources["GuardrailVersion"], "Properties", "GuardrailIdentifier")
		if gv.Tag != "!GetAtt" || gv.Value != "Guardrail.GuardrailId" {
			t.Errorf("GuardrailVersion publishes %s %s, want !GetAtt Guardrail.GuardrailId", gv.Tag, gv.Value)
		}
	})

	t.Run("queue, buckets and redrive", func(t *testing.T) {
		init := string(read(t, "deploy/localstack/init.sh"))
		m := regexp.MustCompile(`maxReceiveCount\\+":\\+"(\d+)`).FindStringSubmatch(init)
		if m == nil || get(c.parameters["MaxReceiveCount"], "Default").Value != m[1] {
			t.Errorf("MaxReceiveCount default %s, want deploy/localstack/init.sh's %v (README's recommendation)", get(c.parameters["MaxReceiveCount"], "Default").Value, m)
		}
		redrive := get(c.resources["Queue"], "Properties", "RedrivePolicy")
		if get(redrive, "deadLetterTargetArn").Value != "DeadLetterQueue.Arn" || get(redrive, "maxReceiveCount").Value != "MaxReceiveCount" {
			t.Errorf("Queue redrive policy %v: want the dead-letter queue after MaxReceiveCount", decode(t, redrive))
		}
		for name, b := range c.resourcesOf("AWS::S3::Bucket") {
			pab := decode(t, get(b, "Properties", "PublicAccessBlockConfiguration"))
			want := map[string]any{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}
			if !reflect.DeepEqual(pab, want) {
				t.Errorf("%s: public access block %v, want all four on", name, pab)
			}
			if get(b, "Properties", "BucketEncryption") == nil {
				t.Errorf("%s: no default encryption", name)
			}
			tlsOnly := false
			for _, p := range c.resourcesOf("AWS::S3::BucketPolicy") {
				if get(p, "Properties", "Bucket").Value == name && strings.Contains(fmt.Sprint(decode(t, p)), "aws:SecureTransport:false") {
					tlsOnly = true
				}
			}
			if !tlsOnly {
				t.Errorf("%s: no bucket policy denying requests without TLS", name)
			}
		}
		rules := fmt.Sprint(decode(t, get(c.resources["ResultsBucket"], "Properties", "LifecycleConfiguration")))
		if !strings.Contains(rules, "Prefix:"+pipeline.DefaultResultsPrefix) {
			t.Errorf("results lifecycle %s: want it on the worker's results prefix %q", rules, pipeline.DefaultResultsPrefix)
		}
	})

	t.Run("autoscaling", func(t *testing.T) {
		target := c.resources["ScalableTarget"]
		if get(target, "Properties", "MinCapacity").Value != "0" || get(target, "Properties", "MaxCapacity").Value != "MaxTasks" {
			t.Error("ScalableTarget: want MinCapacity 0 (scale to zero) and MaxCapacity !Ref MaxTasks")
		}
		tt := get(c.resources["BacklogPerTaskScaling"], "Properties", "TargetTrackingScalingPolicyConfiguration")
		if get(tt, "TargetValue").Value != "BacklogPerTask" {
			t.Error("target tracking: want TargetValue !Ref BacklogPerTask")
		}
		ids := map[string]string{}
		returned := 0
		for _, q := range get(tt, "CustomizedMetricSpecification", "Metrics").Content {
			ids[get(q, "Id").Value] = fmt.Sprint(decode(t, q))
			if get(q, "ReturnData").Value == "true" {
				returned++
			}
		}
		if returned != 1 || !strings.Contains(ids["backlog"], "visible / FILL(tasks, 0)") || !strings.Contains(ids["signal"], "throttles >") {
			t.Errorf("target tracking metrics %v: want one signal, backlog = visible / tasks, held while throttled", ids)
		}
		for _, m := range stackModels() {
			if !strings.Contains(ids["throttles"], "FILL("+m.MetricID+", 0)") || !strings.Contains(ids[m.MetricID], m.ID) {
				t.Errorf("the throttle hold does not count model %s", m.ID)
			}
		}
		actions := decode(t, get(c.resources["WorkWaitingWithNoTask"], "Properties", "AlarmActions"))
		if !reflect.DeepEqual(actions, []any{"ScaleFromZero"}) {
			t.Errorf("WorkWaitingWithNoTask actions %v, want the ScaleFromZero policy", actions)
		}
	})

	t.Run("metrics are ones tierq emits", func(t *testing.T) {
		emitted := emittedMetrics(t)
		// Derived from the log group by the template's metric filters.
		for _, f := range c.resourcesOf("AWS::Logs::MetricFilter") {
			for _, m := range get(f, "Properties", "MetricTransformations").Content {
				emitted[metricKey{get(m, "MetricNamespace").Value, get(m, "MetricName").Value, ""}] = true
			}
		}
		tiers, models := map[string]bool{}, map[string]bool{}
		for _, tier := range tiering.Default().Tiers {
			tiers[tier.Name] = true
		}
		for _, m := range stackModels() {
			models[m.ID] = true
		}
		used := templateMetrics(t, c)
		if len(used) < 20 {
			t.Fatalf("found %d metrics in the template; the walk is broken", len(used))
		}
		for _, u := range used {
			k := u.key()
			switch k.namespace {
			case pipeline.DefaultMetricsNamespace:
				if !emitted[k] {
					t.Errorf("%s: %s %s with dimensions [%s] is not a metric tierq emits (testdata/results/emf-*.jsonl, limiter lines) or the template derives", u.where, k.namespace, k.name, k.dims)
				}
			case "AWS/Bedrock":
				if k.name != "InvocationThrottles" || k.dims != "ModelId" {
					t.Errorf("%s: AWS/Bedrock %s [%s]: want InvocationThrottles by ModelId", u.where, k.name, k.dims)
				}
			case "AWS/SQS":
				if k.dims != "QueueName" {
					t.Errorf("%s: AWS/SQS %s by [%s], want QueueName", u.where, k.name, k.dims)
				}
			case "ECS/ContainerInsights":
				if k.dims != "ClusterName,ServiceName" {
					t.Errorf("%s: %s by [%s], want ClusterName and ServiceName", u.where, k.name, k.dims)
				}
			default:
				t.Errorf("%s: namespace %s is not one the stack's metrics come from", u.where, k.namespace)
			}
			if v, ok := u.dims["Tier"]; ok && !tiers[v] {
				t.Errorf("%s: Tier %q is not a tier of tiering/default.yaml", u.where, v)
			}
			if v, ok := u.dims["ModelId"]; ok && !models[v] {
				t.Errorf("%s: ModelId %q is not a model of tiering/default.yaml", u.where, v)
			}
		}
	})
}

type metricKey struct{ namespace, name, dims string }

type usedMetric struct {
	where string
	ns    string
	name  string
	dims  map[string]string
}

func (u usedMetric) key() metricKey {
	return metricKey{u.ns, u.name, strings.Join(slices.Sorted(maps.Keys(u.dims)), ",")}
}

// emittedMetrics are tierq's EMF metrics with their dimension sets: job and
// call lines from the goldens, limiter lines from the pipeline itself.
func emittedMetrics(t *testing.T) map[metricKey]bool {
	t.Helper()
	var buf bytes.Buffer
	p, err := pipeline.New(pipeline.Config{ResultsBucket: "r", Tiers: tiering.Default()},
		pipeline.Deps{Converser: struct{ pipeline.Converser }{}, Store: struct{ pipeline.Store }{}, Metrics: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EmitLimiterStates([]limiter.State{{Model: "m"}}); err != nil {
		t.Fatal(err)
	}
	lines := buf.String() + string(read(t, "testdata/results/emf-lines.jsonl")) + string(read(t, "testdata/results/emf-calls.jsonl"))
	out := map[metricKey]bool{}
	for _, line := range strings.Split(strings.TrimSpace(lines), "\n") {
		var l struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name string }
				}
			} `json:"_aws"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		for _, d := range l.AWS.CloudWatchMetrics {
			for _, dims := range d.Dimensions {
				for _, m := range d.Metrics {
					out[metricKey{d.Namespace, m.Name, strings.Join(slices.Sorted(slices.Values(dims)), ",")}] = true
				}
			}
		}
	}
	if len(out) < 15 {
		t.Fatalf("only %d EMF metrics found", len(out))
	}
	return out
}

// templateMetrics lists every metric the template names: alarms, metric
// queries (alarms and scaling) and the dashboard's series.
func templateMetrics(t *testing.T, c *cfnTemplate) []usedMetric {
	t.Helper()
	var out []usedMetric
	dims := func(n *yaml.Node) map[string]string {
		d := map[string]string{}
		if n == nil {
			return d
		}
		for _, e := range n.Content {
			d[get(e, "Name").Value] = get(e, "Value").Value
		}
		return d
	}
	for name, r := range c.resources {
		props := get(r, "Properties")
		if ns := get(props, "Namespace"); ns != nil && get(r, "Type").Value == "AWS::CloudWatch::Alarm" {
			out = append(out, usedMetric{name, ns.Value, get(props, "MetricName").Value, dims(get(props, "Dimensions"))})
		}
		var queries []*yaml.Node
		queries = append(queries, get(props, "Metrics"))
		queries = append(queries, get(props, "TargetTrackingScalingPolicyConfiguration", "CustomizedMetricSpecification", "Metrics"))
		for _, qs := range queries {
			if qs == nil {
				continue
			}
			for _, q := range qs.Content {
				if m := get(q, "MetricStat", "Metric"); m != nil {
					out = append(out, usedMetric{name + "." + get(q, "Id").Value, get(m, "Namespace").Value, get(m, "MetricName").Value, dims(get(m, "Dimensions"))})
				}
			}
		}
	}
	body := get(c.resources["Dashboard"], "Properties", "DashboardBody")
	var dash struct {
		Widgets []struct {
			Properties struct {
				Title   string
				Metrics [][]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body.Value), &dash); err != nil {
		t.Fatalf("dashboard body: %v", err)
	}
	for _, w := range dash.Widgets {
		for _, m := range w.Properties.Metrics {
			u := usedMetric{where: "dashboard " + strconv.Quote(w.Properties.Title), dims: map[string]string{}}
			var s []string
			for _, v := range m {
				if str, ok := v.(string); ok {
					s = append(s, str)
				}
			}
			if len(s) < 2 || len(s)%2 != 0 {
				t.Errorf("%s: series %v is not NAMESPACE, NAME, DIMENSION, VALUE...", u.where, m)
				continue
			}
			u.ns, u.name = s[0], s[1]
			for i := 2; i+1 < len(s); i += 2 {
				u.dims[s[i]] = s[i+1]
			}
			out = append(out, u)
		}
	}
	return out
}
