package config

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	kjson "github.com/knadh/koanf/parsers/json"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// DefaultFile is the configuration `hots run` uses without --config: the
// bundled sample (connector.parameters.data_folder empty, so the run
// generates its own trace).
//
//go:embed default.yaml
var DefaultFile []byte

// EnvPrefix starts every environment variable hots reads.
// HOTS_PROBLEM__PARAMETERS__TOL=0.2 sets problem.parameters.tol: "__"
// separates levels, single "_" stays part of a key.
const EnvPrefix = "HOTS_"

// EnvConfigFile names the config file when --config is not given.
const EnvConfigFile = EnvPrefix + "CONFIG"

// LoadOptions says where configuration comes from besides the defaults.
type LoadOptions struct {
	// File is a JSON (.json) or YAML (.yaml, .yml) config file; empty means
	// DefaultFile.
	File string
	// Flags, when set, are the command line, defined by RegisterFlags and
	// parsed. Only flags the user set override.
	Flags *pflag.FlagSet
	// Environ replaces os.Environ (tests).
	Environ []string
	// Strict turns unknown keys into an error.
	Strict bool
	// FlagKeys map more flags (a connector's, defined by the caller) to
	// configuration keys.
	FlagKeys map[string]string
	// Sections are top-level blocks the caller's connectors own (kafka):
	// they are kept in Config.Sections; any other unknown block is
	// reported.
	Sections []string
}

// Source names a configuration layer, lowest precedence first.
type Source string

const (
	SourceDefault Source = "default"
	SourceFile    Source = "file"
	SourceEnv     Source = "env"
	SourceFlag    Source = "flag"
)

// UnknownKey is a key no part of hots reads.
type UnknownKey struct {
	Key    string `json:"key"`
	Source Source `json:"source"`
	Hint   string `json:"hint,omitempty"`
}

// Note is a key that is accepted but not used, or a legacy key's mapping.
type Note struct {
	Key  string `json:"key"`
	Note string `json:"note"`
}

// Report tells the operator what the loader made of the inputs.
type Report struct {
	File string `json:"file"` // "" = embedded default
	// Legacy is set when the file is the pre-2.0 params.json format; Reveal
	// names the keys that gave it away and Mapped how each key was read.
	Legacy  bool         `json:"legacy"`
	Reveal  []string     `json:"reveal,omitempty"`
	Mapped  []Note       `json:"mapped,omitempty"`
	Unknown []UnknownKey `json:"unknown,omitempty"`
	Ignored []Note       `json:"ignored,omitempty"`
	// Advice are valid settings that are probably not what was meant.
	Advice []Note `json:"advice,omitempty"`

	layers map[Source]map[string]any
}

// AddUnknown records keys found unknown after loading (by the connector
// that owns connector.parameters), with the layer each came from.
func (r *Report) AddUnknown(keys ...string) {
	for _, k := range keys {
		r.Unknown = append(r.Unknown, UnknownKey{Key: k, Source: sourceOf(k, r.layers), Hint: hint(k)})
	}
	sortUnknown(r.Unknown)
}

// StrictError is the error --strict makes of unknown keys (nil if none).
func (r Report) StrictError() error {
	if len(r.Unknown) == 0 {
		return nil
	}
	keys := make([]string, len(r.Unknown))
	for i, u := range r.Unknown {
		keys[i] = u.Key
	}
	return fmt.Errorf("unknown configuration keys (strict): %s", strings.Join(keys, ", "))
}

// Warnings are the lines an operator should read, one per issue.
func (r Report) Warnings() []string {
	var out []string
	if r.Legacy {
		out = append(out, fmt.Sprintf("%s is a legacy params.json (pre-2.0 format; revealed by %s); converted, check the mapping", r.File, strings.Join(r.Reveal, ", ")))
		for _, m := range r.Mapped {
			out = append(out, fmt.Sprintf("legacy %s: %s", m.Key, m.Note))
		}
	}
	for _, u := range r.Unknown {
		s := fmt.Sprintf("unknown key %s (from %s) is not used", u.Key, u.Source)
		if u.Hint != "" {
			s += "; " + u.Hint
		}
		out = append(out, s)
	}
	for _, n := range r.Ignored {
		out = append(out, fmt.Sprintf("key %s ignored: %s", n.Key, n.Note))
	}
	for _, n := range r.Advice {
		out = append(out, fmt.Sprintf("%s: %s", n.Key, n.Note))
	}
	return out
}

// Log writes the warnings to l.
func (r Report) Log(l *slog.Logger) {
	for _, w := range r.Warnings() {
		l.Warn("config: " + w)
	}
}

// upstreamIgnored are keys upstream's own Kafka sample carries at top level
// and upstream ignores; hots ignores them too, and says so.
var upstreamIgnored = map[string]string{
	"data_folder":      "upstream ignores it at top level; connector.parameters.data_folder is read",
	"tick_field":       "upstream ignores it at top level; connector.parameters.tick_field is read",
	"host_field":       "upstream ignores it at top level; connector.parameters.host_field is read",
	"individual_field": "upstream ignores it at top level; connector.parameters.individual_field is read",
	"metrics":          "upstream ignores it at top level; connector.parameters.metrics is read",
}

// Load builds the configuration: defaults ← file ← environment ← flags,
// then validates it. The Report is filled even when an error is returned.
func Load(opts LoadOptions) (*Config, Report, error) {
	var rep Report
	k := koanf.New(".")
	layers := map[Source]map[string]any{}
	rep.layers = layers

	def := nest(Defaults())
	layers[SourceDefault] = def
	if err := k.Load(confmap.Provider(def, ""), nil); err != nil {
		return nil, rep, err
	}

	fm, err := readFile(opts.File, &rep)
	if err != nil {
		return nil, rep, err
	}
	layers[SourceFile] = fm
	if err := k.Load(confmap.Provider(fm, ""), nil); err != nil {
		return nil, rep, err
	}

	em, err := env.Provider(".", env.Opt{Prefix: EnvPrefix, TransformFunc: envKey, EnvironFunc: environ(opts.Environ)}).Read()
	if err != nil {
		return nil, rep, err
	}
	foldDotted(em)
	layers[SourceEnv] = em
	if err := k.Load(confmap.Provider(em, ""), nil); err != nil {
		return nil, rep, err
	}

	if opts.Flags != nil {
		flm, err := readFlags(opts.Flags, opts.FlagKeys)
		if err != nil {
			return nil, rep, err
		}
		layers[SourceFlag] = flm
		if err := k.Load(confmap.Provider(flm, ""), nil); err != nil {
			return nil, rep, err
		}
	}

	raw := k.Raw()
	// Every bad key is reported at once: decoding, strict unknown keys and
	// validation each add theirs.
	var errs []error
	failed := map[string]bool{}
	if err := checkInitialPlacement(raw); err != nil {
		errs = append(errs, err)
		failed[err.(*Error).Key] = true
	}
	var cfg Config
	md := mapstructure.Metadata{}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToSliceHookFunc(","),
			integralHook,
		),
		WeaklyTypedInput: true,
		Metadata:         &md,
		Result:           &cfg,
		TagName:          "koanf",
	})
	if err != nil {
		return nil, rep, err
	}
	if err := dec.Decode(raw); err != nil {
		for _, e := range decodeErrors(err, raw) {
			ce, ok := e.(*Error)
			if ok && failed[ce.Key] {
				continue // already reported, in its own words
			}
			if ok {
				failed[ce.Key] = true
			}
			errs = append(errs, e)
		}
	}
	for _, key := range md.Unused {
		rep.Unknown = append(rep.Unknown, UnknownKey{Key: key, Source: sourceOf(key, layers), Hint: hint(key)})
	}
	for _, key := range sortedKeys(cfg.Sections) {
		if !slices.Contains(opts.Sections, key) {
			rep.Unknown = append(rep.Unknown, UnknownKey{Key: key, Source: sourceOf(key, layers), Hint: hint(key)})
		}
	}
	sortUnknown(rep.Unknown)
	cfg.normalise()
	if opts.File != "" {
		cfg.Dir = filepath.Dir(opts.File)
	}
	if opts.Strict {
		if err := rep.StrictError(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		// A key that failed to decode holds its zero value: judging that
		// would report a second, made-up problem.
		for _, e := range unjoin(err) {
			if ce, ok := e.(*Error); !ok || !failed[ce.Key] {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, rep, errors.Join(errs...)
	}
	rep.Advice = cfg.advice()
	return &cfg, rep, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func environ(e []string) func() []string {
	if e == nil {
		return nil
	}
	return func() []string { return e }
}

// reservedEnv are HOTS_ variables that select configuration rather than
// set a key.
var reservedEnv = map[string]bool{"config": true, "strict": true}

func envKey(name, val string) (string, any) {
	key := strings.ToLower(strings.TrimPrefix(name, EnvPrefix))
	if reservedEnv[key] {
		return "", nil
	}
	key = strings.ReplaceAll(key, "__", ".")
	for _, d := range dottedLeaves {
		// HOTS_CONNECTOR__PARAMETERS__BOOTSTRAP_SERVERS: a dot cannot be
		// written in a variable name, so "_" stands for it here.
		if strings.ReplaceAll(d, ".", "_") == strings.ReplaceAll(key, ".", "_") {
			key = d
		}
	}
	if schema[key] == kindList {
		return key, splitList(val)
	}
	return key, val
}

// nest turns a flat dotted map into nested maps, keeping dotted leaves whole.
func nest(flat map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range sortedKeys(flat) {
		setPath(out, splitKey(k), flat[k])
	}
	return out
}

func readFile(path string, rep *Report) (map[string]any, error) {
	var (
		b   []byte
		err error
		ext = strings.ToLower(filepath.Ext(path))
	)
	rep.File = path
	if path == "" {
		b, ext = DefaultFile, ".yaml"
	} else if b, err = file.Provider(path).ReadBytes(); err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var m map[string]any
	switch ext {
	case ".json":
		if err := checkJSON(b); err != nil && len(bytes.TrimSpace(b)) > 0 {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			m, err = kjson.Parser().Unmarshal(b)
		}
	case ".yaml", ".yml":
		m, err = yaml.Parser().Unmarshal(b)
	default:
		return nil, fmt.Errorf("config file %s: unknown extension %q (want .json, .yaml or .yml)", path, ext)
	}
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if m == nil {
		// Empty (or only comments) in either format: more likely a file
		// cut short than a wish for every default, which {} says plainly.
		return nil, fmt.Errorf("config file %s is empty; write {} to mean every default", path)
	}
	if reveal := legacyReveal(m); len(reveal) > 0 {
		rep.Legacy, rep.Reveal = true, reveal
		m, rep.Mapped = convertLegacy(m, path)
	} else {
		for _, key := range sortedKeys(upstreamIgnored) {
			if _, ok := m[key]; ok {
				delete(m, key)
				rep.Ignored = append(rep.Ignored, Note{key, upstreamIgnored[key]})
			}
		}
	}
	foldDotted(m)
	return m, nil
}

// readFlags returns what the user set on the command line: the flags
// RegisterFlags defined, then every --set key=value.
func readFlags(fs *pflag.FlagSet, more map[string]string) (map[string]any, error) {
	m, err := posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
		key, ok := flagKeys[f.Name]
		if !ok {
			key, ok = more[f.Name]
		}
		if !ok || !f.Changed {
			return "", nil
		}
		return key, posflag.FlagVal(fs, f)
	}).Read()
	if err != nil {
		return nil, err
	}
	foldDotted(m)
	if f := fs.Lookup(FlagSet); f != nil && f.Changed {
		sets, err := fs.GetStringArray(FlagSet)
		if err != nil {
			return nil, err
		}
		for _, s := range sets {
			key, val, ok := strings.Cut(s, "=")
			key = strings.TrimSpace(key)
			if !ok || key == "" {
				return nil, fmt.Errorf("--%s %q: want key=value, e.g. problem.parameters.tol=0.2", FlagSet, s)
			}
			var v any = val
			if schema[key] == kindList {
				v = splitList(val)
			}
			setPath(m, splitKey(key), v)
		}
	}
	return m, nil
}

func checkInitialPlacement(raw map[string]any) error {
	const key = "problem.parameters.initial_placement"
	v, ok := lookup(raw, strings.Split(key, "."))
	if !ok {
		return nil
	}
	switch x := v.(type) {
	case bool, nil:
		return nil
	case float64:
		if x == 0 || x == 1 {
			return nil
		}
	case int:
		if x == 0 || x == 1 {
			return nil
		}
	case int64:
		if x == 0 || x == 1 {
			return nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "false", "0", "1":
			return nil
		}
	}
	return &Error{Key: key, Value: v, Allowed: "true, false, 0 or 1"}
}

// integralHook refuses 2.5 for an integer key instead of truncating it.
func integralHook(from, to reflect.Type, data any) (any, error) {
	f, ok := data.(float64)
	if !ok {
		return data, nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if f != float64(int64(f)) {
			return nil, fmt.Errorf("not an integer: %v", f)
		}
	}
	return data, nil
}

// decodeErrors turns mapstructure's messages into "key = value: must be
// …", one per key. mapstructure wraps its joined errors in one more
// error, so every level is unwrapped.
func decodeErrors(err error, raw map[string]any) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if de, ok := e.(*mapstructure.DecodeError); ok {
			key := de.Name()
			v, _ := lookup(raw, splitKey(key))
			out = append(out, &Error{Key: key, Value: v, Allowed: "must be " + typeWord(key)})
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if u := errors.Unwrap(e); u != nil {
			walk(u)
			return
		}
		out = append(out, e)
	}
	walk(err)
	return out
}

func typeWord(key string) string {
	t := fieldType(reflect.TypeOf(Config{}), splitKey(key))
	if t == nil {
		return "of the documented type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Bool:
		return "true, false, 0 or 1"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of strings"
	case reflect.Map:
		return "an object"
	}
	return "a " + t.String()
}

func fieldType(t reflect.Type, path []string) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if len(path) == 0 {
		return t
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("koanf") == path[0] {
			return fieldType(t.Field(i).Type, path[1:])
		}
	}
	return nil
}

func sourceOf(key string, layers map[Source]map[string]any) Source {
	for _, s := range []Source{SourceFlag, SourceEnv, SourceFile} {
		if m := layers[s]; m != nil {
			if _, ok := lookup(m, strings.Split(key, ".")); ok {
				return s
			}
		}
	}
	return SourceDefault
}

// hint suggests the known key an unknown one was probably meant to be: a
// legacy key's new place, or a known key with the same last segment.
func hint(key string) string {
	if to, ok := legacyTargets[key]; ok {
		return "legacy params.json key; hots reads " + to
	}
	last := key[strings.LastIndex(key, ".")+1:]
	var cands []string
	for _, k := range sortedKeys(schema) {
		if strings.HasSuffix(k, "."+last) || k == last {
			cands = append(cands, k)
		}
	}
	if len(cands) > 0 {
		return "did you mean " + strings.Join(cands, " or ") + "?"
	}
	return ""
}

func sortUnknown(u []UnknownKey) {
	for i := 1; i < len(u); i++ {
		for j := i; j > 0 && u[j].Key < u[j-1].Key; j-- {
			u[j], u[j-1] = u[j-1], u[j]
		}
	}
}

// normalise rewrites values upstream accepts in several spellings into the
// one hots code compares against, so every consumer of Config agrees.
func (c *Config) normalise() {
	c.Clustering.Method = clusteringMethod(c.Clustering.Method)
	c.Logging.Level = strings.ToUpper(strings.TrimSpace(c.Logging.Level))
	c.Connector.Type = strings.ToLower(strings.TrimSpace(c.Connector.Type))
}

// Digest identifies the effective configuration in run summaries.
func (c Config) Digest() string {
	b, _ := json.Marshal(c)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}
