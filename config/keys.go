package config

import (
	"reflect"
	"strings"
)

// keyKind is what the Config struct holds at a dotted key.
type keyKind int

const (
	kindLeaf keyKind = iota
	kindList         // []string: comma-split in env and --set
	kindMap          // free-form object: anything below it is accepted
)

// schema maps every dotted key of Config to its kind. It is derived from the
// koanf tags so that a field added to Config is known to the loader at once.
var schema, structPaths = buildSchema()

func buildSchema() (map[string]keyKind, map[string]bool) {
	out, structs := map[string]keyKind{}, map[string]bool{}
	walkType(reflect.TypeOf(Config{}), "", out, structs)
	return out, structs
}

func walkType(t reflect.Type, prefix string, out map[string]keyKind, structs map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" || tag == "-" || strings.HasPrefix(tag, ",") {
			continue // ",remain": keys a connector owns, not config's
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			structs[key] = true
			walkType(ft, key, out, structs)
		case ft.Kind() == reflect.Map:
			out[key] = kindMap
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
			out[key] = kindList
		default:
			out[key] = kindLeaf
		}
	}
}

// dottedLeaves are keys whose last segment itself contains a dot (upstream's
// Kafka connector writes "bootstrap.servers"). Env and flag layers produce
// them nested; foldDotted turns them back into one key.
var dottedLeaves = func() []string {
	var out []string
	for k := range schema {
		if strings.Count(k, ".") > 0 {
			// A key is dotted-leaf when its parent path is not itself a
			// struct path, i.e. when splitting it yields an unknown parent.
			parts := strings.Split(k, ".")
			for i := 1; i < len(parts); i++ {
				parent := strings.Join(parts[:i], ".")
				if !isStructPath(parent) {
					out = append(out, k)
					break
				}
			}
		}
	}
	return out
}()

func isStructPath(p string) bool { return structPaths[p] }

// foldDotted rewrites {…parameters: {bootstrap: {servers: v}}} into
// {…parameters: {"bootstrap.servers": v}} for every dotted leaf.
func foldDotted(m map[string]any) {
	for _, k := range dottedLeaves {
		parts := strings.Split(k, ".")
		// Find the longest struct parent.
		cut := 0
		for i := 1; i < len(parts); i++ {
			if isStructPath(strings.Join(parts[:i], ".")) {
				cut = i
			}
		}
		parent := lookupMap(m, parts[:cut])
		if parent == nil {
			continue
		}
		rest := parts[cut:]
		if v, ok := lookup(parent, rest); ok {
			parent[strings.Join(rest, ".")] = v
			// Remove the nested form, and its first segment if now empty.
			if sub, ok := parent[rest[0]].(map[string]any); ok {
				deletePath(sub, rest[1:])
				if len(sub) == 0 {
					delete(parent, rest[0])
				}
			}
		}
	}
}

func lookupMap(m map[string]any, path []string) map[string]any {
	cur := m
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func lookup(m map[string]any, path []string) (any, bool) {
	if len(path) == 0 {
		return m, true
	}
	if v, ok := m[strings.Join(path, ".")]; ok {
		return v, true
	}
	cur := m
	for i, p := range path {
		v, ok := cur[p]
		if !ok {
			return nil, false
		}
		if i == len(path)-1 {
			return v, true
		}
		if cur, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

func deletePath(m map[string]any, path []string) {
	if len(path) == 0 {
		return
	}
	if len(path) == 1 {
		delete(m, path[0])
		return
	}
	if sub, ok := m[path[0]].(map[string]any); ok {
		deletePath(sub, path[1:])
		if len(sub) == 0 {
			delete(m, path[0])
		}
	}
}

func setPath(m map[string]any, path []string, v any) {
	cur := m
	for _, p := range path[:len(path)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[path[len(path)-1]] = v
}

// splitKey splits a dotted key into map path segments, keeping a dotted
// leaf such as connector.parameters.bootstrap.servers together.
func splitKey(k string) []string {
	for _, d := range dottedLeaves {
		if k == d {
			parts := strings.Split(k, ".")
			cut := 0
			for i := 1; i < len(parts); i++ {
				if isStructPath(strings.Join(parts[:i], ".")) {
					cut = i
				}
			}
			return append(parts[:cut:cut], strings.Join(parts[cut:], "."))
		}
	}
	return strings.Split(k, ".")
}

// splitList turns "a, b,,c" into [a b c]; the koanf gotcha is that env
// strings otherwise become one-element lists.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
