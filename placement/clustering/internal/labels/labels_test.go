package labels

import (
	"slices"
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name string
		in   []int
		want []int
		k    int
	}{
		{"empty", []int{}, []int{}, 0},
		{"already canonical", []int{0, 1, 0, 2}, []int{0, 1, 0, 2}, 3},
		{"permuted", []int{2, 0, 2, 1}, []int{0, 1, 0, 2}, 3},
		{"gaps", []int{7, 7, 3, 9}, []int{0, 0, 1, 2}, 3},
		{"negative kept", []int{-1, 5, -1, 4}, []int{-1, 0, -1, 1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slices.Clone(tt.in)
			if k := Canonical(got); k != tt.k || !slices.Equal(got, tt.want) {
				t.Errorf("Canonical(%v) = %v, %d; want %v, %d", tt.in, got, k, tt.want, tt.k)
			}
		})
	}
}

func TestSamePartition(t *testing.T) {
	tests := []struct {
		name string
		a, b []int
		want bool
	}{
		{"identical", []int{0, 1, 1}, []int{0, 1, 1}, true},
		{"renamed", []int{0, 1, 1, 2}, []int{5, 3, 3, 0}, true},
		{"split", []int{0, 0, 1}, []int{0, 1, 2}, false},
		{"merged", []int{0, 1, 2}, []int{0, 0, 2}, false},
		{"length", []int{0}, []int{0, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SamePartition(tt.a, tt.b); got != tt.want {
				t.Errorf("SamePartition(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
