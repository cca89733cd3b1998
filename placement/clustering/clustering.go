// Package clustering groups containers by usage profile. Each method lives in
// its own folder with its Args, defaults and validation side by side (the
// descheduler's plugin layout); this file is the registry the engine uses.
package clustering

// Algorithm partitions the rows of x (n rows, d features each) into at most
// k groups. Labels are dense (0..k'-1, k' <= k, in order of first
// appearance over the rows) and deterministic for the same input and Args.
type Algorithm interface {
	Cluster(x [][]float64, k int) ([]int, error)
}

// Args selects and tunes a method. Zero values mean "default".
type Args struct {
	// Method: "kmeans" (also "stream_kmeans"), "hierarchical", "spectral".
	Method string `json:"method" koanf:"method"`
	// K is the number of clusters.
	K int `json:"k" koanf:"k"`
	// Seed makes every random choice reproducible.
	Seed int64 `json:"seed" koanf:"seed"`
	// Restarts of k-means (best inertia wins).
	Restarts int `json:"restarts" koanf:"restarts"`
	// MaxIter bounds k-means Lloyd iterations.
	MaxIter int `json:"max_iter" koanf:"max_iter"`
	// Linkage for hierarchical: "ward" or "average".
	Linkage string `json:"linkage" koanf:"linkage"`
}
