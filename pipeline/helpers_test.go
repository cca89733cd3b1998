package pipeline

import (
	"context"
	"path/filepath"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/connectors/file"
)

// setParam sets a key of the connector's own parameters
// (connector.parameters.<key>), as a configuration file would.
func setParam(cfg *config.Config, key string, v any) {
	if cfg.Connector.Parameters.Extra == nil {
		cfg.Connector.Parameters.Extra = map[string]any{}
	}
	cfg.Connector.Parameters.Extra[key] = v
}

func param(cfg config.Config, key string) string {
	s, _ := cfg.Connector.Parameters.Extra[key].(string)
	return s
}

// replayFile runs the file connector over cfg's data_folder, as `hots
// run` does, and returns the run's result with the connector (its paths).
func replayFile(ctx context.Context, cfg config.Config, obs Observer) (*Result, *file.Connector, error) {
	if cfg.Connector.Type == "" {
		cfg.Connector.Type = file.Name
	}
	env := Env(cfg, nil)
	env.RunDir = filepath.Dir(param(cfg, "outfile"))
	if obs != nil {
		env.Reject = func(e *codecs.RowError) { obs.Rejected(ToReject(e)) }
		env.Progress = obs.Progress
	}
	c, _, err := connectors.Open(cfg.Connector.Type, RawConnector(cfg), env)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	res, err := Run(ctx, cfg, c, Options{Observer: obs})
	return res, c.(*file.Connector), err
}
