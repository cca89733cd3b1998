// Command hots decides where containers should run. Subcommands:
//
//	hots run [--config F] [flags]   replay a trace (default: the bundled sample) into a run directory
//	hots generate --out DIR          write a synthetic trace
//	hots report RUN_DIR              print a run's summary again
//	hots compare [--config F]        replay one trace with hots and the baseline policies (compare.go)
//	hots config [--config F]         print the effective configuration
//
// Live mode (connector.type kafka) and its helpers register themselves in
// the command table from their own files (see register).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/pflag"
)

// command is one subcommand. run gets the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a subcommand; files of the Kafka side add `hots broker`
// and `hots produce` this way from an init function.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("hots: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func init() {
	register(command{"run", "replay a trace (default: the bundled sample) and write a run directory", cmdRun})
	register(command{"generate", "write a synthetic trace (container_usage.csv, node_meta.csv)", cmdGenerate})
	register(command{"report", "print the summary of a run directory", cmdReport})
	register(command{"config", "print the effective configuration as JSON", cmdConfig})
}

// errUsage marks errors caused by the command line; main exits 2 on them.
var errUsage = errors.New("usage")

// Exit codes: 0 done, 1 failed (bad input that left nothing usable, bad
// configuration, I/O), 2 bad command line, 128+signal (130 SIGINT, 143
// SIGTERM) for a replay stopped by a signal, as shells report it.
func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value
	go func() {
		s := <-sigs
		got.Store(s)
		cancel()
		for range sigs { // later ones are absorbed while the run winds down
		}
	}()
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	sig, _ := got.Load().(os.Signal)
	if code := exitStatus(err, sig, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// exitStatus says err on stderr and returns the process's exit code; sig
// is the signal that stopped the run, if one did.
func exitStatus(err error, sig os.Signal, stderr io.Writer) int {
	var interrupted *interruptedError
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "hots:", err)
		return 2
	case errors.As(err, &interrupted):
		fmt.Fprintf(stderr, "hots: %v (%v)\n", err, sig)
		return exitCode(sig)
	}
	fmt.Fprintln(stderr, "hots:", err)
	return 1
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return fmt.Errorf("%w: no command given", errUsage)
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: hots <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\n`hots <command> --help` lists a command's flags.")
}

// newFlags returns a flag set whose parse errors are usage errors.
func newFlags(name string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hots "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	return fs
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func trimArgs(fs *pflag.FlagSet, want int, what string) ([]string, error) {
	if fs.NArg() != want {
		return nil, fmt.Errorf("%w: %s: want %s, got %q", errUsage, fs.Name(), what, strings.Join(fs.Args(), " "))
	}
	return fs.Args(), nil
}
