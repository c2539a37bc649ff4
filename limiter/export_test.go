package limiter

// SetWaitHook makes every Acquire that is about to block call f with its
// model first, so tests know a waiter is queued without sleeping.
func SetWaitHook(a *Adaptive, f func(model string)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.waitHook = f
}
