package httpconn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"hots/codecs"
)

// UsageResponse is the answer to POST usage_path.
type UsageResponse struct {
	// Accepted are the records that went through the pipeline.
	Accepted int `json:"accepted"`
	// Poisoned are the records set aside, with the reason (also in GET
	// poison_path).
	Poisoned []PoisonedRecord `json:"poisoned"`
	// Watermark is the tick closed, if the request carried one.
	Watermark *int64 `json:"watermark,omitempty"`
	// Error says why the request stopped early (records before it went
	// through and are counted above).
	Error string `json:"error,omitempty"`
}

// PoisonedRecord is one record of a request that was set aside.
type PoisonedRecord struct {
	Line   int    `json:"line"`   // in the request body, from 1
	Offset int64  `json:"offset"` // the stream offset it was given
	Reason string `json:"reason"`
}

// The media types the usage endpoint reads.
const (
	typeJSON   = "application/json"
	typeNDJSON = "application/x-ndjson"
)

func (c *Connector) serveUsage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "use POST with "+typeJSON+" or "+typeNDJSON)
		return
	}
	q := r.URL.Query()
	var wm *int64
	if s := q.Get("watermark"); s != "" {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("watermark=%q: want a tick (an integer)", s))
			return
		}
		if !c.args.Watermarks {
			httpError(w, http.StatusConflict, "watermarks are off: ticks close by lateness and idle_timeout (set connector.parameters.watermarks: true to close them with watermarks)")
			return
		}
		wm = &t
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.args.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes (connector.parameters.max_body_bytes): nothing was accepted; send smaller batches", tooBig.Limit))
			return
		}
		httpError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	var recs []record
	if len(bytes.TrimSpace(body)) > 0 {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case err != nil && r.Header.Get("Content-Type") != "":
			httpError(w, http.StatusUnsupportedMediaType, "Content-Type: "+err.Error())
			return
		case mt == typeJSON:
			recs = []record{{payload: body, line: 1}}
		case mt == typeNDJSON:
			recs = splitLines(body)
		default:
			httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: want %s (one record or a {\"containers\":[...]} batch) or %s (one record per line)", r.Header.Get("Content-Type"), typeJSON, typeNDJSON))
			return
		}
	}
	if len(recs) == 0 && wm == nil {
		httpError(w, http.StatusBadRequest, "empty body: nothing to send (a watermark is ?watermark=T)")
		return
	}
	if wm != nil {
		recs = append(recs, record{watermark: wm})
	}
	outs, err := c.sub.deliver(r.Context(), q.Get("domain"), recs)
	resp := UsageResponse{Poisoned: []PoisonedRecord{}}
	for i, o := range outs {
		switch {
		case recs[i].watermark != nil && o.reason == "":
			resp.Watermark = recs[i].watermark
		case o.reason != "":
			resp.Poisoned = append(resp.Poisoned, PoisonedRecord{Line: recs[i].line, Offset: o.offset, Reason: o.reason})
		default:
			resp.Accepted++
		}
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusServiceUnavailable
		resp.Error = fmt.Sprintf("%v: %d of %d records sent", err, len(outs), len(recs))
	}
	writeJSON(w, status, resp)
}

// splitLines reads an NDJSON body: one record per line, blank lines
// skipped (a line that is not JSON is still a record: it is poisoned).
func splitLines(body []byte) []record {
	var out []record
	for n := 1; len(body) > 0; n++ {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, record{payload: line, line: n})
		}
	}
	return out
}

// NodeResponse is the answer to POST nodes_path.
type NodeResponse struct {
	Host     string    `json:"host"`
	Capacity []float64 `json:"capacity"` // in the order of connector.parameters.metrics
}

func (c *Connector) serveNodes(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "use POST with "+typeJSON)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != typeJSON {
		httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: want %s", r.Header.Get("Content-Type"), typeJSON))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "a node record is small: "+err.Error())
		return
	}
	pos := codecs.Position{Source: "http:" + c.args.NodesPath}
	nc, h, err := codecs.DecodeNode(body, pos, c.env.Fields.Metrics)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	rt := c.runtime()
	if rt == nil {
		httpError(w, http.StatusServiceUnavailable, "the pipeline is not running yet")
		return
	}
	if err := rt.SetHost(h, codecs.HostDomain{Domain: nc.Domain, Where: pos}); err != nil {
		httpError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	c.log.Info("host capacity set", "host", h.Name, "capacity", h.Capacity)
	writeJSON(w, http.StatusOK, NodeResponse{Host: h.Name, Capacity: h.Capacity})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", typeJSON)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}
