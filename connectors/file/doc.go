// Package file is the file-replay connector: a Watermill Subscriber that
// replays container_usage.csv in tick order, a Publisher that appends moves
// to a JSON-lines file, and the rejects file that bad input goes to.
//
// # Order and memory
//
// The Subscriber first scans the tick column to see whether the file is
// sorted by tick (upstream traces often are grouped by container instead).
// A sorted file is streamed. An unsorted one is indexed: one entry per row
// (byte offset and length packed, and line number: 16 bytes) grouped by
// tick in blocks that are never copied; each
// tick's rows are then read back (through a read-only memory map where the
// platform has one, so a row is a memory access and not a system call;
// with ReadAt otherwise) and emitted. Parsed rows are only ever held for
// the batch being emitted, so heap is bounded by the compact index and the
// per-container tables, not by the file (mapped pages are page cache).
//
// Records are split without a string per row: fields are views of the
// read buffer, copied once into the batch payload. Lines with a quote go
// through encoding/csv, fed one line at a time, so quoting, multi-line
// records and CSV errors are exactly encoding/csv's. Container names are
// interned per domain with a dense id, which makes the duplicate check a
// stamp per container rather than a map per tick.
//
// # Messages and causality
//
// Each tick becomes batches of up to Config.BatchRows records (a
// codecs.RawBatch, kind "rows"), then one "watermark" message saying the
// tick is complete. Every message is sent only after the previous one was
// acked, and the pipeline acks a watermark only once the placement and
// publish stages have finished that tick (gochannel with
// BlockPublishUntilSubscriberAck between stages). So when tick t+1 is read,
// every move decided at tick t is already in the Relocations table, and the
// Subscriber re-attributes that container's later rows to its new host,
// keeping the recorded host in the row's TraceHost (the no-move baseline).
//
// # Bad input
//
//   - Missing file, missing column, empty file or no data rows: NewSubscriber
//     returns an error naming the file (and the column); nothing runs.
//   - A bad row (not CSV, wrong field count, non-integer tick; and, in the
//     decode stage, a bad metric or empty id) is rejected: written to the
//     rejects file (source,line,field,reason,raw), reported to the observer,
//     counted, and the replay goes on.
//   - A duplicate (tick, container) row: the first is kept, later ones are
//     rejected with the line of the kept one.
//   - A host that node_meta.csv does not list: its samples are accepted (the
//     host has no known capacity, so it is never a move target) and it is
//     logged once as a warning.
//   - A tick going backwards cannot reach the pipeline: unsorted files are
//     indexed; if a file detected as sorted changes under us while streaming,
//     the backwards row is rejected with that reason.
//
// node_usage.csv is ignored: node loads are always derived from the
// container rows (upstream HEAD does the same; its copies are inconsistent).
package file
