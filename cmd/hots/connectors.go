package main

import (
	"context"
	"fmt"
	"io"

	"hots/connectors"

	// The connectors this binary offers: each registers itself. A new
	// connector is one package and one line here.
	_ "hots/connectors/file"
	_ "hots/connectors/http"
	_ "hots/connectors/kafka"
	_ "hots/connectors/prometheus"
)

func init() {
	register(command{"connectors", "list the registered connectors (connector.type) and their parameters", cmdConnectors})
}

func cmdConnectors(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("connectors", stderr)
	markdown := fs.Bool("markdown", false, "print each connector's parameter table")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *markdown {
		_, err := io.WriteString(stdout, connectors.MarkdownTable())
		return err
	}
	for _, n := range connectors.Names() {
		r, _ := connectors.Lookup(n)
		fmt.Fprintf(stdout, "%-12s %s\n", n, r.Summary)
	}
	return nil
}
