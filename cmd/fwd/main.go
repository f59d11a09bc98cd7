// Command fwd is the firewall/router appliance: daemon, CLI and lab.
// It is flag parsing and wiring only; the logic lives in the packages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/daemon"
)

// Exit codes scripts can rely on.
const (
	exitOK      = 0 // success
	exitFailure = 1 // invalid config, failed apply, daemon unreachable …
	exitUsage   = 2 // bad command line
	exitChanges = 3 // `fwd plan --exit-code`: changes are pending
)

// version is set at build time: -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name    string
	args    string // usage after the name
	summary string
	run     func(args []string) int
	hidden  bool
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "fwd %s — Linux firewall/router with one network namespace per tenant\n\n", version)
	fmt.Fprintf(w, "Usage: fwd COMMAND [OPTIONS]\n\nCommands:\n")
	cs := append([]*command(nil), commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		if !c.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun 'fwd COMMAND -h' for a command's options.\n")
	fmt.Fprintf(w, "Exit codes: 0 success, 1 failure (invalid config, failed apply), 2 usage error, 3 plan has changes (plan --exit-code).\n")
}

func main() {
	// Before anything opens a descriptor: see daemon/limits_linux.go.
	if err := daemon.LimitDescriptors(); err != nil {
		fmt.Fprintf(os.Stderr, "fwd: warning: %v\n", err)
	}
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(exitUsage)
	}
	name := os.Args[1]
	switch name {
	case "-h", "--help", "help":
		if len(os.Args) > 2 {
			if c := lookup(os.Args[2]); c != nil {
				os.Exit(c.run([]string{"-h"}))
			}
		}
		usage(os.Stdout)
		os.Exit(exitOK)
	case "-v", "--version":
		name = "version"
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(os.Stderr, "fwd: unknown command %q\n\n", name)
		usage(os.Stderr)
		os.Exit(exitUsage)
	}
	os.Exit(c.run(os.Args[2:]))
}

// flags returns a FlagSet for a command with the common -c option.
func flags(c *command, cfgPath *string) *flag.FlagSet {
	fs := flag.NewFlagSet("fwd "+c.name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: fwd %s %s\n\n%s\n\nOptions:\n", c.name, c.args, c.summary)
		fs.PrintDefaults()
	}
	if cfgPath != nil {
		fs.StringVar(cfgPath, "c", config.DefaultPath, "configuration `file`")
	}
	return fs
}

// parse parses flags; it returns an exit code >= 0 when the command
// must stop (help or usage error).
func parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	return -1
}

// logFlags adds --log-format and --debug to fs. The returned function
// builds the logger once fs is parsed; its argument is the format to use
// when --log-format was not given ("" for text), e.g. mgmt.log_format.
func logFlags(fs *flag.FlagSet) func(fallback string) *slog.Logger {
	format := fs.String("log-format", "", "log format: text or json (default: mgmt.log_format where a configuration is read, else text)")
	debug := fs.Bool("debug", false, "debug logging")
	return func(fallback string) *slog.Logger {
		f := *format
		if f == "" {
			f = fallback
		}
		level := slog.LevelInfo
		if *debug {
			level = slog.LevelDebug
		}
		return newLogger(f, level)
	}
}

func newLogger(format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "fwd: "+format+"\n", args...)
	return exitFailure
}

func init() {
	register(&command{name: "version", summary: "print fwd's version", run: func(args []string) int {
		fmt.Println("fwd", version)
		return exitOK
	}})
}
