// Package integration runs hots end to end: the service binary against a
// Kafka-protocol broker (kfake, over TCP, through the same watermill-kafka,
// goka and sarama code a user runs), compared with a file replay.
package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"hots/codecs"
	"hots/config"
	"hots/connectors"
	_ "hots/connectors/file"
	"hots/connectors/kafka/devbroker"
	"hots/pipeline"
	"hots/placement"
)

var (
	hotsBin  string
	repoRoot string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hots-integration-")
	if err != nil {
		panic(err)
	}
	wd, _ := os.Getwd()
	repoRoot = filepath.Dir(wd)
	hotsBin = filepath.Join(dir, "hots")
	build := exec.Command("go", "build", "-o", hotsBin, "./cmd/hots")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: building hots:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// traceDir finds an upstream trace: $HOTS_DATA, else <repo root>/../shared/data.
func traceDir(t testing.TB, rel string) string {
	t.Helper()
	base := os.Getenv("HOTS_DATA")
	if base == "" {
		base = filepath.Join(repoRoot, "..", "shared", "data")
	}
	p := filepath.Join(base, rel)
	if _, err := os.Stat(filepath.Join(p, "container_usage.csv")); err != nil {
		t.Skipf("trace %s not available (set HOTS_DATA to the folder holding upstream/): %v", rel, err)
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startBroker(t testing.TB, port int, dataDir string) *devbroker.Broker {
	t.Helper()
	b, err := devbroker.Start(devbroker.Options{Ports: []int{port}, Partitions: 6, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// trace is what a test runs: a folder and the configuration keys that fit it.
type trace struct {
	dir  string
	yaml string // connector/clustering/problem part of the config
}

func thesisTrace(t testing.TB) trace {
	return trace{dir: traceDir(t, "upstream/thesis_ex_10"), yaml: `
clustering: {method: kmeans, nb_clusters: 3, parameters: {random_state: 0}}
problem: {type: placement, parameters: {tol: 0.1, tol_move: 0.2}}
connector:
  parameters: {metrics: [cpu], sep_time: 4, tick_increment: 1, window_duration: 3}
`}
}

// writeConfig writes a kafka-mode config for tr; extra is appended YAML
// under kafka (indented by the caller).
func writeConfig(t testing.TB, dir string, tr trace, brokers string, httpAddr, kafkaExtra string) string {
	t.Helper()
	y := tr.yaml + fmt.Sprintf(`
kafka:
  brokers: [%s]
  usage_topics: [hots.usage]
  group: hots-it
  partitions: 6
  lateness: 0s
  idle_timeout: 3s
%s
service: {http_addr: "%s"}
logging: {level: INFO}
`, brokers, kafkaExtra, httpAddr)
	// connector.type and data_folder are set through the environment-free
	// route: the yaml block already has connector.parameters; add them there.
	y = strings.Replace(y, "connector:\n  parameters: {", "connector:\n  type: kafka\n  parameters: {data_folder: "+strconv.Quote(tr.dir)+", ", 1)
	p := filepath.Join(dir, "hots.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fileReplay replays tr with the same configuration in file mode and
// returns its moves by id.
func fileReplay(t testing.TB, cfgPath string, tr trace) map[string]placement.Move {
	t.Helper()
	cfg, _, err := config.Load(config.LoadOptions{File: cfgPath, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	outfile := filepath.Join(t.TempDir(), "moves.jsonl")
	raw := pipeline.RawConnector(*cfg)
	raw.Parameters["data_folder"], raw.Parameters["outfile"] = tr.dir, outfile
	conn, _, err := connectors.Open("file", raw, pipeline.Env(*cfg, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Run(context.Background(), *cfg, conn, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(outfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	moves := map[string]placement.Move{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m, err := codecs.DecodeMove(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		moves[m.ID] = m
	}
	if len(moves) == 0 {
		t.Fatalf("file replay of %s decided no moves: the comparison would prove nothing", tr.dir)
	}
	return moves
}

// service is one `hots run` process.
type service struct {
	cmd  *exec.Cmd
	http string
	log  string
	done chan error
}

func startService(t testing.TB, cfgPath, name string, waitReady bool) *service {
	t.Helper()
	s := &service{http: fmt.Sprintf("127.0.0.1:%d", freePort(t)), log: filepath.Join(filepath.Dir(cfgPath), name+".log"), done: make(chan error, 1)}
	lf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(hotsBin, "run", "--config", cfgPath)
	s.cmd.Env = append(os.Environ(), "HOTS_SERVICE__HTTP_ADDR="+s.http, "HOTS_SERVICE__PPROF="+strconv.FormatBool(os.Getenv("HOTSIT_PROFILE") != ""))
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait(); lf.Close() }()
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("HOTSIT_DUMP") != "" {
			s.cmd.Process.Signal(syscall.SIGQUIT) // goroutine dump into the log
			time.Sleep(time.Second)
		}
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
		s.done <- nil
		if dir := os.Getenv("HOTSIT_LOGS"); dir != "" { // keep every service log
			b, _ := os.ReadFile(s.log)
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log"), b, 0o644)
		}
		if t.Failed() {
			b, _ := os.ReadFile(s.log)
			t.Logf("---- %s log (tail) ----\n%s", name, tail(string(b), 4000+200000*len(os.Getenv("HOTSIT_DUMP"))))
		}
	})
	if waitReady {
		waitFor(t, 60*time.Second, name+" ready", func() bool { return s.get("/readyz") == "ready\n" })
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (s *service) get(path string) string {
	c := http.Client{Timeout: 2 * time.Second}
	r, err := c.Get("http://" + s.http + path)
	if err != nil {
		return ""
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		return ""
	}
	return string(b)
}

// metric reads one unlabelled counter from /metrics (NaN if absent).
func (s *service) metric(name string) float64 {
	for _, l := range strings.Split(s.get("/metrics"), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return math.NaN()
}

func (s *service) kill(t testing.TB) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.done <- nil
}

func produce(t testing.TB, cfgPath string, tr trace, brokers string, rate float64, extra ...string) {
	t.Helper()
	args := append([]string{"produce", "--config", cfgPath, "--data", tr.dir, "--brokers", brokers,
		"--rate", strconv.FormatFloat(rate, 'f', -1, 64)}, extra...)
	out, err := exec.Command(hotsBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("hots produce: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readMoves reads the whole moves topic and deduplicates by id; two
// records with one id must be equal (a republished move, never a
// different one).
func readMoves(t testing.TB, brokers, topic string) (map[string]placement.Move, int) {
	t.Helper()
	recs := readTopic(t, brokers, topic)
	moves := map[string]placement.Move{}
	for _, r := range recs {
		m, err := codecs.DecodeMove(r.Value)
		if err != nil {
			t.Fatalf("moves topic: %v: %s", err, r.Value)
		}
		if prev, ok := moves[m.ID]; ok && prev != m {
			t.Fatalf("move id %s published with different contents:\n%+v\n%+v", m.ID, prev, m)
		}
		moves[m.ID] = m
	}
	return moves, len(recs)
}

func readTopic(t testing.TB, brokers, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	// Each partition's consumer is closed at its end, which waits for the
	// fetch in flight there: at sarama's 500 ms that made one read of a
	// 6-partition topic take 3 s, and every poll of a test as late.
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	c, err := sarama.NewClient(strings.Split(brokers, ","), sc)
	if err != nil {
		return nil
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		return nil
	}
	cons, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		return nil
	}
	defer cons.Close()
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hwm, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil || hwm == 0 {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			continue
		}
		for m := range pc.Messages() {
			out = append(out, m)
			if m.Offset >= hwm-1 {
				break
			}
		}
		pc.Close()
	}
	return out
}

// waitSameMoves waits until the moves topic holds exactly want (by id and
// contents), and reports the difference if it never does.
func waitSameMoves(t testing.TB, brokers string, want map[string]placement.Move, timeout time.Duration) int {
	t.Helper()
	var got map[string]placement.Move
	var n int
	deadline := time.Now().Add(timeout)
	for {
		got, n = readMoves(t, brokers, "hots.moves")
		if equalMoves(got, want) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("moves differ from the file replay after %s:\n%s", timeout, diffMoves(got, want))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func equalMoves(a, b map[string]placement.Move) bool {
	if len(a) != len(b) {
		return false
	}
	for id, m := range a {
		if b[id] != m {
			return false
		}
	}
	return true
}

func diffMoves(got, want map[string]placement.Move) string {
	var lines []string
	for id, m := range want {
		if g, ok := got[id]; !ok {
			lines = append(lines, fmt.Sprintf("missing: %+v", m))
		} else if g != m {
			lines = append(lines, fmt.Sprintf("differs: got %+v want %+v", g, m))
		}
	}
	for id, m := range got {
		if _, ok := want[id]; !ok {
			lines = append(lines, fmt.Sprintf("extra:   %+v", m))
		}
	}
	slices.Sort(lines)
	return fmt.Sprintf("got %d, want %d\n%s", len(got), len(want), strings.Join(lines, "\n"))
}
