package awserr

import (
	"errors"
	"net/http"
	"slices"

	"github.com/aws/smithy-go"
)

// Code is the AWS error code carried by err, or "".
func Code(err error) string {
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		return coded.ErrorCode()
	}
	return ""
}

// HTTPStatus is the status of the response err came with, or 0 when there
// was no response (a network error, a context that ended).
func HTTPStatus(err error) int {
	var he interface{ HTTPStatusCode() int }
	if errors.As(err, &he) {
		return he.HTTPStatusCode()
	}
	return 0
}

// credentialCodes are AWS's answers to requests it could not authenticate.
// They come back as 4xx, like a bad request, but nothing is wrong with the
// request's content: the caller's credentials or clock are, and those
// recover (the SDK refreshes credentials and corrects clock skew) or get
// fixed by a person. Bedrock and STS use the first six, S3 the rest; SQS
// uses some of both.
var credentialCodes = []string{
	"ExpiredTokenException", "UnrecognizedClientException", "InvalidSignatureException",
	"InvalidClientTokenId", "RequestExpired", "IncompleteSignature",
	"ExpiredToken", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "RequestTimeTooSkewed",
}

// Credential reports whether err is AWS refusing to authenticate the
// request, and its code.
func Credential(err error) (string, bool) {
	code := Code(err)
	return code, CredentialCode(code)
}

// CredentialCode reports whether an AWS error code (of an error, or of one
// entry of a batch answer) is a refusal to authenticate.
func CredentialCode(code string) bool { return slices.Contains(credentialCodes, code) }

// throttleCodes are AWS's codes for "too many requests, try later", across
// the services tierq calls.
var throttleCodes = []string{
	"ThrottlingException", "Throttling", "RequestThrottled", "RequestLimitExceeded",
	"SlowDown", "KmsThrottled", "TooManyRequestsException",
}

// Throttled reports whether err asks the caller to slow down: a throttling
// code, or HTTP 429.
func Throttled(err error) bool {
	return slices.Contains(throttleCodes, Code(err)) || HTTPStatus(err) == http.StatusTooManyRequests
}

// ClientFault reports an error the service blames on the request (a batch
// over its size limit, a malformed parameter): the same request cannot
// succeed. Throttling is a client fault to AWS but not here.
func ClientFault(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultClient && !Throttled(err)
}

// MissingQueue reports that an SQS queue does not exist. Real SQS and the
// emulators disagree on the typed error, but all carry one of these codes.
func MissingQueue(err error) bool { return MissingQueueCode(Code(err)) }

// MissingQueueCode reports whether an AWS error code says an SQS queue does
// not exist.
func MissingQueueCode(code string) bool {
	return code == "AWS.SimpleQueueService.NonExistentQueue" || code == "QueueDoesNotExist"
}

// AccessDenied reports an answer that the caller may not do this: S3's
// AccessDenied or any 403 (a HEAD answer has no body to carry a code),
// and the AccessDeniedException of other services.
func AccessDenied(err error) bool {
	return AccessDeniedCode(Code(err)) || HTTPStatus(err) == http.StatusForbidden
}

// AccessDeniedCode reports whether an AWS error code says the caller may
// not do this.
func AccessDeniedCode(code string) bool {
	return code == "AccessDenied" || code == "AccessDeniedException"
}

// NotFound reports S3's "no such object": NoSuchKey or NoSuchBucket from
// GetObject, NotFound or a bare 404 from HeadObject.
func NotFound(err error) bool {
	switch Code(err) {
	case "NoSuchKey", "NoSuchBucket", "NotFound":
		return true
	}
	return HTTPStatus(err) == http.StatusNotFound
}

// PreconditionFailed is S3's 412 to a conditional write (If-None-Match: *
// on an existing key, If-Match on a changed one).
func PreconditionFailed(err error) bool {
	return Code(err) == "PreconditionFailed" || HTTPStatus(err) == http.StatusPreconditionFailed
}

// ConditionalConflict is S3's 409 ConditionalRequestConflict: another
// conditional write to the same key was in flight.
func ConditionalConflict(err error) bool {
	return Code(err) == "ConditionalRequestConflict" || HTTPStatus(err) == http.StatusConflict
}
