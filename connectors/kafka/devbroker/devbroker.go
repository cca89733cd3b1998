// Package devbroker runs a Kafka-protocol broker inside the process (kfake).
// It backs the `hots broker` development command and every Kafka test, so
// that tests speak the real Kafka protocol over TCP through the same
// watermill-kafka, goka and sarama code a user runs. It is not a production
// broker: no replication, no quotas, compaction only when asked.
package devbroker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultPartitions is used for seeded and auto-created topics when
// Options.Partitions is 0 (kfake's own default).
const DefaultPartitions = 10

// KafkaMaxMessageBytes is Apache Kafka's default message.max.bytes.
const KafkaMaxMessageBytes = 1048588

// Options configures a development broker cluster.
type Options struct {
	// Ports has one entry per broker; 0 picks a free port. Empty means one
	// broker on a free port.
	Ports []int
	// Partitions for seeded and auto-created topics; 0 = DefaultPartitions.
	Partitions int
	// Topics to create at start. Others are created on first use, since
	// auto-creation is on (kcat and ad-hoc producers rely on it).
	Topics []string
	// DataDir keeps records, topics and committed group offsets across a
	// Close and a new Start on the same directory; empty = in memory only.
	DataDir string
	// BrokerConfigs are passed to kfake as initial broker configs, e.g.
	// "log.cleaner.backoff.ms" to compact compacted topics more often than
	// kfake's default of once an hour.
	BrokerConfigs map[string]string
	// MaxMessageBytes is the broker's message.max.bytes: 0 = Apache
	// Kafka's default, so that development runs and tests meet the limit a
	// production broker enforces (kfake alone accepts any size); -1 = no
	// limit. A "message.max.bytes" in BrokerConfigs wins.
	MaxMessageBytes int
	// Logger receives kfake's logs; nil = silent. kfake logs every request
	// at its info level, so that level maps to slog Debug.
	Logger *slog.Logger
}

// Broker is a running development cluster.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
}

// Start launches the cluster and returns once it accepts connections.
func Start(opts Options) (*Broker, error) {
	ports := opts.Ports
	if len(ports) == 0 {
		ports = []int{0}
	}
	parts := opts.Partitions
	if parts <= 0 {
		parts = DefaultPartitions
	}
	kopts := []kfake.Opt{
		kfake.Ports(ports...),
		kfake.DefaultNumPartitions(parts),
		kfake.AllowAutoTopicCreation(),
	}
	if len(opts.Topics) > 0 {
		kopts = append(kopts, kfake.SeedTopics(int32(parts), opts.Topics...))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	cfgs := map[string]string{}
	switch {
	case opts.MaxMessageBytes == 0:
		cfgs["message.max.bytes"] = strconv.Itoa(KafkaMaxMessageBytes)
	case opts.MaxMessageBytes > 0:
		cfgs["message.max.bytes"] = strconv.Itoa(opts.MaxMessageBytes)
	}
	for k, v := range opts.BrokerConfigs {
		cfgs[k] = v
	}
	if len(cfgs) > 0 {
		kopts = append(kopts, kfake.BrokerConfigs(cfgs))
	}
	if opts.Logger != nil {
		kopts = append(kopts, kfake.WithLogger(slogAdapter{opts.Logger}))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("devbroker: start kfake on ports %v: %w", ports, err)
	}
	return &Broker{cluster: c, addrs: c.ListenAddrs()}, nil
}

// Addrs returns the brokers' host:port addresses, one per broker.
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Cluster exposes the kfake cluster for what only tests need (Compact,
// fault injection).
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the brokers; with a DataDir their state is flushed to disk.
func (b *Broker) Close() { b.cluster.Close() }

// RunUntilSignal starts a broker, writes its addresses to w and blocks until
// ctx is done (the CLI cancels ctx on SIGINT/SIGTERM), then closes it.
// The "brokers=" line is meant to be read by scripts.
func RunUntilSignal(ctx context.Context, opts Options, w io.Writer) error {
	b, err := Start(opts)
	if err != nil {
		return err
	}
	defer b.Close()
	persist := "in memory"
	if opts.DataDir != "" {
		persist = "data dir " + opts.DataDir
	}
	if _, err := fmt.Fprintf(w, "hots development broker (kfake; not for production), %s\nbrokers=%s\n",
		persist, strings.Join(b.Addrs(), ",")); err != nil {
		return err
	}
	// A cancelled ctx is the normal way to stop a dev broker, not an error.
	<-ctx.Done()
	return nil
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelInfo:
		sl = slog.LevelDebug
	default:
		sl = slog.LevelDebug - 4
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, sl) {
		return
	}
	a.l.Log(ctx, sl, fmt.Sprintf(format, args...), "component", "kfake")
}
