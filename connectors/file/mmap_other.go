//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package file

import "os"

// mapFile: no memory mapping here; the caller reads with ReadAt.
func mapFile(*os.File) ([]byte, func()) { return nil, nil }
