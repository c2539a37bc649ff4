package app_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierq/tierq/internal/app"
)

// New reports every problem with the settings at once: a tiers file that
// does not load does not hide a missing queue or a bad limiter.
func TestNewReportsEveryProblem(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "tiers.yaml")
	if err := os.WriteFile(bad, []byte("tiers: [{name: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := app.New(app.Settings{TiersFile: bad, Limiter: "fastest"}, app.Clients{}, io.Discard, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("New = nil, want every problem")
	}
	for _, want := range []string{"tiers file", `limiter: "fastest"`, "QueueURL", "results bucket"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New's error lacks %q:\n%v", want, err)
		}
	}
}
