package capacity

import "testing"

func TestCellOverloadedAgreesWithFits(t *testing.T) {
	tests := []struct {
		name      string
		load, cap float64
		want      bool
	}{
		{"below", 3, 4, false},
		{"exactly full", 4, 4, false},
		{"rounding noise", 0.1 + 0.2, 0.3, false},
		{"over", 4.01, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CellOverloaded(tt.load, tt.cap); got != tt.want {
				t.Fatalf("CellOverloaded(%v, %v) = %v, want %v", tt.load, tt.cap, got, tt.want)
			}
			fits := Fits(Series{{0}}, Series{{tt.load}}, []float64{tt.cap})
			if fits == tt.want {
				t.Fatalf("Fits disagrees: fits=%v overloaded=%v", fits, tt.want)
			}
		})
	}
}
