package capacity

// CellOverloaded reports whether a single (metric, tick) load exceeds its
// capacity, with the same rounding allowance as Fits and Overloaded. It lets
// streaming code (run KPIs) count overloads cell by cell without building a
// Series, while still agreeing with Fits on every boundary case.
func CellOverloaded(load, cap float64) bool { return load > cap+eps(cap) }
