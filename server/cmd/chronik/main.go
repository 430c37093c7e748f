// Command chronik is the Chronik broker.
//
//	chronik serve [flags]   run a broker (not built yet: see DESIGN.md)
//	chronik version         print the version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: chronik serve [flags] | chronik version")
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "chronik", version)
		return 0
	case "serve":
		// Honest until the Kafka front end lands: nothing listens yet, so
		// say so instead of pretending to be a broker.
		fmt.Fprintln(stderr, "chronik serve: the broker is not built yet; "+
			"the storage and network seams exist, the Kafka front end does not (see DESIGN.md, \"Not built yet\")")
		return 3
	default:
		fmt.Fprintf(stderr, "chronik: unknown command %q\nusage: chronik serve [flags] | chronik version\n", args[0])
		return 2
	}
}
