// Command chronik is the Chronik broker.
//
//	chronik serve [flags]   run a broker (flags or CHRONIK_* variables; see -h)
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
		return serve(args[1:], stderr)
	default:
		fmt.Fprintf(stderr, "chronik: unknown command %q\nusage: chronik serve [flags] | chronik version\n", args[0])
		return 2
	}
}
