// Package labels gives cluster labels their canonical form, so that the same
// partition of the rows always yields the same label vector whatever order a
// method happened to number its clusters in.
package labels

// Canonical renumbers labels in place in order of first appearance over the
// rows (row 0 gets 0, the next new cluster 1, ...) and returns the number of
// clusters. Negative labels are left untouched.
func Canonical(l []int) int {
	next := 0
	seen := make(map[int]int)
	for i, v := range l {
		if v < 0 {
			continue
		}
		c, ok := seen[v]
		if !ok {
			c = next
			seen[v] = c
			next++
		}
		l[i] = c
	}
	return next
}

// SamePartition reports whether a and b group the rows identically, whatever
// numbers they use for the groups.
func SamePartition(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	ab := make(map[int]int)
	ba := make(map[int]int)
	for i := range a {
		if x, ok := ab[a[i]]; ok && x != b[i] {
			return false
		}
		if y, ok := ba[b[i]]; ok && y != a[i] {
			return false
		}
		ab[a[i]] = b[i]
		ba[b[i]] = a[i]
	}
	return true
}
