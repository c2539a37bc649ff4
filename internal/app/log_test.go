package app_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	"github.com/tierq/tierq/internal/app"
	"github.com/tierq/tierq/internal/emulator"
	"github.com/tierq/tierq/internal/testenv"
)

func decodeLines(t *testing.T, b *testenv.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range b.Lines() {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

// Durations are written as Go duration strings, wherever they appear.
func TestNewLoggerWritesDurationsAsText(t *testing.T) {
	t.Parallel()
	var b testenv.Buffer
	log := app.NewLogger(&b, slog.LevelInfo)
	log.Info("released", "retry_after", 30*time.Second, "wait", 1500*time.Millisecond,
		slog.Group("drain", "timeout", 25*time.Second), "attempts", 3)
	rec := decodeLines(t, &b)[0]
	if rec["retry_after"] != "30s" || rec["wait"] != "1.5s" || rec["attempts"] != float64(3) {
		t.Errorf("line %v: want retry_after 30s, wait 1.5s, attempts 3", rec)
	}
	if g, _ := rec["drain"].(map[string]any); g["timeout"] != "25s" {
		t.Errorf("grouped duration %v, want 25s", rec["drain"])
	}
}

func TestSDKLoggerMapsLevels(t *testing.T) {
	t.Parallel()
	var b testenv.Buffer
	sdk := app.SDKLogger(app.NewLogger(&b, slog.LevelInfo))
	sdk.Logf(logging.Warn, "failed to discard remaining HTTP response body, this may affect connection reuse: %s", "EOF")
	sdk.Logf(logging.Debug, "Response has no supported checksum. Not validating response payload.")
	sdk.Logf(logging.Classification("OTHER"), "something")
	recs := decodeLines(t, &b)
	if len(recs) != 2 {
		t.Fatalf("%d lines, want 2 (DEBUG is below the level):\n%s", len(recs), b.String())
	}
	if recs[0]["level"] != "WARN" || recs[0]["source"] != "aws-sdk" ||
		recs[0]["msg"] != "failed to discard remaining HTTP response body, this may affect connection reuse: EOF" {
		t.Errorf("warn line %v", recs[0])
	}
	if recs[1]["level"] != "INFO" || recs[1]["source"] != "aws-sdk" {
		t.Errorf("unclassified line %v, want INFO from aws-sdk", recs[1])
	}
}

// A real SDK client logs through SDKLogger: S3's DEBUG line about a
// response without a checksum (kumo returns none) arrives as JSON.
func TestSDKLoggerReceivesTheSDKsLines(t *testing.T) {
	t.Parallel()
	_, s3c := kumo(t)
	bucket := emulator.Name(t, "sdklog")
	ctx := t.Context()
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	var b testenv.Buffer
	_, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), ChecksumMode: s3types.ChecksumModeEnabled},
		func(o *s3.Options) {
			o.Logger = app.SDKLogger(app.NewLogger(&b, slog.LevelDebug))
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
		})
	if err != nil {
		t.Fatal(err)
	}
	recs := decodeLines(t, &b)
	if len(recs) == 0 || recs[0]["source"] != "aws-sdk" || recs[0]["level"] != "DEBUG" ||
		!strings.Contains(recs[0]["msg"].(string), "checksum") {
		t.Errorf("SDK lines %v, want the checksum DEBUG line from aws-sdk", recs)
	}
}
