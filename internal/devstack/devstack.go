package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tierq/tierq/internal/bedrocksim"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/worker"
)

// The resources `up` creates: the names docker-compose.yml and the
// LocalStack hook use, so a shell or a worker configured for one works
// against the other.
const (
	JobQueue        = "tierq-jobs"
	DeadLetterQueue = JobQueue + "-dlq"
	ResultsBucket   = "tierq-results"
	InputBucket     = "tierq-inputs"
)

// Defaults of Config.
const (
	DefaultBind    = "127.0.0.1"
	DefaultAWSPort = 4566 // LocalStack's port: SQS and S3 share it, as on LocalStack
	DefaultSimPort = 4599 // tierq sim's port
	// DefaultMaxReceiveCount is the job queue's redrive threshold. It is a
	// safety net behind tierq's own failure policy, set high (as the
	// LocalStack hook and README recommend) because throttled jobs are
	// released and redelivered while a model is at its quota.
	DefaultMaxReceiveCount = 50
	// DefaultQueueVisibility is the job queue's own visibility timeout,
	// the worker's default (worker.DefaultVisibilityTimeout); the worker
	// sends its --visibility-timeout with every receive anyway.
	DefaultQueueVisibility = worker.DefaultVisibilityTimeout
)

// Config says where the stack listens and what it keeps.
type Config struct {
	// Bind is the address the servers listen on (default 127.0.0.1;
	// 0.0.0.0 in a container).
	Bind string
	// Host is the host name printed in endpoints and queue URLs: what
	// clients dial. Default: Bind, or 127.0.0.1 when Bind is 0.0.0.0 or ::.
	Host string
	// AWSPort serves SQS and S3 (kumo answers both on one handler), SimPort
	// the Bedrock simulator. 0 picks a free port; Endpoints says which.
	AWSPort, SimPort int
	// StateDir, if set, is where queues, messages and objects are kept
	// between runs (see SaveState for what is kept).
	StateDir string
	// Sim configures the Bedrock simulator.
	Sim bedrocksim.Config
	// MaxReceiveCount is the job queue's redrive threshold (default 50).
	MaxReceiveCount int
	// QueueVisibility is the job queue's visibility timeout (default 30s,
	// whole seconds).
	QueueVisibility time.Duration
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.Bind == "" {
		c.Bind = DefaultBind
	}
	if c.Host == "" {
		c.Host = c.Bind
		if ip := net.ParseIP(c.Bind); ip != nil && ip.IsUnspecified() {
			c.Host = "127.0.0.1"
		}
	}
	if c.MaxReceiveCount == 0 {
		c.MaxReceiveCount = DefaultMaxReceiveCount
	}
	if c.QueueVisibility == 0 {
		c.QueueVisibility = DefaultQueueVisibility
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	for _, p := range []struct {
		name string
		port int
	}{{"AWS port", c.AWSPort}, {"simulator port", c.SimPort}} {
		if p.port < 0 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want 0 (any free port) to 65535", p.name, p.port))
		}
	}
	if c.AWSPort != 0 && c.AWSPort == c.SimPort {
		errs = append(errs, fmt.Errorf("AWS port and simulator port are both %d: give each its own", c.AWSPort))
	}
	if c.MaxReceiveCount < 1 || c.MaxReceiveCount > 1000 {
		errs = append(errs, fmt.Errorf("max receive count %d: SQS allows 1 to 1000", c.MaxReceiveCount))
	}
	if c.QueueVisibility < 0 || c.QueueVisibility > 12*time.Hour || c.QueueVisibility%time.Second != 0 {
		errs = append(errs, fmt.Errorf("queue visibility timeout %s: want whole seconds from 0s to 12h", c.QueueVisibility))
	}
	if strings.ContainsAny(c.Host, "/ ") {
		errs = append(errs, fmt.Errorf("host %q: want a host name or IP address, without scheme or port", c.Host))
	}
	return errors.Join(errs...)
}

// shutdownGrace is how long Close lets requests in progress finish.
const shutdownGrace = 2 * time.Second

// Endpoints are the URLs clients use, with Host as their host.
type Endpoints struct {
	SQS, S3, Bedrock string
	Queues           Queues
}

// Stack is the running local AWS.
type Stack struct {
	Endpoints Endpoints
	// SQS and S3 reach kumo directly, not through the public port.
	SQS *sqs.Client
	S3  *s3.Client
	Sim *bedrocksim.Server

	cfg     Config
	log     *slog.Logger
	servers []*http.Server
	errc    chan error
}

// sharedKumo is the process's one kumo server, started on first use and
// never stopped: kumo keeps one store per process whatever the number of
// servers, and starting a second server races with the first one's work
// (internal/emulator), so every Stack of a process serves the same kumo.
var sharedKumo = sync.OnceValue(func() string {
	url, _ := emulator.Start()
	return url
})

// Start serves kumo and the simulator on cfg's addresses, restores the
// state directory if there is one, and creates the job queue, its
// dead-letter queue and the two buckets. Close stops it.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Stack, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sim, err := bedrocksim.New(cfg.Sim)
	if err != nil {
		return nil, err
	}
	awsLn, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.AWSPort)))
	if err != nil {
		return nil, fmt.Errorf("listen for SQS and S3: %w", err)
	}
	simLn, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.SimPort)))
	if err != nil {
		awsLn.Close()
		return nil, fmt.Errorf("listen for the Bedrock simulator: %w", err)
	}
	kumoURL := sharedKumo()
	proxy, err := kumoProxy(kumoURL)
	if err != nil {
		awsLn.Close()
		simLn.Close()
		return nil, err
	}
	st := &Stack{
		SQS: emulator.SQS(kumoURL), S3: emulator.S3(kumoURL), Sim: sim,
		cfg: cfg, log: logger, errc: make(chan error, 2),
	}
	st.Endpoints.SQS = "http://" + net.JoinHostPort(cfg.Host, port(awsLn))
	st.Endpoints.S3 = st.Endpoints.SQS
	st.Endpoints.Bedrock = "http://" + net.JoinHostPort(cfg.Host, port(simLn))

	awsSrv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	// HTTP/1.1 and cleartext HTTP/2 on the simulator's port, as tierq sim
	// serves it: Node's AWS SDK v3 Bedrock client speaks only HTTP/2.
	simSrv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	simSrv.Protocols.SetHTTP1(true)
	simSrv.Protocols.SetUnencryptedHTTP2(true)
	st.servers = []*http.Server{awsSrv, simSrv}
	for i, ln := range []net.Listener{awsLn, simLn} {
		go func() {
			if err := st.servers[i].Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				st.errc <- err
			}
		}()
	}

	if err := st.setUp(ctx); err != nil {
		// Not Close: saving now would replace a snapshot that failed to
		// restore with what little was restored.
		st.stopServers(context.Background())
		return nil, err
	}
	return st, nil
}

// setUp restores the kept state and creates (or updates) the resources.
func (st *Stack) setUp(ctx context.Context) error {
	if st.cfg.StateDir != "" {
		n, err := RestoreState(ctx, st.SQS, st.S3, st.cfg.StateDir)
		if err != nil {
			return err
		}
		if n.Queues+n.Objects > 0 {
			st.log.Info("state restored", "dir", st.cfg.StateDir, "queues", n.Queues, "messages", n.Messages,
				"buckets", n.Buckets, "objects", n.Objects)
		}
	}
	qs, err := CreateQueues(ctx, st.SQS, JobQueue, st.cfg.MaxReceiveCount, st.cfg.QueueVisibility)
	if err != nil {
		return err
	}
	if err := CreateBuckets(ctx, st.S3, ResultsBucket, InputBucket); err != nil {
		return err
	}
	// kumo names every queue http://localhost:4566/ACCOUNT/NAME whatever
	// its port; clients are told the public endpoint instead. Only the path
	// matters to kumo, and the SDK sends calls to the endpoint, not the URL.
	if st.Endpoints.Queues.URL, err = rebase(qs.URL, st.Endpoints.SQS); err != nil {
		return err
	}
	st.Endpoints.Queues.DLQURL, err = rebase(qs.DLQURL, st.Endpoints.SQS)
	return err
}

// Err delivers an error if a server stops serving on its own.
func (st *Stack) Err() <-chan error { return st.errc }

// Close stops the public servers (no client changes anything after that)
// and saves the state if a directory was given. The error is the state's:
// the servers stop either way. kumo itself stops with the process.
func (st *Stack) Close(ctx context.Context) error {
	st.stopServers(ctx)
	var err error
	if st.cfg.StateDir != "" {
		var n Counts
		n, err = SaveState(ctx, st.SQS, st.S3, st.cfg.StateDir)
		if err == nil {
			st.log.Info("state saved", "dir", st.cfg.StateDir, "queues", n.Queues, "messages", n.Messages,
				"buckets", n.Buckets, "objects", n.Objects)
		}
	}
	return err
}

// stopServers shuts the public servers down.
func (st *Stack) stopServers(ctx context.Context) {
	for _, srv := range st.servers {
		// Long polls hold connections for up to 20 s: after a short grace
		// they are cut, which clients see as a network error and retry.
		grace, cancel := context.WithTimeout(ctx, shutdownGrace)
		if err := srv.Shutdown(grace); err != nil {
			srv.Close()
		}
		cancel()
	}
}

// kumoProxy forwards the public port to kumo's own loopback server: kumo's
// library listens only on a random port of its choosing. The Host header is
// kept, so requests reach kumo exactly as clients signed them.
func kumoProxy(kumoURL string) (http.Handler, error) {
	target, err := url.Parse(kumoURL)
	if err != nil {
		return nil, fmt.Errorf("kumo URL %q: %w", kumoURL, err)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		// A client that gives up on a long poll is not an error worth a
		// line on the terminal.
		ErrorLog: log.New(io.Discard, "", 0),
	}, nil
}

// rebase puts queueURL's path on endpoint.
func rebase(queueURL, endpoint string) (string, error) {
	u, err := url.Parse(queueURL)
	if err != nil {
		return "", fmt.Errorf("queue URL %q: %w", queueURL, err)
	}
	return endpoint + u.Path, nil
}

func port(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}
