package sizing

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// WriteFiles writes the JSON and HTML reports; an empty path skips that
// format. Each file is written whole or not at all, under a temporary name
// renamed into place, so a reader never sees half a report.
func (r *Report) WriteFiles(jsonPath, htmlPath string) error {
	var errs []error
	if jsonPath != "" {
		errs = append(errs, writeFile(jsonPath, r.WriteJSON))
	}
	if htmlPath != "" {
		errs = append(errs, writeFile(htmlPath, r.WriteHTML))
	}
	return errors.Join(errs...)
}

func writeFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(dirOf(path), ".sizing-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:i+1]
		}
	}
	return "."
}
