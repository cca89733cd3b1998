package main

import (
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"hots/pipeline"
	"hots/placement"
)

// fanout passes every observation to each observer in turn.
type fanout []pipeline.Observer

func (f fanout) TickClosed(d string, t int64, a, b map[string][]float64) {
	for _, o := range f {
		o.TickClosed(d, t, a, b)
	}
}

func (f fanout) Decided(r pipeline.LoopRecord, m []placement.Move) {
	for _, o := range f {
		o.Decided(r, m)
	}
}

func (f fanout) Rejected(r pipeline.Reject) {
	for _, o := range f {
		o.Rejected(r)
	}
}

func (f fanout) Progress(done, total int64) {
	for _, o := range f {
		o.Progress(done, total)
	}
}

// progress draws input consumption on a terminal; only Progress matters.
type progress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// newProgress returns nil unless w is a terminal: a bar in a log file or a
// pipe is noise.
func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("replay"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)}
}

func (p *progress) TickClosed(string, int64, map[string][]float64, map[string][]float64) {}
func (p *progress) Decided(pipeline.LoopRecord, []placement.Move)                        {}
func (p *progress) Rejected(pipeline.Reject)                                             {}

func (p *progress) Progress(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if total > 0 && p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Finish()
}
