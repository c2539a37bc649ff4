// Package demo runs tierq end to end on emulators inside one process, for
// `make demo`. It is a development tool: it links the emulators, so it lives
// apart from the production worker and is wired by cmd/tierq-dev.
package demo
