package ops

// Test hooks for package ops_test.

// WithAfterMove returns c calling f with the running total after each batch
// moved.
func WithAfterMove(c RedriveConfig, f func(moved int)) RedriveConfig {
	c.afterMove = f
	return c
}

// WithCrashAfterSend returns c stopping, as a killed process would, right
// after a send for which f returns true and before its delete.
func WithCrashAfterSend(c RedriveConfig, f func() bool) RedriveConfig {
	c.crashAfterSend = f
	return c
}
