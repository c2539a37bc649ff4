package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/devstack"
	"github.com/tierq/tierq/internal/iampolicy"
	"github.com/tierq/tierq/pipeline"
	"github.com/tierq/tierq/tiering"
)

type service struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Ports       []string          `yaml:"ports"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	StopGrace   string            `yaml:"stop_grace_period"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	Profiles    []string          `yaml:"profiles"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type compose struct {
	Services map[string]service `yaml:"services"`
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

// flagValue is the value of --name in a command, or def.
func flagValue(cmd []string, name, def string) string {
	for i, a := range cmd {
		if a == "--"+name && i+1 < len(cmd) {
			return cmd[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return def
}

func readCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := yaml.Unmarshal(read(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"tierq-dev", "worker", "submit", "localstack", "bedrock-sim", "worker-localstack", "submit-localstack"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("service %q missing", name)
		}
	}
	return c
}

// listenPorts is the port each service listens on inside the compose
// network, read from its command.
func listenPorts(t *testing.T, c compose) map[string][]string {
	t.Helper()
	dev := c.Services["tierq-dev"]
	if dev.Command[0] != "up" {
		t.Errorf("tierq-dev runs %v, want the up command", dev.Command)
	}
	if bind := flagValue(dev.Command, "bind", devstack.DefaultBind); bind != "0.0.0.0" {
		t.Errorf("tierq-dev binds %s: other containers cannot reach it", bind)
	}
	listens := map[string][]string{
		"localstack": {"4566"},
		"tierq-dev": {flagValue(dev.Command, "aws-port", strconv.Itoa(devstack.DefaultAWSPort)),
			flagValue(dev.Command, "sim-port", strconv.Itoa(devstack.DefaultSimPort))},
	}
	sim := c.Services["bedrock-sim"]
	if sim.Command[0] != "sim" {
		t.Errorf("bedrock-sim runs %v, want the sim command", sim.Command)
	}
	addr := flagValue(sim.Command, "addr", "127.0.0.1:4599")
	if !strings.HasPrefix(addr, "0.0.0.0:") {
		t.Errorf("bedrock-sim listens on %s: other containers cannot reach it", addr)
	}
	_, port, _ := strings.Cut(addr, ":")
	listens["bedrock-sim"] = []string{port}
	return listens
}

func TestDockerCompose(t *testing.T) {
	c := readCompose(t)
	listens := listenPorts(t, c)

	// Published ports: each maps to a port its service listens on, and no
	// two services take the same host port, so the localstack profile runs
	// beside the default stack.
	hostPorts := map[string]string{}
	for name, svc := range c.Services {
		for _, p := range svc.Ports {
			parts := strings.Split(p, ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("%s publishes %q: want 127.0.0.1:HOST:CONTAINER, loopback only", name, p)
				continue
			}
			if !slices.Contains(listens[name], parts[2]) {
				t.Errorf("%s publishes container port %s, but listens on %v", name, parts[2], listens[name])
			}
			if other, dup := hostPorts[parts[1]]; dup {
				t.Errorf("%s and %s both publish host port %s", name, other, parts[1])
			}
			hostPorts[parts[1]] = name
		}
	}

	src := cmdSource(t)
	init := string(read(t, "deploy/localstack/init.sh"))
	for _, name := range []string{"worker", "submit", "worker-localstack", "submit-localstack"} {
		env := c.Services[name].Environment
		for _, v := range []string{"AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"} {
			u, err := url.Parse(env[v])
			if err != nil || u.Hostname() == "" {
				t.Errorf("%s: %s = %q is not a URL", name, v, env[v])
				continue
			}
			if !slices.Contains(listens[u.Hostname()], u.Port()) {
				t.Errorf("%s: %s = %s, but service %q listens on %v", name, v, env[v], u.Hostname(), listens[u.Hostname()])
			}
			// submit calls SQS and S3 only; a worker calls all three.
			calls := strings.HasPrefix(name, "worker") || v != "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
			if _, ok := c.Services[name].DependsOn[u.Hostname()]; calls && !ok {
				t.Errorf("%s: %s points at %s, which it does not depend on", name, v, u.Hostname())
			}
		}
		for k, v := range env {
			if strings.HasPrefix(k, "TIERQ_") && !strings.Contains(src, `"`+k+`"`) {
				t.Errorf("%s sets %s, which cmd/tierq never reads", name, k)
			}
			if strings.HasPrefix(k, "AWS_SECRET") && v != "test" {
				t.Errorf("%s: only the emulators' dummy credentials belong in this file", name)
			}
		}
		if !strings.HasSuffix(name, "-localstack") {
			continue
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
	for _, name := range []string{"worker", "worker-localstack"} {
		w := c.Services[name]
		if w.Command[0] != "worker" {
			t.Errorf("%s runs %v", name, w.Command)
		}
		if d, err := time.ParseDuration(w.StopGrace); err != nil || d < 30*time.Second {
			t.Errorf("%s stop_grace_period %q: want at least 30s so the drain window fits", name, w.StopGrace)
		}
	}
	// The default stack needs no token: nothing of it is in a profile, and
	// everything of LocalStack is.
	for name, svc := range c.Services {
		isLocalstack := name == "localstack" || name == "bedrock-sim" || name == "worker-localstack"
		switch {
		case (name == "tierq-dev" || name == "worker") && len(svc.Profiles) > 0:
			t.Errorf("%s is in profiles %v: the default stack must start without one", name, svc.Profiles)
		case isLocalstack && !slices.Equal(svc.Profiles, []string{"localstack"}):
			t.Errorf("%s is in profiles %v, want [localstack]", name, svc.Profiles)
		case strings.HasPrefix(name, "submit") && !slices.Equal(svc.Profiles, []string{"tools"}):
			t.Errorf("%s is in profiles %v, want [tools]: it is run, not kept up", name, svc.Profiles)
		}
	}
	for name, svc := range c.Services {
		for _, v := range svc.Volumes {
			host, _, _ := strings.Cut(v, ":")
			if _, err := os.Stat(filepath.Join("..", host)); err != nil {
				t.Errorf("%s mounts %s: %v", name, host, err)
			}
		}
	}
}

// TestDockerComposeDefaultStackIsTierqDevUp checks that the default
// workers' environment is exactly what `tierq-dev up --host tierq-dev`
// prints (a real stack is started to print it), and that the healthcheck
// waits for the env file up writes when it is ready.
func TestDockerComposeDefaultStackIsTierqDevUp(t *testing.T) {
	c := readCompose(t)
	dev := c.Services["tierq-dev"]
	if host := flagValue(dev.Command, "host", ""); host != "tierq-dev" {
		t.Fatalf("tierq-dev --host %q: want its service name, tierq-dev, which other containers resolve", host)
	}
	if b, ok := dev.Build.(map[string]any); !ok || b["target"] != "dev" {
		t.Errorf("tierq-dev build %v: want the Dockerfile's dev target", dev.Build)
	}
	envFile := flagValue(dev.Command, "env-file", "")
	if envFile == "" || !slices.Equal(dev.Healthcheck.Test, []string{"CMD", "/usr/local/bin/tierq-dev", "wait", "--env-file", envFile, "--timeout", "1s"}) {
		t.Errorf("tierq-dev healthcheck %q: want tierq-dev wait on its --env-file %q", dev.Healthcheck.Test, envFile)
	}

	awsPort := flagValue(dev.Command, "aws-port", strconv.Itoa(devstack.DefaultAWSPort))
	simPort := flagValue(dev.Command, "sim-port", strconv.Itoa(devstack.DefaultSimPort))
	st, err := devstack.Start(t.Context(), devstack.Config{Host: "tierq-dev", Sim: bedrocksim.DefaultConfig()},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	port := func(u string) string { p, _ := url.Parse(u); return p.Port() }
	replace := strings.NewReplacer(":"+port(st.Endpoints.SQS), ":"+awsPort, ":"+port(st.Endpoints.Bedrock), ":"+simPort)
	want := map[string]string{}
	for _, v := range st.Endpoints.Env() {
		want[v.Name] = replace.Replace(v.Value)
	}
	for _, name := range []string{"worker", "submit"} {
		env := c.Services[name].Environment
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s = %q, but tierq-dev up prints %q", name, k, env[k], v)
			}
		}
		for k := range env {
			if _, ok := want[k]; !ok && k != "TIERQ_TIERS_FILE" {
				t.Errorf("%s sets %s, which tierq-dev up does not print", name, k)
			}
		}
	}
}

// dockerStages splits the Dockerfile into its stages: the FROM line's name
// ("" for an unnamed stage) and the stage's lines.
func dockerStages(df string) (names []string, bodies []string) {
	for _, line := range strings.Split(df, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "FROM" {
			name := ""
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				name = f[3]
			}
			names = append(names, name)
			bodies = append(bodies, "")
			continue
		}
		if len(bodies) > 0 {
			bodies[len(bodies)-1] += line + "\n"
		}
	}
	return names, bodies
}

func TestDockerfileBuildsOnlyTheProductionBinary(t *testing.T) {
	names, bodies := dockerStages(string(read(t, "Dockerfile")))
	if len(names) == 0 {
		t.Fatal("Dockerfile has no stages")
	}
	// The last stage is what `docker build .` and the worker services build.
	last := bodies[len(bodies)-1]
	if names[len(names)-1] != "" || !strings.Contains(last, "COPY --from=build /out/tierq /usr/local/bin/tierq\n") ||
		strings.Contains(last, "tierq-dev") {
		t.Errorf("the Dockerfile's last stage must be the production image with ./cmd/tierq only:\n%s", last)
	}
	i := slices.Index(names, "build")
	if i < 0 || !strings.Contains(bodies[i], "./cmd/tierq\n") || strings.Contains(bodies[i], "tierq-dev") {
		t.Errorf("the build stage must build ./cmd/tierq and not the emulator entry point")
	}
	d := slices.Index(names, "dev")
	if d < 0 || !strings.Contains(bodies[d], "tierq-dev") || strings.Contains(bodies[d], "/out/tierq ") {
		t.Errorf("the dev target (docker-compose's tierq-dev) must hold tierq-dev and nothing else")
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

var update = flag.Bool("update", false, "rewrite deploy/iam-task-policy.json and deploy/cloudformation/tierq.yaml from their generators")

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
	"app.QueueInfo.GetQueueAttributes":          "sqs:GetQueueAttributes",
	"app.BedrockChecks.ApplyGuardrail":          "bedrock:ApplyGuardrail",
	"app.BedrockChecks.CountTokens":             "bedrock:CountTokens",
}

func TestIAMPolicyCoversTheWorkersCalls(t *testing.T) {
	// Granted without being called: s3:ListBucket, because without it S3
	// answers 403, not 404, for a missing key, and every job would look as
	// if its result might exist.
	want := map[string]bool{"s3:ListBucket": true}
	clients := reflect.TypeFor[app.Clients]()
	for i := range clients.NumField() {
		if clients.Field(i).Name == "TaskProtection" {
			// The ECS agent's endpoint, called without AWS credentials; the
			// agent calls ecs:UpdateTaskProtection with the task role, which
			// the CloudFormation template grants in a policy of its own
			// (cloudformation_test.go checks it).
			continue
		}
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
