package pipeline

// KumoURLForSuite is the test binary's kumo server, set by TestMain (in
// package pipeline_test) for the internal tests that run on it.
var KumoURLForSuite string
