// Package emulator points real AWS SDK clients at the in-process emulators
// (kumo for SQS and S3) and names the resources tests create on them.
//
// It exists because every integration test, the benchmarks and the embedded
// demo stack need the same client settings and the same naming rule, and a
// setting forgotten in one copy fails in confusing ways: without path-style
// addressing the bucket goes in the host name, which does not resolve; with
// default checksums over HTTPS kumo stores aws-chunked uploads corrupted.
// It is not for production clients: those
// come from config.LoadDefaultConfig in cmd/tierq, and importing this package
// links all of kumo (about 32 MB) into the binary.
package emulator
