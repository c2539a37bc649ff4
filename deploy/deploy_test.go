package deploy_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
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

func TestECSTaskDefinition(t *testing.T) {
	var td struct {
		ContainerDefinitions []struct {
			Command     []string `json:"command"`
			StopTimeout int      `json:"stopTimeout"`
			Environment []struct{ Name, Value string }
		} `json:"containerDefinitions"`
	}
	if err := json.Unmarshal(read(t, "deploy/ecs-task-definition.json"), &td); err != nil {
		t.Fatalf("ecs-task-definition.json: %v", err)
	}
	if len(td.ContainerDefinitions) != 1 {
		t.Fatalf("%d containers, want 1", len(td.ContainerDefinitions))
	}
	cd := td.ContainerDefinitions[0]
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
}

func TestIAMPolicyCoversTheWorkersCalls(t *testing.T) {
	var p struct {
		Statement []struct {
			Effect string
			Action []string
		}
	}
	if err := json.Unmarshal(read(t, "deploy/iam-task-policy.json"), &p); err != nil {
		t.Fatalf("iam-task-policy.json: %v", err)
	}
	allowed := map[string]bool{}
	for _, s := range p.Statement {
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("action %s: grant named actions only", a)
			}
			allowed[a] = s.Effect == "Allow"
		}
	}
	// Every API the worker calls, by the IAM action that authorises it
	// (DeleteMessageBatch is sqs:DeleteMessage, HeadObject is s3:GetObject,
	// Converse is bedrock:InvokeModel, a guardrail on Converse needs
	// ApplyGuardrail). Without s3:ListBucket S3 answers 403, not 404, for a
	// missing key, and every job would look as if its result might exist.
	for _, a := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
		"sqs:SendMessage", "s3:GetObject", "s3:PutObject", "s3:ListBucket", "bedrock:InvokeModel", "bedrock:ApplyGuardrail"} {
		if !allowed[a] {
			t.Errorf("policy does not allow %s", a)
		}
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
