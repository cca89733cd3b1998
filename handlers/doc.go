// Package handlers holds the four stage handlers of the pipeline as
// Watermill handler funcs: Decoder (bytes -> samples), Window (samples ->
// closed ticks), Placer (closed ticks -> engine decisions) and PublishMoves
// (decisions -> one move message each). They are thin: they route, keep
// per-domain state and call the engine; the method itself is in placement.
//
// Handlers report to callbacks rather than to pipeline.Observer, so that
// they depend on nothing above them (pipeline adapts the two).
//
// Error policy: a CSV batch is rejected row by row (the good rows of a
// batch go on, each bad row goes to Reject with file, line and field); a
// JSON record or an undecodable payload fails as a whole with an error
// marked Permanent, which the pipeline's retry middleware does not retry
// and its poison queue takes with the reason.
package handlers

import "errors"

// permanentError marks an error that retrying cannot fix (bad input).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err (or an error it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
