package devstack

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/tierq/tierq/internal/emulator"
)

// Var is one environment variable a shell needs to reach the stack.
type Var struct{ Name, Value string }

// Env is what `tierq worker` and `tierq submit` need in the environment to
// use the stack: Region and dummy credentials for the SDK's default chain,
// the endpoints, the checksum settings kumo needs (see internal/emulator),
// and the TIERQ_ settings naming the queues and buckets. docker-compose.yml
// sets the same names (deploy/deploy_test.go keeps them equal).
func (e Endpoints) Env() []Var {
	return []Var{
		{"AWS_REGION", emulator.Region},
		// kumo and the simulator accept any signature; fixed dummy keys keep
		// the SDK from using a developer's real credentials.
		{"AWS_ACCESS_KEY_ID", "test"},
		{"AWS_SECRET_ACCESS_KEY", "test"},
		{"AWS_ENDPOINT_URL_SQS", e.SQS},
		{"AWS_ENDPOINT_URL_S3", e.S3},
		{"AWS_ENDPOINT_URL_BEDROCK_RUNTIME", e.Bedrock},
		{"AWS_REQUEST_CHECKSUM_CALCULATION", "when_required"},
		{"AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required"},
		{"TIERQ_S3_PATH_STYLE", "true"},
		{"TIERQ_QUEUE_URL", e.Queues.URL},
		{"TIERQ_DLQ_URL", e.Queues.DLQURL},
		{"TIERQ_RESULTS_BUCKET", ResultsBucket},
		{"TIERQ_INPUT_BUCKETS", InputBucket},
		{"TIERQ_INPUT_BUCKET", InputBucket},
	}
}

// WriteExports writes one `export NAME=VALUE` line per variable, quoted for
// a POSIX shell when the value needs it.
func WriteExports(w io.Writer, vars []Var) error {
	for _, v := range vars {
		if _, err := fmt.Fprintf(w, "export %s=%s\n", v.Name, shellQuote(v.Value)); err != nil {
			return fmt.Errorf("write %s: %w", v.Name, err)
		}
	}
	return nil
}

// plainShell are values a shell takes literally without quotes.
var plainShell = regexp.MustCompile(`^[A-Za-z0-9_./:,@%+=-]+$`)

func shellQuote(s string) string {
	if plainShell.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
