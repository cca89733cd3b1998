package rows

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestFlatten(t *testing.T) {
	tests := []struct {
		name    string
		x       [][]float64
		want    []float64
		d       int
		wantErr string
	}{
		{"empty", nil, nil, 0, ""},
		{"packs row-major", [][]float64{{1, 2}, {3, 4}}, []float64{1, 2, 3, 4}, 2, ""},
		{"ragged", [][]float64{{1, 2}, {3}}, nil, 0, "row 1 has 1 columns, row 0 has 2"},
		{"NaN", [][]float64{{1, 2}, {3, math.NaN()}}, nil, 0, "row 1, column 1: value NaN is not finite"},
		{"Inf", [][]float64{{math.Inf(-1)}}, nil, 0, "row 0, column 0: value -Inf is not finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, d, err := Flatten(tt.x)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || d != tt.d || !slices.Equal(got, tt.want) {
				t.Errorf("Flatten = %v, %d, %v; want %v, %d", got, d, err, tt.want, tt.d)
			}
		})
	}
}

func TestFirstEqual(t *testing.T) {
	flat := []float64{1, 2, 3, 4, 1, 2, 0, 0, math.Copysign(0, -1), 0}
	got := FirstEqual(flat, 5, 2)
	want := []int{0, 1, 0, 3, 3}
	if !slices.Equal(got, want) {
		t.Errorf("FirstEqual = %v, want %v", got, want)
	}
	if n := Distinct(got); n != 3 {
		t.Errorf("Distinct = %d, want 3", n)
	}
}
