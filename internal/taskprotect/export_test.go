package taskprotect

import "log/slog"

// StartGuard is NewGuard with a channel that receives after each event the
// guard's loop handled, so tests can wait for it instead of sleeping.
func StartGuard(c *Client, cfg GuardConfig, log *slog.Logger, stepped chan<- struct{}) (*Guard, error) {
	return startGuard(c, cfg, log, stepped)
}
