package file_test

import (
	"testing"

	"hots/connectors"
	"hots/connectors/connectortest"
	"hots/connectors/file"
	"hots/placement"
)

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		Open: func(t *testing.T, trace string, env connectors.Env) (connectors.Connector, connectortest.Feed) {
			c, err := file.New(env, file.Args{DataFolder: trace, FileName: "container_usage.csv", NodeMetaFile: "node_meta.csv", ResetOnStart: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c, nil
		},
		Published: func(t *testing.T, conn connectors.Connector) []placement.Move {
			_, _, moves, _ := conn.(*file.Connector).Paths()
			return connectortest.MovesFile(t, moves)
		},
		Poisoned: func(t *testing.T, conn connectors.Connector) int {
			_, _, _, rejects := conn.(*file.Connector).Paths()
			return len(connectortest.RejectsFile(t, rejects))
		},
	})
}
