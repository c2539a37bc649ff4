// Command tierq-dev is the development entry point: it runs tierq on embedded
// emulators (`tierq-dev demo`). It links the emulators, so it is never shipped
// in the worker image; production runs cmd/tierq.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tierq/tierq/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 || os.Args[1] != "demo" {
		fmt.Fprintln(os.Stderr, "usage: tierq-dev demo [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("tierq-dev demo", flag.ExitOnError)
	var opts demo.Options
	fs.StringVar(&opts.Docs, "docs", "testdata/sim/docs", "folder of .txt documents")
	fs.StringVar(&opts.Out, "out", "demo-out", "folder for the outputs")
	fs.StringVar(&opts.Model, "model", "us.amazon.nova-micro-v1:0", "model ID")
	fs.Parse(os.Args[2:])
	if err := demo.Run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
