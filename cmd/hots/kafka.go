package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	"hots/connectors/kafka"
	"hots/connectors/kafka/devbroker"
	"hots/pipeline"
)

func init() {
	register(command{"broker", "run a development Kafka-protocol broker (kfake; not for production)", cmdBroker})
	register(command{"produce", "publish a CSV trace to the usage topic in tick order (JSON records keyed by domain)", cmdProduce})
}

func cmdBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("broker", stderr)
	ports := fs.IntSlice("ports", []int{9092}, "one port per broker (0 = any free port)")
	parts := fs.Int("partitions", 6, "partitions of auto-created topics")
	dataDir := fs.String("data-dir", "", "keep records and committed offsets here across restarts (default: in memory)")
	topics := fs.StringSlice("topics", nil, "topics to create at start")
	maxBytes := fs.Int("max-message-bytes", 0, "the broker's message.max.bytes; 0 = Apache Kafka's default (1048588), -1 = no limit")
	if err := parse(fs, args); err != nil {
		return err
	}
	return devbroker.RunUntilSignal(ctx, devbroker.Options{Ports: *ports, Partitions: *parts, DataDir: *dataDir, Topics: *topics,
		MaxMessageBytes: *maxBytes}, stdout)
}

func cmdProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("produce", stderr)
	file, strict := loadFlagsNoConfigKeys(fs)
	data := fs.String("data", "", "trace folder holding container_usage.csv (required)")
	brokers := fs.StringSlice("brokers", nil, "brokers (default: kafka.brokers of the configuration)")
	topic := fs.String("topic", "", "usage topic (default: the first of kafka.usage_topics)")
	rate := fs.Float64("rate", 0, "samples per second (0 = as fast as possible)")
	domain := fs.String("domain", "", "domain (message key) of rows that name none (default: connector.parameters.domain)")
	batch := fs.Int("batch", 1, "samples per message: 1 = one JSON record per sample; more = upstream's {\"containers\": [...]} batches of one domain and tick")
	nodes := fs.Bool("nodes", true, "first publish the trace's node_meta.csv to the nodes topic (key host), so the service knows the capacities")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return fmt.Errorf("%w: produce: --data is required", errUsage)
	}
	cfg, rep, err := config.Load(config.LoadOptions{File: *file, Strict: *strict, Sections: connectors.Sections()})
	for _, w := range rep.Warnings() {
		fmt.Fprintln(stderr, "hots: config:", w)
	}
	if err != nil {
		return err
	}
	// The brokers and topic are the Kafka connector's, whatever
	// connector.type the configuration names.
	dec, err := connectors.Decode(kafka.Name, pipeline.RawConnector(*cfg))
	if dec == nil || (err != nil && len(*brokers) == 0) {
		return err
	}
	o := dec.Args.(*kafka.Args)
	opts, _ := o.Options()
	if len(*brokers) > 0 {
		opts.Brokers = *brokers
	}
	if *topic == "" {
		*topic = opts.UsageTopics[0]
	}
	fields := pipeline.UsageFields(*cfg)
	if *domain != "" {
		fields.DefaultDomain = *domain
	}
	name := "container_usage.csv"
	if n, ok := cfg.Connector.Parameters.Extra["file_name"].(string); ok && n != "" {
		name = n
	}
	recs, err := readTrace(filepath.Join(*data, name), fields)
	if err != nil {
		return err
	}
	if *batch < 1 {
		return fmt.Errorf("%w: produce: --batch = %d: must be at least 1", errUsage, *batch)
	}
	samples := len(recs)
	if *batch > 1 {
		if recs, err = batchRecords(recs, *batch); err != nil {
			return err
		}
	}
	prod, err := newProducer(ctx, opts.Brokers)
	if err != nil {
		return err
	}
	defer prod.Close()
	if *nodes {
		n, err := produceNodes(prod, filepath.Join(*data, "node_meta.csv"), opts.NodesTopic, fields)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintf(stdout, "produced %d host capacities to %s\n", n, opts.NodesTopic)
		}
	}
	start := time.Now()
	domains := map[string]int{}
	const chunk = 500
	for i, end := 0, 0; i < len(recs); i = end {
		if err := ctx.Err(); err != nil {
			return err
		}
		end = min(i+chunk, len(recs))
		if *rate > 0 {
			end = min(i+max(1, int(*rate/20)), len(recs)) // 20 sends per second
		}
		msgs := make([]*sarama.ProducerMessage, 0, end-i)
		for _, r := range recs[i:end] {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: *topic, Key: sarama.StringEncoder(r.domain), Value: sarama.ByteEncoder(r.value)})
			domains[r.domain] += r.samples
		}
		if err := prod.SendMessages(msgs); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		if *rate > 0 {
			due := start.Add(time.Duration(float64(end) / *rate * float64(time.Second)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(due)):
			}
		}
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "produced %d samples in %d messages (%d domains) to %s in %.2fs (%.0f samples/s)\n", samples, len(recs), len(domains), *topic,
		el.Seconds(), float64(samples)/max(el.Seconds(), 1e-9))
	return nil
}

// loadFlagsNoConfigKeys registers --config and --strict only: produce's
// own flags must not clash with the configuration flags.
func loadFlagsNoConfigKeys(fsx interface {
	StringP(name, shorthand, value, usage string) *string
	Bool(name string, value bool, usage string) *bool
}) (*string, *bool) {
	file := fsx.StringP("config", "c", "", "config file, JSON or YAML (field names, metrics, brokers, topics)")
	strict := fsx.Bool("strict", false, "unknown configuration keys are errors")
	return file, strict
}

type traceRecord struct {
	tick    int64
	domain  string
	value   []byte
	samples int // samples the message carries
}

// batchRecords packs consecutive records of one domain and tick into
// upstream's batch form, at most n samples per message. Records are in
// tick order, so every domain's messages stay in tick order.
func batchRecords(recs []traceRecord, n int) ([]traceRecord, error) {
	var out []traceRecord
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && j-i < n && recs[j].tick == recs[i].tick && recs[j].domain == recs[i].domain {
			j++
		}
		size := 16
		for _, r := range recs[i:j] {
			size += len(r.value) + 1
		}
		b := append(make([]byte, 0, size), `{"containers":[`...) // the records are JSON already
		for k, r := range recs[i:j] {
			if k > 0 {
				b = append(b, ',')
			}
			b = append(b, r.value...)
		}
		b = append(b, "]}"...)
		out = append(out, traceRecord{tick: recs[i].tick, domain: recs[i].domain, value: b, samples: j - i})
		i = j
	}
	return out, nil
}

// readTrace reads a usage CSV into JSON records, stably sorted by tick
// (the order file replay uses), keeping the configured field names so the
// service decodes them with the same configuration.
func readTrace(path string, f codecs.UsageFields) ([]traceRecord, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	h, err := codecs.NewUsageHeader(path, header, f)
	if err != nil {
		return nil, err
	}
	f = h.Fields()
	enc := newRecordEncoder(f, h.Pinned >= 0)
	var out []traceRecord
	for line := int64(2); ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		tick, err := h.ParseTick(rec, line)
		if err != nil {
			return nil, err
		}
		dom := h.DomainOf(rec)
		r := traceRow{tick: tick, container: rec[h.Container], host: rec[h.Host], values: enc.values[:0]}
		for i, m := range f.Metrics {
			v, err := strconv.ParseFloat(rec[h.Metrics[i]], 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: metric %s: %w", path, line, m, err)
			}
			r.values = append(r.values, v)
		}
		if h.Pinned >= 0 {
			p, ok := codecs.ParsePinned(rec[h.Pinned])
			if !ok {
				return nil, fmt.Errorf("%s:%d: %s: %q is not one of true/false, 1/0, yes/no", path, line, f.Pinned, rec[h.Pinned])
			}
			r.pinned = p // absent when false: unpinned records stay as they were
		}
		b, err := enc.encode(r)
		if err != nil {
			return nil, err
		}
		out = append(out, traceRecord{tick: tick, domain: dom, value: b, samples: 1})
	}
	slices.SortStableFunc(out, func(a, b traceRecord) int { return cmp.Compare(a.tick, b.tick) })
	return out, nil
}

func newProducer(ctx context.Context, brokers []string) (sarama.SyncProducer, error) {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.ClientID = "hots-produce"
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Metadata.Retry.Backoff = 100 * time.Millisecond
	wait := 100 * time.Millisecond
	for {
		p, err := sarama.NewSyncProducer(brokers, sc)
		if err == nil {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		if wait *= 2; wait > 5*time.Second {
			return nil, fmt.Errorf("no broker reachable at %v: %w", brokers, err)
		}
	}
}

// produceNodes publishes a node_meta.csv to the compacted nodes topic, one
// record per host keyed by host (with its domain when the file names one).
// A trace without node_meta.csv publishes nothing.
func produceNodes(prod sarama.SyncProducer, path, topic string, f codecs.UsageFields) (int, error) {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	nm, err := codecs.ReadNodeMetaFields(fh, path, f)
	if err != nil {
		return 0, err
	}
	msgs := make([]*sarama.ProducerMessage, 0, len(nm.Hosts))
	for _, h := range nm.Hosts {
		b, err := codecs.EncodeNode(nm.Domains[h.Name].Domain, h, f.Metrics)
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(h.Name), Value: sarama.ByteEncoder(b)})
	}
	if err := prod.SendMessages(msgs); err != nil {
		return 0, fmt.Errorf("produce nodes: %w", err)
	}
	return len(msgs), nil
}

// traceRow is one usage row on its way to JSON.
type traceRow struct {
	tick            int64
	container, host string
	values          []float64 // in the order of the metrics
	pinned          bool
}

// recordEncoder writes a row as json.Marshal writes the map of its fields
// (keys sorted, Go's float and string forms), without the map and the
// reflection: that took most of produce's time at 500,000 rows.
type recordEncoder struct {
	keys   []recordKey // sorted by name
	values []float64
	byMap  func(traceRow) ([]byte, error) // field names that collide: the map decides
}

type recordKey struct {
	quoted []byte // the name as JSON, with its colon
	field  int    // 0 tick, 1 container, 2 host, 3 pinned, 4+i metric i
}

func newRecordEncoder(f codecs.UsageFields, hasPinned bool) *recordEncoder {
	names := append([]string{f.Tick, f.Individual, f.Host, f.Pinned}, f.Metrics...)
	e := &recordEncoder{}
	seen := map[string]bool{}
	for i, n := range names {
		if i == 3 && !hasPinned {
			continue
		}
		if seen[n] {
			e.byMap = func(r traceRow) ([]byte, error) {
				obj := map[string]any{f.Tick: r.tick, f.Individual: r.container, f.Host: r.host}
				for i, m := range f.Metrics {
					obj[m] = r.values[i]
				}
				if r.pinned {
					obj[f.Pinned] = true
				}
				return json.Marshal(obj)
			}
			return e
		}
		seen[n] = true
		q, _ := json.Marshal(n)
		e.keys = append(e.keys, recordKey{quoted: append(q, ':'), field: i})
	}
	slices.SortFunc(e.keys, func(a, b recordKey) int { return cmp.Compare(names[a.field], names[b.field]) })
	return e
}

func (e *recordEncoder) encode(r traceRow) ([]byte, error) {
	if e.byMap != nil {
		return e.byMap(r)
	}
	b := make([]byte, 0, 64+len(r.container)+len(r.host)+24*len(r.values))
	b = append(b, '{')
	first := true
	for _, k := range e.keys {
		if k.field == 3 && !r.pinned {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, k.quoted...)
		switch k.field {
		case 0:
			b = strconv.AppendInt(b, r.tick, 10)
		case 1, 2:
			s := r.container
			if k.field == 2 {
				s = r.host
			}
			q, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			b = append(b, q...)
		case 3:
			b = append(b, "true"...)
		default:
			var err error
			if b, err = appendJSONFloat(b, r.values[k.field-4]); err != nil {
				return nil, err
			}
		}
	}
	return append(b, '}'), nil
}

// appendJSONFloat writes f as encoding/json does.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("json: unsupported value: %v", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 → e-9, as encoding/json
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}
