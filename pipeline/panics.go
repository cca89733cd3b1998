package pipeline

import (
	"fmt"
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"

	"hots/codecs"
	"hots/handlers"
)

// PanicError is a panic in a stage. It is a bug, not a bad message:
// watermill's Recoverer made it an error that was retried, and the retry
// met a tick already closed, so the loop was lost as a "late" tick and the
// run exited 0. It names where it happened so the bug can be found.
type PanicError struct {
	Handler string
	Domain  string
	Tick    string
	Value   any
	Stack   []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("panic in the %s stage (domain %q, tick %s): %v (a bug in hots; the stack is in the log)", e.Handler, e.Domain, e.Tick, e.Value)
}

// failOnPanic stands where middleware.Recoverer stood: the panic becomes a
// permanent error (never retried) and onPanic, when set, stops the run
// with it.
func failOnPanic(onPanic func(*PanicError)) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) (out []*message.Message, err error) {
			defer func() {
				if r := recover(); r != nil {
					pe := &PanicError{Handler: stageName(message.HandlerNameFromCtx(msg.Context())), Domain: msg.Metadata.Get(codecs.MetaDomain),
						Tick: msg.Metadata.Get(codecs.MetaTick), Value: r, Stack: debug.Stack()}
					if onPanic != nil {
						onPanic(pe)
					}
					out, err = nil, handlers.Permanent(pe)
				}
			}()
			return h(msg)
		}
	}
}
