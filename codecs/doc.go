// Package codecs holds hots's wire formats: usage samples (CSV rows located by
// header name, JSON records and upstream's {"containers": [...]} batch),
// node capacities (node_meta.csv and a JSON record for the nodes topic),
// moves as JSON lines, and the compact binary forms the in-process stages
// pass to each other (row batches and sample batches).
//
// Every decoding error is a *RowError or a *MissingColumnError that says
// where the problem is (file and line, or topic, partition and offset, plus
// the column or field) and what was wrong, so that a reject can be traced
// back to its input by an operator.
package codecs
