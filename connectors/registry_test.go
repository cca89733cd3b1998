package connectors_test

import (
	"reflect"
	"strings"
	"testing"

	"hots/connectors"
	_ "hots/connectors/file"
	_ "hots/connectors/http"
	_ "hots/connectors/kafka"
	_ "hots/connectors/prometheus"
)

func TestLookupNamesTheRegisteredConnectors(t *testing.T) {
	_, err := connectors.Lookup("ftp")
	if err == nil || !strings.Contains(err.Error(), `connector.type = "ftp": unknown connector; registered: `) {
		t.Fatalf("err = %v", err)
	}
	for _, n := range []string{"file", "kafka"} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%v does not list %s", err, n)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		conn    string
		raw     connectors.Raw
		unknown []string
		err     string
	}{
		{"defaults", "file", connectors.Raw{}, nil, ""},
		{"a typo is unknown, with its full key", "file", connectors.Raw{Parameters: map[string]any{"data_foldr": "x"}}, []string{"connector.parameters.data_foldr"}, ""},
		{"the section's keys are the connector's", "kafka", connectors.Raw{Sections: map[string]any{"kafka": map[string]any{"grup": "g"}}}, []string{"kafka.grup"}, ""},
		{"a wrong type names the key", "kafka", connectors.Raw{Sections: map[string]any{"kafka": map[string]any{"partitions": "many"}}}, nil, "kafka.partitions"},
		{"a bad duration names the key", "kafka", connectors.Raw{Sections: map[string]any{"kafka": map[string]any{"lateness": "soon"}}}, nil, "kafka.lateness"},
		{"Validate names the key", "kafka", connectors.Raw{Sections: map[string]any{"kafka": map[string]any{"partitions": 0}}}, nil, "kafka.partitions = 0: must be >= 1"},
		{"an env string list is split", "kafka", connectors.Raw{Sections: map[string]any{"kafka": map[string]any{"brokers": "a:1,b:2"}}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := connectors.Decode(tt.conn, tt.raw)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to name %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d.Unknown, tt.unknown) {
				t.Errorf("unknown %v, want %v", d.Unknown, tt.unknown)
			}
		})
	}
}

// Every registered connector documents each parameter its Args read, and
// each documented key is one the Args read (their defaults come from Args).
func TestEveryParameterIsDocumented(t *testing.T) {
	for _, n := range connectors.Names() {
		r, _ := connectors.Lookup(n)
		defs := r.Defaults()
		documented := map[string]bool{}
		for _, k := range r.Keys {
			full := "connector.parameters." + k.Key
			if r.Section != "" && strings.HasPrefix(k.Key, r.Section+".") {
				full = k.Key
			}
			documented[full] = true
			if _, ok := defs[full]; !ok {
				t.Errorf("%s: documented key %s is not a field of its Args", n, full)
			}
		}
		for _, key := range leaves(reflect.TypeOf(r.NewArgs()).Elem(), "") {
			full := "connector.parameters." + key
			if r.Section != "" && (key == r.Section || strings.HasPrefix(key, r.Section+".")) {
				full = key
			}
			if !documented[full] && !strings.HasPrefix(key, "bootstrap") {
				t.Errorf("%s: parameter %s is not documented in Keys", n, full)
			}
		}
	}
}

func leaves(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if f.Anonymous && tag == "" && opts == "squash" {
			out = append(out, leaves(f.Type, prefix)...) // an embedded block of keys (webhook.Args)
			continue
		}
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Duration" {
			out = append(out, leaves(f.Type, key)...)
			continue
		}
		out = append(out, key)
	}
	return out
}
