package file_test

import (
	"bufio"
	"encoding/csv"
	"os"
	"testing"

	"hots/codecs"
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
			f, err := os.Open(moves)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var out []placement.Move
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				m, err := codecs.DecodeMove(sc.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, m)
			}
			return out
		},
		Poisoned: func(t *testing.T, conn connectors.Connector) int {
			_, _, _, rejects := conn.(*file.Connector).Paths()
			f, err := os.Open(rejects)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rows, err := csv.NewReader(f).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			return len(rows) - 1 // the header
		},
	})
}
