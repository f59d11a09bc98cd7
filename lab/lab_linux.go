package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/configs"
	"github.com/fwdproject/fwd/daemon"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/internal/sandbox"
	"github.com/fwdproject/fwd/internal/testnet"
)

// Paths inside the sandbox's private /run.
const (
	runDir      = "/run/fwd"
	revisionDir = runDir + "/revisions"
	pidFile     = runDir + "/fwd.pid"
)

// Options say what Run does once the lab is up.
type Options struct {
	// ConfigPath is the daemon's configuration; "" uses the embedded
	// configs/lab.toml.
	ConfigPath string
	Check      bool // run the checks and return (ErrChecksFailed if any failed)
	Shell      bool // open $SHELL inside the sandbox, stop when it exits
	// Log receives the daemon's log lines (nil discards them).
	Log *slog.Logger
	// Out receives the lab's progress and check results (nil: stdout).
	Out io.Writer
}

// ErrChecksFailed is returned by Run with Check when a check failed.
var ErrChecksFailed = errors.New("lab checks failed")

// ErrSandbox wraps a failure to enter the sandbox (not root, or no
// network namespaces).
var ErrSandbox = errors.New("lab needs root and network namespaces")

// Run enters a fresh sandbox (the calling process is re-executed there
// and exits with the child's code, so Run returns only inside it), builds
// the lab, runs the daemon, runs the checks and then checks, opens a
// shell, or waits for SIGINT/SIGTERM, as opts say. Everything it started
// is stopped and torn down before it returns.
func Run(opts Options) error {
	// Ctrl-C signals the whole process group. Outside the sandbox this
	// process only waits for its re-executed child, which dies with it
	// (SIGKILL): it must outlive the child's cleanup, so it ignores the
	// SIGINT; the child catches it from the start and stops the lab.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := sandbox.Enter(); err != nil {
		return fmt.Errorf("%w: %w", ErrSandbox, err)
	}
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP) // the sandbox's parent passes both on
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	fmt.Fprintln(out, "fwd lab: running in a private network+mount namespace; the machine's network is not touched")
	cfgPath := opts.ConfigPath
	if cfgPath == "" {
		data, err := configs.FS.ReadFile("lab.toml")
		if err != nil {
			return err
		}
		cfgPath = runDir + "/lab.toml"
		if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "== building simulated hosts and NICs")
	if err := buildHosts(out); err != nil {
		return err
	}
	if _, err := exec.LookPath("bird"); err == nil {
		stop, err := startBird()
		if err != nil {
			return fmt.Errorf("start BIRD: %w", err)
		}
		defer stop()
		fmt.Fprintln(out, "   BIRD 2 in wan-host plays the ISP (AS 64600, announces 198.18.100.0/24)")
	} else {
		fmt.Fprintln(out, "   bird not installed (apt-get install bird2): the BGP checks are skipped")
	}
	// Whatever happens, the lab leaves nothing running: BGP speakers are
	// designed to outlive the daemon, so the lab tears down explicitly.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	defer func() { _ = exec.Command(self, "teardown", "-y").Run() }()

	fmt.Fprintf(out, "== starting the fwd daemon with %s\n", cfgPath)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applied := make(chan error, 8)
	done := make(chan error, 1)
	go func() {
		// Speakers exit with the lab's process even when it is killed:
		// the lab leaves no process behind.
		done <- daemon.Run(ctx, daemon.Options{ConfigPath: cfgPath, PidFile: pidFile, RevisionDir: revisionDir, Log: opts.Log, SpeakersExitWithDaemon: true,
			Applied: func(rep *engine.Report, err error) { applied <- err }})
	}()
	select {
	case err := <-applied:
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	case err := <-done:
		return fmt.Errorf("daemon: %w", err)
	case <-time.After(30 * time.Second):
		return errors.New("daemon did not apply within 30s")
	}
	stopDHCP, err := leaseLANHost(out) // dhcp_linux.go
	if err != nil {
		return err
	}
	defer stopDHCP()
	if c, err := config.Load(cfgPath); err == nil && c.Mgmt.MetricsListen != "" {
		fmt.Fprintf(out, "   status page: http://%s/ (inside the lab: curl -s http://%s/v1/dashboard)\n", c.Mgmt.MetricsListen, c.Mgmt.MetricsListen)
	}
	fmt.Fprintln(out, "== connectivity")
	for _, srv := range []struct{ ns, addr, reply string }{
		{"lan-host", "192.0.2.10:80", "lan-web"},
		{"wan-host", "203.0.113.1:80", "wan-web"},
	} {
		l, err := testnet.ServeTCP(srv.ns, srv.addr, srv.reply)
		if err != nil {
			return err
		}
		defer l.Close()
	}
	failed := runChecks(out)
	showAll(out, self, cfgPath)
	if failed > 0 {
		fmt.Fprintf(out, "== %d checks failed\n", failed)
	} else {
		fmt.Fprintln(out, "== all checks passed")
	}
	switch {
	case opts.Check:
		cancel()
		if err := <-done; err != nil {
			return fmt.Errorf("daemon: %w", err)
		}
		if failed > 0 {
			return fmt.Errorf("%w: %d of them", ErrChecksFailed, failed)
		}
		return nil
	case opts.Shell:
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		fmt.Fprintln(out, "== shell inside the lab sandbox: try 'fwd show', 'ip netns exec lan-host ping 203.0.113.1', 'kill -HUP $(cat /run/fwd/fwd.pid)'; exit to stop")
		c := exec.Command(sh)
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
		c.Env = append(os.Environ(), "PS1=fwd-lab# ")
		_ = c.Run() // the shell's exit status is the user's business
		cancel()
		if err := <-done; err != nil {
			return fmt.Errorf("daemon: %w", err)
		}
		return nil
	}
	fmt.Fprintln(out, "== lab running; Ctrl-C stops it and removes everything")
	var derr error
	select {
	case <-sigs:
		// The daemon got the signal too; give it time to stop.
		cancel()
		select {
		case derr = <-done:
		case <-time.After(10 * time.Second):
		}
	case derr = <-done:
	}
	if derr != nil {
		return fmt.Errorf("daemon: %w", derr)
	}
	fmt.Fprintln(out, "== lab stopped; the sandbox and everything in it are gone")
	return nil
}

// showAll prints what the CLI shows of the running lab, by running the
// fwd binary itself as a user would.
func showAll(out io.Writer, self, cfgPath string) {
	for _, args := range [][]string{{"show"}, {"show", "rules", "-c", cfgPath, "edge"}, {"show", "routes", "-c", cfgPath, "--table", "main"}, {"bgp", "show", "edge"}} {
		show := exec.Command(self, args...)
		show.Stdout, show.Stderr = out, os.Stderr
		fmt.Fprintf(out, "== fwd %s\n", strings.Join(args, " "))
		_ = show.Run() // its output is the report; a failure shows there
	}
}
