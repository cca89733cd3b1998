package pack

import (
	"slices"

	"hots/placement/capacity"
)

// Cluster is one label's members, ordered by ID, and its mean profile.
type Cluster struct {
	Label   int
	Members []int // container indices
	Profile capacity.Series
}

// Clusters groups the containers by label, in ascending label order. Labels
// need not be dense: upstream indexes its matrices by label value and breaks
// as soon as a cluster empties (spec 10 item 14); here a cluster is whatever
// labels are present.
func (p Problem) Clusters(metrics, ticks int) []Cluster {
	byLabel := map[int][]int{}
	for _, i := range p.ByID() {
		l := p.Containers[i].Label
		byLabel[l] = append(byLabel[l], i)
	}
	labels := make([]int, 0, len(byLabel))
	for l := range byLabel {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	out := make([]Cluster, len(labels))
	for k, l := range labels {
		members := byLabel[l]
		prof := capacity.NewSeries(metrics, ticks)
		for _, i := range members {
			prof.Add(p.Containers[i].Demand)
		}
		inv := 1 / float64(len(members))
		for m := range prof {
			for t := range prof[m] {
				prof[m][t] *= inv
			}
		}
		out[k] = Cluster{Label: l, Members: members, Profile: prof}
	}
	return out
}

// PairVariance is spec 3.3's S extended to every metric:
// S[a][b] = Σ_m Var_t((P_a,m(t) + P_b,m(t)) / ref_m), population variance.
// Scaling by the reference capacity makes a CPU and a memory profile
// comparable before they are summed. Low S means the two clusters' mean
// profiles add up to a flat line, i.e. they are complementary. The diagonal
// is left at 0 and is never read: a cluster is not paired with itself.
func PairVariance(cs []Cluster, ref []float64) [][]float64 {
	s := make([][]float64, len(cs))
	for a := range s {
		s[a] = make([]float64, len(cs))
	}
	for a := range cs {
		for b := a + 1; b < len(cs); b++ {
			v := capacity.FlatnessWith(cs[a].Profile, cs[b].Profile, ref)
			s[a][b], s[b][a] = v, v
		}
	}
	return s
}
