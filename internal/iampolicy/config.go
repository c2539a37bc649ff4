package iampolicy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/tierq/tierq/tiering"
)

// Defaults for the settings that have one.
const (
	// DefaultResultsPrefix is the worker's default results prefix
	// (pipeline.DefaultResultsPrefix; deploy/deploy_test.go keeps them equal).
	DefaultResultsPrefix = "results/"
	// DeadLetterSuffix is appended to the job queue's name (before ".fifo")
	// when DeadLetterQueueARN is not given, as deploy/ names its queues.
	DeadLetterSuffix = "-dlq"
)

// Config is what the policy is generated from. ApplyDefaults fills what is
// left empty; Validate reports every problem at once.
type Config struct {
	// Tiers are the worker's tiers: each tier's model_id and
	// fallback_model_id may be called, and only with the tier's guardrail.
	// Required.
	Tiers *tiering.Config
	// QueueARN is the job queue (arn:aws:sqs:REGION:ACCOUNT:NAME). Required.
	QueueARN string
	// DeadLetterQueueARN is where the worker sends messages that are not
	// jobs. Default: QueueARN with DeadLetterSuffix added to its name
	// (tierq-jobs -> tierq-jobs-dlq, jobs.fifo -> jobs-dlq.fifo).
	DeadLetterQueueARN string
	// ResultsBucket and ResultsPrefix are the worker's settings of the same
	// names. ResultsPrefix defaults to DefaultResultsPrefix.
	ResultsBucket string
	ResultsPrefix string
	// InputBuckets are the buckets jobs may name in document_uri, each
	// "bucket" (any key) or "bucket/prefix" (keys under prefix only). Empty:
	// the worker reads inline documents only and gets no input grant.
	InputBuckets []string
	// ListInputBuckets also grants s3:ListBucket on the input buckets (under
	// their prefixes), so a document_uri naming a missing object fails as
	// document_not_found instead of document_access_denied. Off by default:
	// the worker never lists, and with ListBucket a leaked role credential
	// could enumerate every input document instead of only guessing keys.
	ListInputBuckets bool
	// Region and AccountID are where the worker calls Bedrock: they place
	// inference profiles, foundation models and guardrails given by ID.
	// Default: the job queue's. Placeholders such as REGION and ACCOUNT_ID
	// are accepted, so the shipped policy can keep them.
	Region    string
	AccountID string
	// AllowUnguarded lets a tier without a guardrail through: its models are
	// granted without the bedrock:GuardrailIdentifier condition. Off, such a
	// tier is an error.
	AllowUnguarded bool
}

// ApplyDefaults fills every setting left empty that has a default. Values
// derived from QueueARN are left empty when it does not parse; Validate
// reports that.
func (c *Config) ApplyDefaults() {
	if c.ResultsPrefix == "" {
		c.ResultsPrefix = DefaultResultsPrefix
	}
	q, err := parseARN(c.QueueARN)
	if err != nil || q.service != "sqs" {
		return
	}
	if c.DeadLetterQueueARN == "" && q.resource != "" {
		name, fifo := strings.CutSuffix(q.resource, ".fifo")
		name += DeadLetterSuffix
		if fifo {
			// A FIFO queue's dead-letter queue must be FIFO too.
			name += ".fifo"
		}
		q2 := q
		q2.resource = name
		c.DeadLetterQueueARN = q2.String()
	}
	if c.Region == "" {
		c.Region = q.region
	}
	if c.AccountID == "" {
		c.AccountID = q.account
	}
}

var (
	// Real values, or an upper-case placeholder (REGION, ACCOUNT_ID) for a
	// template such as deploy/iam-task-policy.json.
	placeholderRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	regionRE      = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	accountRE     = regexp.MustCompile(`^[0-9]{12}$`)
	// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html:
	// up to 80 characters: alphanumerics, hyphens and underscores; a FIFO
	// queue's name ends in .fifo.
	queueNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.fifo)?$`)
	// S3 bucket names are 3-63 lower-case letters, digits, dots and hyphens
	// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
	// Upper case and _ are let through for placeholders (tierq-results-ACCOUNT_ID);
	// what matters here is that nothing can widen the ARN (*, ?, /, :).
	bucketRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$`)
	// Guardrail versions: a number, or DRAFT
	// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_GuardrailConfiguration.html).
	guardrailVersionRE = regexp.MustCompile(`^[1-9][0-9]{0,7}$`)
	// Guardrail IDs are [a-z0-9]+ on AWS (same page). Looser here so the
	// shipped default tiers' placeholder ID (tierq-default) passes; what is
	// refused is anything that would change the ARN's shape.
	guardrailIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

func validRegion(s string) bool  { return regionRE.MatchString(s) || placeholderRE.MatchString(s) }
func validAccount(s string) bool { return accountRE.MatchString(s) || placeholderRE.MatchString(s) }

// Validate reports every problem at once, each naming the setting (and for
// tiers the tier), so a user can fix them in one pass. Call it after
// ApplyDefaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	queue, qerr := c.queue("queue ARN", c.QueueARN)
	if qerr != nil {
		errs = append(errs, qerr)
	}
	dlq, derr := c.queue("dead-letter queue ARN", c.DeadLetterQueueARN)
	if derr != nil {
		errs = append(errs, derr)
	}
	if qerr == nil && derr == nil {
		if queue == dlq {
			bad("dead-letter queue ARN: %s is the job queue; messages that are not jobs must go elsewhere", c.DeadLetterQueueARN)
		}
		if queue.partition != dlq.partition {
			bad("dead-letter queue ARN: partition %q differs from the job queue's %q", dlq.partition, queue.partition)
		}
	}
	if !validRegion(c.Region) {
		bad("region: %q is not an AWS Region (us-east-1) or a placeholder (REGION)", c.Region)
	}
	if !validAccount(c.AccountID) {
		bad("account ID: %q is not 12 digits or a placeholder (ACCOUNT_ID)", c.AccountID)
	}

	switch {
	case c.ResultsBucket == "":
		bad("results bucket: required")
	case !bucketRE.MatchString(c.ResultsBucket):
		bad("results bucket: %q is not a bucket name (3-63 letters, digits, '.', '-'; no '/', '*' or '?')", c.ResultsBucket)
	}
	if err := checkPrefix(c.ResultsPrefix); err != nil {
		bad("results prefix %q: %v", c.ResultsPrefix, err)
	}
	for i, in := range c.InputBuckets {
		bucket, prefix, _ := strings.Cut(in, "/")
		if !bucketRE.MatchString(bucket) {
			bad("input buckets[%d]: %q: want bucket or bucket/prefix with a bucket name of 3-63 letters, digits, '.', '-'", i, in)
		} else if err := checkPrefix(prefix); err != nil {
			bad("input buckets[%d]: prefix %q: %v", i, prefix, err)
		}
	}

	if c.Tiers == nil || len(c.Tiers.Tiers) == 0 {
		bad("tiers: at least one tier is required")
	} else {
		_, terrs := c.tierGrants()
		errs = append(errs, terrs...)
	}
	return errors.Join(errs...)
}

// queue parses and checks an SQS queue ARN.
func (c Config) queue(what, s string) (arn, error) {
	if s == "" {
		return arn{}, fmt.Errorf("%s: required", what)
	}
	a, err := parseARN(s)
	switch {
	case err != nil:
		return arn{}, fmt.Errorf("%s: %w", what, err)
	case a.service != "sqs":
		return arn{}, fmt.Errorf("%s: %q is an ARN of %s, not sqs", what, s, a.service)
	case !validRegion(a.region):
		return arn{}, fmt.Errorf("%s: %q: Region %q is not an AWS Region or a placeholder", what, s, a.region)
	case !validAccount(a.account):
		return arn{}, fmt.Errorf("%s: %q: account %q is not 12 digits or a placeholder", what, s, a.account)
	case !queueNameRE.MatchString(a.resource) || len(a.resource) > 80:
		return arn{}, fmt.Errorf("%s: %q: queue name %q is not 1-80 letters, digits, '-' or '_' (FIFO: ending in .fifo)", what, s, a.resource)
	}
	return a, nil
}

// checkPrefix refuses a key prefix that would change what the grant covers:
// IAM reads * and ? in a resource as wildcards and ${...} as a policy
// variable, and S3 keys never start with the / that separates them from the
// bucket in an ARN.
func checkPrefix(p string) error {
	switch {
	case strings.HasPrefix(p, "/"):
		return errors.New("must not start with /")
	case strings.ContainsAny(p, "*?$"):
		return errors.New("must not contain *, ? or $ (IAM wildcards and policy variables would widen the grant)")
	}
	for _, r := range p {
		// IAM policies may hold only tab, LF, CR and U+0020-U+00FF
		// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
		if r < 0x20 || r > 0xff {
			return fmt.Errorf("character %q cannot appear in an IAM policy", r)
		}
	}
	return nil
}

// arn is an Amazon Resource Name split into its parts.
type arn struct {
	partition, service, region, account, resource string
}

func parseARN(s string) (arn, error) {
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[1] == "" || p[2] == "" {
		return arn{}, fmt.Errorf("%q is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)", s)
	}
	if strings.ContainsAny(s, "*?$ ") {
		return arn{}, fmt.Errorf("%q: wildcards, policy variables ($) and spaces are not allowed", s)
	}
	return arn{partition: p[1], service: p[2], region: p[3], account: p[4], resource: p[5]}, nil
}

func (a arn) String() string {
	return strings.Join([]string{"arn", a.partition, a.service, a.region, a.account, a.resource}, ":")
}

// partition is the job queue's partition (aws, aws-cn, aws-us-gov), which
// every ARN of the policy shares.
func (c Config) partition() string {
	if q, err := parseARN(c.QueueARN); err == nil {
		return q.partition
	}
	return "aws"
}
