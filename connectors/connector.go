// Package connectors is the edge of hots: the interface every connector
// implements, the registry that connector.type is looked up in, and the
// optional abilities some connectors have. The pipeline talks only to
// these; it never names a connector nor imports a transport library.
//
// A connector does upstream HOTS's three jobs in Watermill terms:
//
//	load_initial  Initial: the hosts and capacities known at start
//	next_batch    Source: a message.Subscriber of usage, and TickRule: how a tick closes
//	apply_moves   Sink: a message.Publisher of moves; Poison: where bad input goes
//
// Abilities only some connectors have are optional interfaces, checked
// with a type assertion on the interface (the way Watermill asks for a
// SubscribeInitializer): Finite (the input ends), Starter (background work
// once the router runs), Checkpointer (per-domain state across restarts),
// Replayer (re-read a partition range after a restore), Ownership
// (which partitions this instance owns), HostRecorder (per-host state
// after every loop). See README.md, "Write your own connector".
package connectors

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/placement"
)

// Connector is one source of usage and one destination of moves.
type Connector interface {
	// Initial returns what is known before the first sample: hosts and
	// their capacities. Hosts that only appear in samples have unknown
	// capacity and are never a move target.
	Initial(ctx context.Context) (Initial, error)
	// Source is where usage messages come from. Their payloads are what
	// the decode stage reads (see the message contract in codecs/batch.go):
	// row batches and watermarks, or JSON records and upstream batches.
	Source() Source
	// Sink receives one message per move (codecs.EncodeMove payload, the
	// move id as UUID, the domain as key).
	Sink() Sink
	// Poison receives every message no stage could use, with the reason in
	// its metadata; it must not block the stream nor drop the message.
	Poison() Sink
	// Ticks says how a tick closes for this source.
	Ticks() TickRule
	// Close releases what the connector holds. It is idempotent.
	Close() error
}

// Initial is load_initial's answer: hosts with their capacities, in
// node_meta order, and the domain each host is declared in. A host belongs
// to one domain: its engine is the only one that may move containers onto
// it. A host absent from Domains joins the domain of the first sample that
// names it (or, until then, the default domain's: see handlers.Placer).
type Initial struct {
	Hosts   []placement.Host
	Domains map[string]codecs.HostDomain // host -> declared domain (node_meta's domain column)
}

// InitialFromNodeMeta is the Initial of a node_meta.csv: its hosts with
// their capacities and declared domains.
func InitialFromNodeMeta(path string, f codecs.UsageFields) (Initial, error) {
	meta, err := codecs.ReadNodeMetaFile(path, f)
	if err != nil {
		return Initial{}, err
	}
	return Initial{Hosts: meta.Hosts, Domains: meta.Domains}, nil
}

// Source is a subscriber and the topics to subscribe to.
type Source struct {
	Subscriber message.Subscriber
	Topics     []string
}

// Sink is a publisher and the topic to publish to.
type Sink struct {
	Publisher message.Publisher
	Topic     string
}

// TickRule is how ticks close. A replay knows when a tick is complete and
// says so with watermark messages; a live stream never knows, so a tick
// closes once a later tick's first sample is Lateness old, or after
// IdleTimeout without samples.
type TickRule struct {
	Watermarks  bool
	Lateness    time.Duration
	IdleTimeout time.Duration // 0: never close on idleness
	// MaxTickJump (live rule): a record with a tick more than this many
	// ticks ahead of its domain's clock, or a negative tick, is poisoned
	// with the reason, so that one bad record cannot move a domain's
	// clock (0: no bound).
	MaxTickJump int64
}

// Finite is a source whose input ends (a replay). Done is closed once
// every message was sent and acked, or the source failed (Err).
type Finite interface {
	Done() <-chan struct{}
	Err() error
}

// Starter has work to do once the router runs (following a topic of
// capacity updates, serving an endpoint). Start must return promptly;
// what it starts ends with ctx.
type Starter interface {
	Start(ctx context.Context, rt Runtime) error
}

// Runtime is what a Starter may ask of the running pipeline.
type Runtime interface {
	// SetHost gives a host's capacity (a host that joined or was resized)
	// to the engine of its domain, now or when it is created: d declares
	// the domain (empty Domain: the host's domain is unchanged, or unknown
	// until a sample names it) and says where (a nodes topic offset).
	SetHost(h placement.Host, d codecs.HostDomain) error
	// SetEnd reports a partition's high-water mark as fetched at `at`:
	// the live rule needs it before an idle close (a stalled reader has
	// not seen silence), and the lag metric is computed from it.
	SetEnd(topic string, partition int32, end int64, at time.Time)
}

// Checkpointer keeps each domain's state across restarts and takeovers.
// Save after every tick close; Load when a domain is first seen or its
// partition is assigned here. ErrStaleCheckpoint from Save means another
// owner moved on: the state held here is dropped, not retried.
type Checkpointer interface {
	Load(domain string) (codecs.Checkpoint, bool, error)
	Save(ctx context.Context, domain string, c codecs.Checkpoint) error
	Domains() ([]string, error)
	// CheckpointEvery is how long a domain may go between checkpoints (0:
	// after every tick close). What was folded in since is re-read from
	// the checkpoint's offsets after a crash, and gives the same moves
	// (the engine is deterministic), so a longer interval only costs
	// catch-up time, and input retention must cover it.
	CheckpointEvery() time.Duration
}

// Replayer re-reads input a restored domain had not folded into its
// checkpoint (records acked after it, before a crash).
type Replayer interface {
	// ReadRange returns the records of one partition in [from, to), in order.
	ReadRange(ctx context.Context, topic string, partition int32, from, to int64) ([]codecs.Record, error)
	// End is the partition's high-water mark: the offset of the next record.
	End(ctx context.Context, topic string, partition int32) (int64, error)
}

// Owner is told which partitions this instance owns.
type Owner interface {
	// Assign is the new assignment, before any of its records is delivered.
	Assign(claims map[string][]int32) error
	// Revoke ends the assignment; flush on a graceful shutdown.
	Revoke(flush bool) error
}

// Ownership is a source whose partitions are shared by several instances
// (a consumer group). The pipeline calls OnOwnership before it subscribes.
type Ownership interface {
	OnOwnership(o Owner)
}

// HostRecorder keeps each host's state after every loop (the per-host
// table of live mode). It must not block the stream.
type HostRecorder interface {
	RecordHosts(domain string, tick int64, hosts []codecs.HostState)
}

// Counter is a connector that reports counts of its own in the summary
// (rows read, rows rejected before decoding, hosts unknown to node_meta).
type Counter interface {
	Counts() Counts
}

// Counts are what a connector saw that the stages cannot know.
type Counts struct {
	Rows         int64    // input records read, good and bad
	Rejected     int64    // records the connector set aside itself (before decoding)
	Ticks        int64    // ticks the source completed
	Sorted       bool     // a file source was already in tick order
	UnknownHosts []string // hosts in the samples without a known capacity
	HostsKnown   int      // hosts with a capacity at start
}
