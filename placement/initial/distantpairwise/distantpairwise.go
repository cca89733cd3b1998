// Package distantpairwise is the thesis' default initial placement (spec
// 4.1): co-locate, pair by pair, the members of the two clusters whose mean
// profiles add up to the flattest sum, so that every host carries one
// container that peaks while the other dips.
//
// The name is upstream's. Its doc string says it pairs the "most distant"
// clusters, but the thesis code (v0.1.7) picks the *minimum* of the cluster
// pair variance matrix S, i.e. the most complementary pair; HEAD's rewrite
// picks the maximum, which co-locates clusters that peak together. We follow
// the thesis code, because that is what makes hosts flat.
//
// Differences from upstream, all deliberate:
//   - every metric counts: S sums the capacity-scaled variances of all
//     metrics, and the fit test checks every metric at every tick;
//   - the fit test is non-strict (load ≤ capacity), as everywhere in hots;
//   - the round robin never indexes past the last host and never loops:
//     when nothing fits the container stays where it runs (upstream's
//     open-node counter runs off the end or spins, spec 4.1 step 3, 4.2);
//   - containers left over (the tail of the longer cluster of a pair, and
//     clusters without a partner) are placed at the end, first-fit by
//     decreasing peak demand, instead of round-robin right away: pairs get
//     the room first and the singles fill the gaps, consolidating.
package distantpairwise

import (
	"hots/placement/initial/internal/pack"
)

// Placer runs distant_pairwise with fixed Args.
type Placer struct {
	args Args
}

// New returns a Placer after applying defaults and validating args.
func New(args Args) (*Placer, error) {
	SetDefaults(&args)
	if err := args.Validate(); err != nil {
		return nil, err
	}
	return &Placer{args: args}, nil
}

// Place returns, per container of p, the index of its host.
func (pl *Placer) Place(p pack.Problem) ([]int, error) {
	book, metrics, ticks, err := pack.Prepare(p, pl.args.Headroom)
	if err != nil {
		return nil, err
	}
	ref := p.RefCapacity(metrics)
	clusters := p.Clusters(metrics, ticks)
	s := pack.PairVariance(clusters, ref)
	rr := roundRobin{book: book, open: p.MinHosts(metrics, ticks, pl.args.Headroom)}
	if pl.args.SpreadAll {
		rr.open = book.Hosts()
	}

	done := make([]bool, len(clusters))
	var rest []int
	for {
		a, b := flattestPair(s, done)
		if a < 0 {
			break
		}
		done[a], done[b] = true, true
		rest = append(rest, rr.pairUp(clusters[a].Members, clusters[b].Members)...)
	}
	for k, c := range clusters {
		if !done[k] {
			rest = append(rest, c.Members...)
		}
	}
	for _, i := range p.ByPeakDesc(rest, ref) {
		rr.single(i)
	}
	return book.Result(), nil
}

// flattestPair returns the not-yet-placed clusters a < b with the smallest
// S[a][b]; ties go to the first in row-major order, as upstream. It returns
// -1, -1 when fewer than two clusters remain.
func flattestPair(s [][]float64, done []bool) (int, int) {
	ba, bb := -1, -1
	for a := range s {
		if done[a] {
			continue
		}
		for b := a + 1; b < len(s); b++ {
			if done[b] {
				continue
			}
			if ba < 0 || s[a][b] < s[ba][bb] {
				ba, bb = a, b
			}
		}
	}
	return ba, bb
}

// roundRobin places over the first `open` hosts with a cursor, so that
// consecutive pairs land on different hosts, and opens the next host in node
// order only when no open host can take a pair. `open` starts at the
// capacity lower bound (pack.MinHosts) and only grows; upstream resets it
// for every cluster pair, which re-discovers the same hosts.
type roundRobin struct {
	book *pack.Book
	open int
}

// pairUp places A[k] with B[k] for every k of the shorter list and returns
// the tail of the longer one. The cursor restarts at the first host for
// every cluster pair (spec 4.1).
func (rr *roundRobin) pairUp(as, bs []int) []int {
	n := 0
	k := 0
	for ; k < len(as) && k < len(bs); k++ {
		i, j := as[k], bs[k]
		h := rr.fitPair(n, i, j)
		if h < 0 {
			// Too big together anywhere: each on its own.
			rr.single(i)
			rr.single(j)
			continue
		}
		rr.book.Assign(i, h)
		rr.book.Assign(j, h)
		n = (h + 1) % rr.open
	}
	if k < len(as) {
		return as[k:]
	}
	return bs[k:]
}

// fitPair returns the first open host from the cursor on where i and j fit
// together, else the first host beyond the open ones (which it opens), else
// -1.
func (rr *roundRobin) fitPair(n, i, j int) int {
	for s := range rr.open {
		h := (n + s) % rr.open
		if rr.book.FitsPair(h, i, j) {
			return h
		}
	}
	for h := rr.open; h < rr.book.Hosts(); h++ {
		if rr.book.FitsPair(h, i, j) {
			rr.open = h + 1
			return h
		}
	}
	return -1
}

// single places one container first-fit in node order, and counts the host
// it lands on as open so later pairs may share it.
func (rr *roundRobin) single(i int) {
	if h := rr.book.FirstFit(i); h >= rr.open {
		rr.open = h + 1
	}
}
