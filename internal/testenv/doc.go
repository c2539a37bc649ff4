// Package testenv holds the helpers that tests in several packages share, so
// each is written once: compiling a JSON Schema and validating a document
// against it, and a buffer that concurrent workers may log to. Helpers that
// production entry points share with tests (the emulators' clients, queue
// depth) are in package emulator.
//
// It is for tests only (it imports testing); it is not for production code,
// which validates jobs with jobv1.ParseJob.
package testenv
