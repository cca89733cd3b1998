package connectors

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/go-viper/mapstructure/v2"

	"hots/codecs"
	"hots/placement"
)

// Args are a connector's own parameters, decoded from
// connector.parameters (and from its Section, if it has one).
type Args interface {
	// Default fills every field left empty.
	Default()
	// Validate names the key of every bad value (all of them at once).
	Validate() error
}

// Registration is one connector type.
type Registration struct {
	Name    string // the connector.type value
	Summary string // one line for `hots connectors` and the README
	// Section, if set, is a top-level configuration block the connector
	// also reads its parameters from (kafka: brokers, topics, …).
	Section string
	// NewArgs returns the zero Args the parameters are decoded into
	// (a pointer to a struct with koanf tags).
	NewArgs func() Args
	// Keys document the parameters: the README's connector tables come
	// from them, and a key not listed here is reported as unknown.
	Keys []Key
	// Flags are command-line shortcuts for some keys.
	Flags []Flag
	// RunDir says the connector replays a recorded period to its end:
	// `hots run` then writes a run directory (summary against the no-move
	// baseline, metrics, plots). Without it the run is a service, with
	// health, readiness and metrics endpoints.
	RunDir bool
	// New builds the connector from validated Args.
	New func(env Env, args Args) (Connector, error)
}

// Key documents one parameter. Key is relative: "data_folder" is
// connector.parameters.data_folder; a key of the Section is written
// "kafka.brokers" (the Section's name first). Its default is read from
// Args.Default, so the documentation cannot drift from the code.
type Key struct {
	Key string
	Doc string
}

// Flag is a command-line flag that sets a key of a connector.
type Flag struct {
	Name  string
	Key   string // full dotted key
	Usage string
	List  bool // comma-separated list
}

// Env is what every connector is given besides its Args: the keys common
// to all connectors, already validated by config.
type Env struct {
	// Fields are the usage field names, metrics and default domain.
	Fields codecs.UsageFields
	// Engine are the placement parameters (sep_time, window, …).
	Engine placement.Params
	// BadInput is "reject" (set aside, count, go on) or "stop".
	BadInput string
	// RunDir is the run directory of this process (outputs of a replay);
	// empty for a service that writes none.
	RunDir string
	// BaseDir resolves relative paths of the parameters (the directory of
	// the configuration file; empty = the working directory).
	BaseDir string
	// Reject, if set, is told about every record set aside (counts,
	// reports, bad_input stop).
	Reject func(*codecs.RowError)
	// Progress, if set, gets input consumed and its total (0 if unknown).
	Progress func(done, total int64)
	Logger   *slog.Logger
}

var (
	mu       sync.RWMutex
	registry = map[string]Registration{}
)

// Register adds a connector type. Each connector calls it from an init
// function of its own package; the binary imports the package for effect.
func Register(r Registration) {
	if r.Name == "" || r.New == nil || r.NewArgs == nil {
		panic("connectors: Register needs Name, NewArgs and New")
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[r.Name]; dup {
		panic("connectors: registered twice: " + r.Name)
	}
	registry[r.Name] = r
}

// Names lists the registered connector types, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup finds a connector type; an unknown name is an error listing the
// registered ones.
func Lookup(name string) (Registration, error) {
	mu.RLock()
	r, ok := registry[name]
	mu.RUnlock()
	if !ok {
		return Registration{}, fmt.Errorf("connector.type = %q: unknown connector; registered: %s", name, strings.Join(Names(), ", "))
	}
	return r, nil
}

// Sections are the top-level configuration blocks registered connectors
// own (a block nobody owns is an unknown key).
func Sections() []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for _, r := range registry {
		if r.Section != "" {
			out = append(out, r.Section)
		}
	}
	sort.Strings(out)
	return out
}

// Flags are every registered connector's flags, by name.
func Flags() []Flag {
	mu.RLock()
	defer mu.RUnlock()
	var out []Flag
	for _, r := range registry {
		out = append(out, r.Flags...)
	}
	slices.SortFunc(out, func(a, b Flag) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Raw is a connector's part of the configuration, as loaded.
type Raw struct {
	// Parameters are the keys of connector.parameters that the common
	// configuration does not read.
	Parameters map[string]any
	// Sections are top-level blocks the common configuration does not
	// read, by name.
	Sections map[string]any
}

// Decoded is a connector's Args and what decoding them found.
type Decoded struct {
	Registration Registration
	Args         Args
	// Unknown are keys nobody reads (full dotted keys), sorted.
	Unknown []string
}

// Decode reads the registered connector's Args from raw: defaults, then
// connector.parameters, then the connector's Section; then Validate.
// Keys of connector.parameters and of the Section that the Args do not
// have are returned as Unknown (config reports unknown top-level blocks);
// values of the wrong type are errors naming the key.
func Decode(name string, raw Raw) (*Decoded, error) {
	reg, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	args := reg.NewArgs()
	args.Default()
	in := map[string]any{}
	for k, v := range raw.Parameters {
		in[k] = v
	}
	if reg.Section != "" {
		if s, ok := raw.Sections[reg.Section]; ok {
			in[reg.Section] = s
		}
	}
	md := mapstructure.Metadata{}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.ComposeDecodeHookFunc(mapstructure.StringToSliceHookFunc(","), mapstructure.StringToTimeDurationHookFunc()),
		WeaklyTypedInput: true,
		Metadata:         &md,
		Result:           args,
		TagName:          "koanf",
	})
	if err != nil {
		return nil, err
	}
	if err := dec.Decode(in); err != nil {
		return nil, keyErrors(err, reg)
	}
	d := &Decoded{Registration: reg, Args: args}
	for _, k := range md.Unused {
		d.Unknown = append(d.Unknown, fullKey(reg, k))
	}
	sort.Strings(d.Unknown)
	if err := args.Validate(); err != nil {
		return d, err
	}
	return d, nil
}

// fullKey is a decoded key as the configuration spells it.
func fullKey(reg Registration, k string) string {
	if k == reg.Section {
		return k
	}
	return reg.full(k)
}

// keyErrors names the configuration key of each decoding error.
func keyErrors(err error, reg Registration) error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var de *mapstructure.DecodeError
		if errors.As(e, &de) {
			out = append(out, fmt.Errorf("%s: %v", fullKey(reg, de.Name()), de.Unwrap()))
			return
		}
		out = append(out, e)
	}
	walk(err)
	return errors.Join(out...)
}

// KeyError is an invalid parameter value, named by its key.
type KeyError struct {
	Key     string
	Value   any
	Allowed string
}

func (e *KeyError) Error() string {
	if s, ok := e.Value.(string); ok {
		return fmt.Sprintf("%s = %q: %s", e.Key, s, e.Allowed)
	}
	return fmt.Sprintf("%s = %v: %s", e.Key, e.Value, e.Allowed)
}

// Defaults returns the registration's defaults by full key, as
// Args.Default sets them.
func (r Registration) Defaults() map[string]any {
	args := r.NewArgs()
	args.Default()
	out := map[string]any{}
	for _, k := range r.Keys {
		if v, ok := fieldByKey(reflect.ValueOf(args), strings.Split(k.Key, ".")); ok {
			out[r.full(k.Key)] = v
		}
	}
	return out
}

// full is a documented key as the configuration spells it.
func (r Registration) full(key string) string {
	if r.Section != "" && strings.HasPrefix(key, r.Section+".") {
		return key
	}
	return "connector.parameters." + key
}

// fieldByKey reads the field a dotted koanf key names.
func fieldByKey(v reflect.Value, path []string) (any, bool) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil, false
		}
		v = v.Elem()
	}
	if len(path) == 0 {
		return v.Interface(), true
	}
	if v.Kind() != reflect.Struct {
		return nil, false
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if f.Anonymous && tag == "" {
			if x, ok := fieldByKey(v.Field(i), path); ok {
				return x, true
			}
			continue
		}
		if tag == path[0] {
			return fieldByKey(v.Field(i), path[1:])
		}
	}
	return nil, false
}

// MarkdownTable renders every registered connector's parameters for the
// README (one table per connector, in name order).
func MarkdownTable() string {
	var b strings.Builder
	for _, n := range Names() {
		r, _ := Lookup(n)
		fmt.Fprintf(&b, "#### `connector.type: %s`: %s\n\n| key | default | meaning |\n|---|---|---|\n", r.Name, r.Summary)
		defs := r.Defaults()
		for _, k := range r.Keys {
			key := r.full(k.Key)
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", key, formatDefault(defs[key]), strings.ReplaceAll(k.Doc, "|", "\\|"))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func formatDefault(v any) string {
	if v == nil {
		return "null"
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		if rv.String() == "" {
			return `""`
		}
		return "`" + rv.String() + "`"
	case reflect.Map:
		if rv.Len() == 0 {
			return "null"
		}
	case reflect.Slice:
		if rv.Len() == 0 {
			return "`[]`"
		}
		q := make([]string, rv.Len())
		for i := range q {
			q[i] = fmt.Sprintf("%q", rv.Index(i).Interface())
		}
		return "`[" + strings.Join(q, ", ") + "]`"
	}
	return fmt.Sprintf("`%v`", v)
}

// Open decodes a connector's Args from raw and builds it: what `hots run`
// does with connector.type.
func Open(name string, raw Raw, env Env) (Connector, *Decoded, error) {
	d, err := Decode(name, raw)
	if err != nil {
		return nil, d, err
	}
	c, err := d.Registration.New(env, d.Args)
	return c, d, err
}

// NamedPath is a file a connector reads or writes, with the key that names it.
type NamedPath struct {
	Key  string
	Path string
}

// Filer is Args that name the files the connector reads and writes, so
// that a run can refuse outputs that would overwrite its inputs.
// baseDir resolves relative paths; runDir is the run directory ("" =
// not known yet).
type Filer interface {
	Files(baseDir, runDir string) (inputs, outputs []NamedPath)
}
