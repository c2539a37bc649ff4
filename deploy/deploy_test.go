package deploy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/iampolicy"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
)

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		StopGrace   string            `yaml:"stop_grace_period"`
		DependsOn   map[string]any    `yaml:"depends_on"`
	} `yaml:"services"`
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cmdSource is every Go file of cmd/tierq, to check that each TIERQ_*
// variable the deployment files set is one the binary reads.
func cmdSource(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("../cmd/tierq/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cmd/tierq sources: %v", err)
	}
	var b strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(src)
	}
	return b.String()
}

func TestDockerCompose(t *testing.T) {
	var c compose
	if err := yaml.Unmarshal(read(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"localstack", "bedrock-sim", "worker", "submit"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("service %q missing", name)
		}
	}
	// The port each service listens on inside the compose network.
	listens := map[string]string{"localstack": "4566"}
	sim := c.Services["bedrock-sim"]
	for i, a := range sim.Command {
		if a == "--addr" && i+1 < len(sim.Command) {
			_, port, _ := strings.Cut(sim.Command[i+1], ":")
			listens["bedrock-sim"] = port
			if !strings.HasPrefix(sim.Command[i+1], "0.0.0.0:") {
				t.Errorf("bedrock-sim listens on %s: other containers cannot reach it", sim.Command[i+1])
			}
		}
	}
	if sim.Command[0] != "sim" {
		t.Errorf("bedrock-sim runs %v, want the sim command", sim.Command)
	}

	src := cmdSource(t)
	init := string(read(t, "deploy/localstack/init.sh"))
	for _, name := range []string{"worker", "submit"} {
		env := c.Services[name].Environment
		for _, v := range []string{"AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"} {
			u, err := url.Parse(env[v])
			if err != nil || u.Hostname() == "" {
				t.Errorf("%s: %s = %q is not a URL", name, v, env[v])
				continue
			}
			if port, ok := listens[u.Hostname()]; !ok || port != u.Port() {
				t.Errorf("%s: %s = %s, but service %q listens on port %q", name, v, env[v], u.Hostname(), port)
			}
		}
		for k, v := range env {
			if strings.HasPrefix(k, "TIERQ_") && !strings.Contains(src, `"`+k+`"`) {
				t.Errorf("%s sets %s, which cmd/tierq never reads", name, k)
			}
			if strings.HasPrefix(k, "AWS_SECRET") && v != "test" {
				t.Errorf("%s: only LocalStack's dummy credentials belong in this file", name)
			}
		}
		for _, k := range []string{"TIERQ_QUEUE_URL", "TIERQ_DLQ_URL"} {
			queue := env[k][strings.LastIndex(env[k], "/")+1:]
			if !regexp.MustCompile(`--queue-name ` + regexp.QuoteMeta(queue) + `\b`).MatchString(init) {
				t.Errorf("%s: %s names queue %q, which deploy/localstack/init.sh does not create", name, k, queue)
			}
		}
		for _, k := range []string{"TIERQ_RESULTS_BUCKET", "TIERQ_INPUT_BUCKETS"} {
			for _, b := range strings.Split(env[k], ",") {
				if !strings.Contains(init, "s3://"+b+" ") && !strings.Contains(init, "s3://"+b+"\n") {
					t.Errorf("%s: bucket %q from %s is not created by deploy/localstack/init.sh", name, b, k)
				}
			}
		}
	}
	w := c.Services["worker"]
	if w.Command[0] != "worker" {
		t.Errorf("worker runs %v", w.Command)
	}
	if d, err := time.ParseDuration(w.StopGrace); err != nil || d < 30*time.Second {
		t.Errorf("worker stop_grace_period %q: want at least 30s so the drain window fits", w.StopGrace)
	}
	for _, v := range c.Services["localstack"].Volumes {
		host, _, _ := strings.Cut(v, ":")
		if _, err := os.Stat(filepath.Join("..", host)); err != nil {
			t.Errorf("localstack mounts %s: %v", host, err)
		}
	}
	for _, v := range c.Services["submit"].Volumes {
		host, _, _ := strings.Cut(v, ":")
		if _, err := os.Stat(filepath.Join("..", host)); err != nil {
			t.Errorf("submit mounts %s: %v", host, err)
		}
	}
}

func TestDockerfileBuildsOnlyTheProductionBinary(t *testing.T) {
	df := string(read(t, "Dockerfile"))
	if !strings.Contains(df, "./cmd/tierq\n") || strings.Contains(df, "tierq-dev") && !strings.Contains(df, "never built") {
		t.Errorf("Dockerfile must build ./cmd/tierq and not the emulator entry point")
	}
}

// containerDefinition is the part of the ECS task definition's one container
// the tests check.
type containerDefinition struct {
	Image                  string   `json:"image"`
	Command                []string `json:"command"`
	StopTimeout            int      `json:"stopTimeout"`
	ReadonlyRootFilesystem bool     `json:"readonlyRootFilesystem"`
	Environment            []struct{ Name, Value string }
}

func taskContainer(t *testing.T) containerDefinition {
	t.Helper()
	var td struct {
		ContainerDefinitions []containerDefinition `json:"containerDefinitions"`
	}
	if err := json.Unmarshal(read(t, "deploy/ecs-task-definition.json"), &td); err != nil {
		t.Fatalf("ecs-task-definition.json: %v", err)
	}
	if len(td.ContainerDefinitions) != 1 {
		t.Fatalf("%d containers, want 1", len(td.ContainerDefinitions))
	}
	return td.ContainerDefinitions[0]
}

func (cd containerDefinition) env() map[string]string {
	env := map[string]string{}
	for _, e := range cd.Environment {
		env[e.Name] = e.Value
	}
	return env
}

func TestECSTaskDefinition(t *testing.T) {
	cd := taskContainer(t)
	src := cmdSource(t)
	drain := 25 * time.Second
	for _, e := range cd.Environment {
		if strings.HasPrefix(e.Name, "TIERQ_") && !strings.Contains(src, `"`+e.Name+`"`) {
			t.Errorf("task definition sets %s, which cmd/tierq never reads", e.Name)
		}
		if e.Name == "TIERQ_DRAIN_TIMEOUT" {
			d, err := time.ParseDuration(e.Value)
			if err != nil {
				t.Errorf("TIERQ_DRAIN_TIMEOUT %q: %v", e.Value, err)
			}
			drain = d
		}
	}
	if time.Duration(cd.StopTimeout)*time.Second <= drain {
		t.Errorf("stopTimeout %ds must exceed the drain window %s, or ECS kills jobs mid-drain", cd.StopTimeout, drain)
	}

	// A tag can be moved to another image; a digest cannot, so every task
	// runs the image that was reviewed.
	name := cd.Image[strings.LastIndex(cd.Image, "/")+1:]
	repo, digest, pinned := strings.Cut(name, "@")
	if !pinned || !strings.HasPrefix(digest, "sha256:") || strings.Contains(repo, ":") {
		t.Errorf("image %q: pin it by digest (REPOSITORY@sha256:DIGEST), without a tag", cd.Image)
	}
	// The worker writes nothing to disk: EMF lines go to stdout, which the
	// awslogs driver ships. Only --metrics-file writes a file.
	if !cd.ReadonlyRootFilesystem {
		t.Error("readonlyRootFilesystem: want true; the worker writes nothing to disk")
	}
	if _, ok := cd.env()["TIERQ_METRICS_FILE"]; ok && cd.ReadonlyRootFilesystem {
		t.Error("TIERQ_METRICS_FILE is set but the root filesystem is read-only: mount a volume for it, or leave EMF on stdout")
	}
}

var update = flag.Bool("update", false, "rewrite deploy/iam-task-policy.json from internal/iampolicy")

// shippedPolicy is the generator configuration deploy/iam-task-policy.json is
// made from: the queues, buckets and Region of the ECS task definition and
// the tiers its image ships, with the command that regenerates it.
func shippedPolicy(t *testing.T) (iampolicy.Config, string) {
	t.Helper()
	env := taskContainer(t).env()
	if path := env["TIERQ_TIERS_FILE"]; path != "" && !strings.Contains(string(read(t, "Dockerfile")), "COPY tiering/default.yaml "+path+"\n") {
		t.Fatalf("TIERQ_TIERS_FILE is %s, which the Dockerfile does not fill with tiering/default.yaml; the shipped policy is for the default tiers", path)
	}
	cfg := iampolicy.Config{
		Tiers:              tiering.Default(),
		QueueARN:           queueARN(t, env["TIERQ_QUEUE_URL"]),
		DeadLetterQueueARN: queueARN(t, env["TIERQ_DLQ_URL"]),
		ResultsBucket:      env["TIERQ_RESULTS_BUCKET"],
		ResultsPrefix:      env["TIERQ_RESULTS_PREFIX"],
	}
	if r := strings.Split(cfg.QueueARN, ":")[3]; r != env["AWS_REGION"] {
		t.Fatalf("the job queue is in %s but the task runs in AWS_REGION %s: the policy would place models and guardrails in the wrong Region", r, env["AWS_REGION"])
	}
	cmd := "go run ./cmd/tierq iam-policy --queue-arn " + cfg.QueueARN
	def := iampolicy.Config{QueueARN: cfg.QueueARN}
	if def.ApplyDefaults(); def.DeadLetterQueueARN != cfg.DeadLetterQueueARN {
		cmd += " --dlq-arn " + cfg.DeadLetterQueueARN
	}
	cmd += " --results-bucket " + cfg.ResultsBucket
	if cfg.ResultsPrefix != "" {
		cmd += " --results-prefix " + cfg.ResultsPrefix
	}
	if in := env["TIERQ_INPUT_BUCKETS"]; in != "" {
		cfg.InputBuckets = strings.Split(in, ",")
		cmd += " --input-buckets " + in
	}
	return cfg, cmd + " > deploy/iam-task-policy.json"
}

// queueARN turns an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)
// into the queue's ARN.
func queueARN(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("queue URL %q: %v", raw, err)
	}
	host := strings.Split(u.Hostname(), ".")
	path := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(host) != 4 || host[0] != "sqs" || host[2] != "amazonaws" || len(path) != 2 {
		t.Fatalf("queue URL %q: want https://sqs.REGION.amazonaws.com/ACCOUNT/NAME", raw)
	}
	return "arn:aws:sqs:" + host[1] + ":" + path[0] + ":" + path[1]
}

// TestIAMPolicyIsGenerated keeps deploy/iam-task-policy.json equal, byte for
// byte, to what tierq iam-policy prints for the task definition's settings.
func TestIAMPolicyIsGenerated(t *testing.T) {
	if iampolicy.DefaultResultsPrefix != pipeline.DefaultResultsPrefix {
		t.Errorf("iampolicy.DefaultResultsPrefix %q != pipeline.DefaultResultsPrefix %q: the policy would grant another prefix than the worker writes",
			iampolicy.DefaultResultsPrefix, pipeline.DefaultResultsPrefix)
	}
	cfg, cmd := shippedPolicy(t)
	p, err := iampolicy.Generate(cfg)
	if err != nil {
		t.Fatalf("generate the shipped policy: %v", err)
	}
	want := p.Encode()
	if *update {
		if err := os.WriteFile(filepath.Join("..", "deploy", "iam-task-policy.json"), want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := read(t, "deploy/iam-task-policy.json"); !bytes.Equal(got, want) {
		t.Errorf("deploy/iam-task-policy.json is not the generator's output for the default tiers and the task definition; regenerate it:\n\n  %s\n\n(or: go test ./deploy -run TestIAMPolicyIsGenerated -update)", cmd)
	}
}

// awsCalls maps every method of the AWS clients the worker is given
// (app.Clients) to the IAM action that authorises it. A method added to one
// of those interfaces fails TestIAMPolicyCoversTheWorkersCalls until it is
// mapped here and granted by internal/iampolicy.
var awsCalls = map[string]string{
	"worker.Queue.ReceiveMessage":               "sqs:ReceiveMessage",
	"worker.Queue.DeleteMessageBatch":           "sqs:DeleteMessage",
	"worker.Queue.ChangeMessageVisibility":      "sqs:ChangeMessageVisibility",
	"worker.Queue.ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
	"worker.Queue.SendMessage":                  "sqs:SendMessage",
	"pipeline.Store.HeadObject":                 "s3:GetObject",
	"pipeline.Store.GetObject":                  "s3:GetObject",
	"pipeline.Store.PutObject":                  "s3:PutObject",
	"pipeline.Converser.Converse":               "bedrock:InvokeModel",
}

func TestIAMPolicyCoversTheWorkersCalls(t *testing.T) {
	// Granted without being called: s3:ListBucket, because without it S3
	// answers 403, not 404, for a missing key, and every job would look as
	// if its result might exist; bedrock:ApplyGuardrail, which AWS lists
	// with InvokeModel for inference with a guardrail.
	want := map[string]bool{"s3:ListBucket": true, "bedrock:ApplyGuardrail": true}
	clients := reflect.TypeFor[app.Clients]()
	for i := range clients.NumField() {
		iface := clients.Field(i).Type
		for j := range iface.NumMethod() {
			call := iface.String() + "." + iface.Method(j).Name
			action, ok := awsCalls[call]
			if !ok {
				t.Errorf("the worker can call %s: map it to its IAM action in awsCalls and grant it in internal/iampolicy", call)
			}
			want[action] = true
		}
	}

	var p iampolicy.Policy
	if err := json.Unmarshal(read(t, "deploy/iam-task-policy.json"), &p); err != nil {
		t.Fatalf("iam-task-policy.json: %v", err)
	}
	allowed, denied := map[string]bool{}, map[string]bool{}
	guardrailRequired := false
	for _, s := range p.Statement {
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("%s: action %s: name actions, no wildcards", s.Sid, a)
			}
			if s.Effect == "Allow" {
				allowed[a] = true
			} else {
				denied[a] = true
			}
			if s.Effect == "Allow" && a == "bedrock:InvokeModel" && len(s.Condition["StringEquals"]["bedrock:GuardrailIdentifier"]) == 0 {
				t.Errorf("%s allows InvokeModel without requiring a guardrail", s.Sid)
			}
			if s.Effect == "Deny" && a == "bedrock:InvokeModel" && len(s.Condition["StringNotEquals"]["bedrock:GuardrailIdentifier"]) > 0 {
				guardrailRequired = true
			}
		}
		if s.Effect == "Allow" && slices.Contains(s.Resource, "*") {
			t.Errorf("%s allows %v on every resource", s.Sid, s.Action)
		}
	}
	for a := range want {
		if !allowed[a] {
			t.Errorf("the policy does not allow %s, which the worker needs", a)
		}
	}
	for a := range allowed {
		if !want[a] {
			t.Errorf("the policy allows %s, which the worker never calls", a)
		}
	}
	if !guardrailRequired {
		t.Error("no statement denies InvokeModel without a tier's guardrail")
	}
	if !denied["bedrock:CallWithBearerToken"] || !denied["bedrock-mantle:CallWithBearerToken"] {
		t.Error("the policy must deny Bedrock API keys (bedrock:CallWithBearerToken, bedrock-mantle:CallWithBearerToken)")
	}
	if n := p.Size(); n > iampolicy.ManagedPolicyMaxChars {
		t.Errorf("the shipped policy has %d characters, more than a managed policy takes (%d)", n, iampolicy.ManagedPolicyMaxChars)
	}
}

// TestReadmeListsEveryFolder keeps README's layout section complete: every
// folder of the repository is named there, one line each.
func TestReadmeListsEveryFolder(t *testing.T) {
	readme := string(read(t, "README.md"))
	start := strings.Index(readme, "## Layout")
	end := strings.Index(readme[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("README has no Layout section")
	}
	layout := readme[start : start+1+end]
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || path == ".." {
			return err
		}
		rel, _ := filepath.Rel("..", path)
		if strings.HasPrefix(rel, ".git") || rel == "demo-out" || strings.Contains(rel, "testdata/fuzz") {
			return filepath.SkipDir
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(filepath.ToSlash(rel)) + `/\s`).MatchString(layout) {
			t.Errorf("README's layout does not list %s/", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
