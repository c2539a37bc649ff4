package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemoOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		wantTiers string
		wantErr   string
	}{
		{"default tiers", nil, "", ""},
		{"tiers file", []string{"-tiers", "flex.yaml"}, "flex.yaml", ""},
		{"tiers file with other flags", []string{"-workers", "3", "--tiers=/tmp/x.yaml"}, "/tmp/x.yaml", ""},
		{"stray argument", []string{"flex.yaml"}, "", "unexpected arguments"},
		{"unknown flag", []string{"-tier", "x"}, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			opts, err := demoOptions(tt.args, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(stderr.String(), tt.wantErr) {
					t.Fatalf("demoOptions(%q) error %v, stderr %q; want one saying %q", tt.args, err, stderr.String(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("demoOptions(%q): %v", tt.args, err)
			}
			if opts.Tiers != tt.wantTiers {
				t.Errorf("demoOptions(%q).Tiers = %q, want %q", tt.args, opts.Tiers, tt.wantTiers)
			}
			if opts.Corpus != "testdata/corpus" || opts.Out != "demo-out" {
				t.Errorf("demoOptions(%q) = corpus %q out %q, want the defaults", tt.args, opts.Corpus, opts.Out)
			}
		})
	}
}
