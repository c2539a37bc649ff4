package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/smithy-go/logging"
)

// NewLogger returns the worker's logger: one JSON object per line on w,
// at level and above.
//
// Durations have one form in every line: a time.Duration attribute is
// written as Go's duration string ("30s", "1.5s", "2m0s"), which
// time.ParseDuration reads back, instead of slog's default integer of
// nanoseconds. Code logs the time.Duration value itself, never a number of
// nanoseconds or seconds under a name that does not say so.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationsAsText}))
}

// durationsAsText is NewLogger's ReplaceAttr.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// SDKLogger routes the AWS SDK's own log lines (aws.Config.Logger) through
// log, so that stderr stays one JSON object per line: without it the SDK
// writes plain text ("SDK 2026/11/29 ... WARN failed to discard remaining
// HTTP response body ...") into the JSON stream. Each line carries
// "source":"aws-sdk"; the SDK's WARN classification becomes slog's Warn
// and DEBUG becomes Debug (any other is Info).
//
// The SDK logs request and response bodies only when aws.Config's
// ClientLogMode asks for them; cmd/tierq leaves it at zero, so what arrives
// here are the SDK's own warnings, never a document or a credential.
func SDKLogger(log *slog.Logger) logging.Logger {
	return sdkLogger{log: log, ctx: context.Background()}
}

type sdkLogger struct {
	log *slog.Logger
	ctx context.Context
}

var (
	_ logging.Logger        = sdkLogger{}
	_ logging.ContextLogger = sdkLogger{}
)

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelInfo
	switch c {
	case logging.Warn:
		level = slog.LevelWarn
	case logging.Debug:
		level = slog.LevelDebug
	}
	if !l.log.Enabled(l.ctx, level) {
		return
	}
	l.log.Log(l.ctx, level, fmt.Sprintf(format, v...), "source", "aws-sdk")
}

// WithContext is how the SDK hands a request's context to its logger.
func (l sdkLogger) WithContext(ctx context.Context) logging.Logger {
	return sdkLogger{log: l.log, ctx: ctx}
}
