package pipeline

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The profiler is only served when asked for: a CPU profile is a heavy
// request anyone reaching the port could make.
func TestServicePprofOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		pprof bool
		want  int
	}{{false, http.StatusNotFound}, {true, http.StatusOK}} {
		svc, err := NewService(ServiceOptions{Addr: "127.0.0.1:0", Pprof: tc.pprof}, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + svc.Addr() + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		svc.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("pprof %v: status %d, want %d", tc.pprof, resp.StatusCode, tc.want)
		}
		if tc.pprof && !strings.Contains(string(body), "goroutine profile:") {
			t.Errorf("pprof on: body %.200q is not a goroutine profile", body)
		}
	}
}
