package app_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierq/tierq/internal/app"
)

// New reports every problem with the settings at once: a tiers file that
// does not load does not hide a missing queue or a bad limiter. Each names
// the Settings field to change.
func TestNewReportsEveryProblem(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "tiers.yaml")
	if err := os.WriteFile(bad, []byte("tiers: [{name: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := app.New(app.Settings{TiersFile: bad, Limiter: "fastest", WaitTime: 30 * time.Second, ModelCheck: "ping"},
		app.Clients{}, io.Discard, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("New = nil, want every problem")
	}
	var got []string
	for _, se := range app.SettingErrors(err) {
		got = append(got, se.Setting)
	}
	want := []string{"TiersFile", "Limiter", "ModelCheck", "QueueURL", "DeadLetterQueueURL", "WaitTime", "ResultsBucket"}
	if !slices.Equal(got, want) {
		t.Errorf("settings at fault %v, want %v:\n%v", got, want, err)
	}
	for _, want := range []string{"tiers file", `Limiter: "fastest" is not adaptive or fixed`, "ResultsBucket: required",
		"QueueURL: required", "WaitTime: must be whole seconds in 0..20s, got 30s", `ModelCheck: "ping" is not converse`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New's error lacks %q:\n%v", want, err)
		}
	}
}

// The claim lease follows the visibility timeout unless set, and may not
// outlive it: a killed worker's redelivered message would wait out the claim.
func TestClaimLeaseAgainstVisibilityTimeout(t *testing.T) {
	t.Parallel()
	base := app.Settings{QueueURL: "q", DeadLetterQueueURL: "d", ResultsBucket: "b"}
	tests := []struct {
		name    string
		vis     time.Duration
		lease   time.Duration
		wantErr string
	}{
		{"defaults", 0, 0, ""},
		{"lease follows a shorter visibility timeout", 10 * time.Second, 0, ""},
		{"shorter lease", 30 * time.Second, 10 * time.Second, ""},
		{"equal", 30 * time.Second, 30 * time.Second, ""},
		{"lease outlives the message", 30 * time.Second, time.Minute,
			"ClaimLease: 1m0s is longer than the visibility timeout 30s"},
		{"lease outlives the default visibility timeout", 0, 45 * time.Second,
			"ClaimLease: 45s is longer than the visibility timeout 30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := base
			s.VisibilityTimeout, s.ClaimLease = tt.vis, tt.lease
			_, err := app.New(s, app.Clients{Queue: nopQueue{}, Store: nopStore{}, Converser: nopConverser{}}, io.Discard, slog.New(slog.DiscardHandler))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
