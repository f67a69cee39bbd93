// Command steward is Steward's single binary: `steward serve` runs the
// platform; every other subcommand is a client of it.
package main

import (
	"context"
	"os"

	"github.com/stewardhq/steward/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}
