// Command switchyard is the all-in-one Switchyard binary. `switchyard dev`
// runs every service in one process with an embedded NATS server and an
// embedded DuckDB warehouse; `switchyard ingest` runs the Ingest service
// alone against an external NATS server and a remote Catalog.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchyardhq/switchyard/services/switchyard/internal/dev"
)

const usage = `Usage: switchyard <command> [flags]

Commands:
  dev       run every service in one process (embedded NATS and DuckDB)
  ingest    run the Ingest service (Tracking API) alone, on an external NATS
            server, following the configuration of a remote Catalog
  version   print the version

Run 'switchyard dev -h' or 'switchyard ingest -h' for their flags.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "dev":
		cfg, err := dev.ParseFlags(args[1:], os.Getenv)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "switchyard dev: %v\n", err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := dev.Run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "switchyard dev: %v\n", err)
			return 1
		}
		return 0
	case "ingest":
		cfg, err := dev.ParseIngestFlags(args[1:])
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "switchyard ingest: %v\n", err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := dev.RunIngest(ctx, cfg, os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "switchyard ingest: %v\n", err)
			return 1
		}
		return 0
	case "version", "--version", "-v":
		fmt.Println("switchyard", version)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "switchyard: unknown command %q\n\n%s", args[0], usage)
	return 2
}
