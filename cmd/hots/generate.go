package main

import (
	"context"
	"fmt"
	"io"

	"hots/connectors/file/sample"
)

func cmdGenerate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("generate", stderr)
	out := fs.String("out", "", "folder to write container_usage.csv and node_meta.csv into (required)")
	var p sample.Params
	fs.IntVar(&p.Containers, "containers", sample.DefaultContainers, "containers (per domain)")
	fs.IntVar(&p.Hosts, "hosts", sample.DefaultHosts, "hosts (per domain)")
	fs.IntVar(&p.Domains, "domains", 1, "independent clusters in one trace, with a "+sample.DomainField+" column in both CSVs and names d1_n_1, d1_c_1…")
	fs.IntVar(&p.Ticks, "ticks", sample.DefaultTicks, "ticks")
	fs.Uint64Var(&p.Seed, "seed", sample.DefaultSeed, "seed (the same seed gives the same trace)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := trimArgs(fs, 0, "no arguments"); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: generate: --out DIR is required", errUsage)
	}
	tr, err := sample.Generate(p)
	if err != nil {
		return err
	}
	if err := tr.Write(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d containers × %d ticks on %d hosts to %s\n", len(tr.Containers), len(tr.Usage), len(tr.Hosts), *out)
	if p.Domains > 1 {
		fmt.Fprintf(stdout, "%d domains in the %q column: set connector.parameters.domain_field: %s (or --set connector.parameters.domain_field=%s)\n",
			p.Domains, sample.DomainField, sample.DomainField, sample.DomainField)
	}
	return nil
}
