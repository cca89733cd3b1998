package config

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Upstream's pre-2.0 params.json (spec 1.5) shares clustering and
// optimization with the HEAD format but nothing else. These top-level keys
// never occur in a HEAD config and reveal the legacy one.
var legacyTopKeys = []string{"allocation", "analysis", "csv", "data", "heuristic", "host_meta_path", "kafkaConf", "loop", "placement", "plot"}

// legacyTargets says where each convertible legacy key goes.
var legacyTargets = map[string]string{
	"data.individual_field":        "connector.parameters.individual_field",
	"data.host_field":              "connector.parameters.host_field",
	"data.tick_field":              "connector.parameters.tick_field",
	"data.metrics":                 "connector.parameters.metrics",
	"data.individuals_file":        "connector.parameters.file_name",
	"data.hosts_meta_file":         "connector.parameters.node_meta_file",
	"analysis.sep_time":            "connector.parameters.sep_time",
	"analysis.placement_recompute": "problem.parameters.initial_placement",
	"placement.enable":             "problem.parameters.initial_placement",
	"clustering.algo":              "clustering.method",
	"clustering.nb_clusters":       "clustering.nb_clusters",
	"heuristic.algo":               "problem.parameters.initial_method",
	"optimization.solver":          "optimization.parameters.solver",
	"optimization.verbose":         "optimization.parameters.verbose",
	"loop.window_duration":         "connector.parameters.window_duration",
	"loop.tick":                    "connector.parameters.tick_increment",
	"loop.tol_dual_clust":          "problem.parameters.tol_clust",
	"loop.tol_dual_place":          "problem.parameters.tol_place",
	"loop.tol_move_clust":          "problem.parameters.tol_move",
	"loop.tol_move_place":          "problem.parameters.tol_move",
	"kafkaConf.Consumer.brokers":   "kafka.brokers",
	"kafkaConf.Consumer.group":     "kafka.group",
	"kafkaConf.schema":             "kafka.schema",
	"kafkaConf.schema_url":         "kafka.schema_url",
	"kafkaConf.connector_url":      "kafka.connector_url",
}

// legacyDropped are legacy keys with no hots equivalent, and why.
var legacyDropped = map[string]string{
	"csv":                             "hots reads CSV with connector.type file; live data is connector.type kafka",
	"host_meta_path":                  "hots reads node_meta_file from data_folder (set to the params file's folder)",
	"analysis.window_duration":        "a v0.1.x percentage of the ticks; set connector.parameters.window_duration in ticks",
	"loop.mode":                       "hots has one loop mode",
	"loop.constraints_dual":           "unused upstream",
	"loop.tol_open_clust":             "no effect upstream (multiplied by 0)",
	"loop.tol_step":                   "tolerances do not drift in hots",
	"placement.allocation_support":    "not read upstream",
	"placement.allocation_objectives": "not read upstream",
	"allocation":                      "commented-out code upstream",
	"plot":                            "hots always writes SVG plots",
	"kafkaConf.topics":                "set kafka.usage_topics and kafka.moves_topic",
	"kafkaConf.Producer":              "hots produces to kafka.brokers",
	"data":                            "",
	"optimization.model":              "not read upstream",
}

func legacyReveal(m map[string]any) []string {
	var out []string
	for _, k := range legacyTopKeys {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	if c, ok := m["clustering"].(map[string]any); ok {
		if _, ok := c["algo"]; ok {
			out = append(out, "clustering.algo")
		}
	}
	if o, ok := m["optimization"].(map[string]any); ok {
		if _, ok := o["solver"]; ok {
			out = append(out, "optimization.solver")
		}
	}
	// A HEAD file with a stray legacy key stays a HEAD file: the stray key
	// is reported as unknown, with a hint.
	if _, head := m["connector"]; head {
		return nil
	}
	if _, head := m["problem"]; head {
		return nil
	}
	return out
}

// convertLegacy returns the HEAD-shaped map for a legacy params.json and a
// note per legacy key saying where it went.
func convertLegacy(m map[string]any, path string) (map[string]any, []Note) {
	flat := map[string]any{}
	flatten(m, "", flat)
	out := map[string]any{}
	var notes []Note
	set := func(key string, v any) { setPath(out, splitKey(key), v) }

	set("connector.type", "file")
	set("problem.type", "placement")
	dir := "."
	if path != "" {
		dir = filepath.Dir(path)
	}
	set("connector.parameters.data_folder", dir)

	tolMove := -1.0
	for _, key := range sortedKeys(flat) {
		v := flat[key]
		to, ok := legacyTargets[key]
		if !ok {
			why := droppedWhy(key)
			notes = append(notes, Note{key, "not converted: " + why})
			continue
		}
		note := "→ " + to
		switch key {
		case "clustering.algo":
			v = clusteringMethod(fmt.Sprint(v))
		case "analysis.sep_time":
			note += " (read as an absolute tick, as pre-refactor did; v0.1.x read it as a percentage of the ticks)"
		case "loop.tick":
			if s, ok := v.(string); ok && s == "default" {
				if wd, ok := flat["loop.window_duration"]; ok {
					if w, err := strconv.Atoi(fmt.Sprint(wd)); err == nil {
						v = w - 1
					}
				} else {
					continue
				}
				note += " (\"default\" = window_duration − 1)"
			}
		case "placement.enable":
			if _, ok := flat["analysis.placement_recompute"]; ok {
				notes = append(notes, Note{key, "not converted: analysis.placement_recompute decides"})
				continue
			}
		case "loop.tol_dual_clust", "loop.tol_dual_place":
			note += " (upstream compared relative changes, hots absolute ones: re-tune)"
		case "loop.tol_move_clust", "loop.tol_move_place":
			f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
			if err == nil && f > tolMove {
				tolMove = f
				v = f
			} else {
				v = tolMove
			}
			note += " (the larger of tol_move_clust and tol_move_place)"
		}
		set(to, v)
		notes = append(notes, Note{key, note})
	}
	sort.SliceStable(notes, func(i, j int) bool { return notes[i].Key < notes[j].Key })
	return out, notes
}

func droppedWhy(key string) string {
	for k := key; k != ""; {
		if why, ok := legacyDropped[k]; ok && why != "" {
			return why
		}
		i := strings.LastIndex(k, ".")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return "no hots equivalent"
}

// flatten writes leaves of m as dotted keys; lists are leaves.
func flatten(m map[string]any, prefix string, out map[string]any) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			if _, target := legacyTargets[key]; !target {
				flatten(sub, key, out)
				continue
			}
		}
		out[key] = v
	}
}
