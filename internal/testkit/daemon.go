package testkit

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	fwdBin    string
	buildOut  []byte
	buildErr  error
)

// Binary builds cmd/fwd once per test binary and returns its path. The
// end-to-end tests run fwd as a user would: this binary, its flags, its
// exit codes.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fwd-bin")
		if err != nil {
			buildErr = err
			return
		}
		fwdBin = filepath.Join(dir, "fwd")
		buildOut, buildErr = exec.Command("go", "build", "-o", fwdBin, "github.com/fwdproject/fwd/cmd/fwd").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build fwd: %v\n%s", buildErr, buildOut)
	}
	return fwdBin
}

// Fwd runs the fwd binary and returns its stdout, stderr and exit code.
func Fwd(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// DaemonOptions say how StartDaemon runs `fwd run`.
type DaemonOptions struct {
	// Name makes the pid file and API socket unique: /run/fwd/NAME.pid,
	// /run/fwd/NAME.sock (the sandbox's private /run). Default "fwd-test".
	Name string
	// Metrics is the metrics listener address; "" turns metrics off.
	Metrics string
	// RevisionDir is where revisions go; "" for a fresh temporary
	// directory (a restart test passes the first daemon's).
	RevisionDir string
	// Env is added to the daemon's environment (failpoints).
	Env []string
}

// Daemon is a `fwd run` process started by StartDaemon. It never uses
// the host's paths: its revisions go to a temporary directory of the test.
type Daemon struct {
	Cmd         *exec.Cmd
	Log         *LogWatcher // its stderr, in text format
	PidFile     string
	Socket      string
	RevisionDir string
	Metrics     string // "" when off
}

// StartDaemon runs `fwd run -c cfg` and returns once its API listens
// (and its metrics listener, when asked for). The daemon is killed at
// cleanup if the test did not Stop it.
func StartDaemon(t testing.TB, cfg string, o DaemonOptions) *Daemon {
	t.Helper()
	if o.Name == "" {
		o.Name = "fwd-test"
	}
	d := &Daemon{
		PidFile:     "/run/fwd/" + o.Name + ".pid",
		Socket:      "/run/fwd/" + o.Name + ".sock",
		RevisionDir: o.RevisionDir,
		Metrics:     o.Metrics,
	}
	if d.RevisionDir == "" {
		d.RevisionDir = filepath.Join(t.TempDir(), "revisions")
	}
	metrics := o.Metrics
	if metrics == "" {
		metrics = "off"
	}
	cmd := exec.Command(Binary(t), "run", "-c", cfg, "--log-format", "text", "--pid-file", d.PidFile,
		"--socket", d.Socket, "--revision-dir", d.RevisionDir, "--metrics-listen", metrics)
	cmd.Env = append(os.Environ(), o.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.Cmd, d.Log = cmd, WatchLog(stderr)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	d.Log.Wait(t, 0, "msg=listening", "listener=api")
	if o.Metrics != "" {
		d.Log.Wait(t, 0, "msg=listening", "listener=metrics")
	}
	return d
}

// Fwd runs the fwd binary against this daemon (adds --socket).
func (d *Daemon) Fwd(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return Fwd(t, append(args, "--socket", d.Socket)...)
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := d.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Stop sends SIGTERM and fails the test unless the daemon exits cleanly.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	d.Signal(t, syscall.SIGTERM)
	if err := d.Cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
}

// LogWatcher collects a process's log lines and waits for them.
type LogWatcher struct {
	mu    sync.Mutex
	lines []string
	cond  chan struct{}
}

// WatchLog reads r line by line until EOF.
func WatchLog(r io.Reader) *LogWatcher {
	w := &LogWatcher{cond: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
			select {
			case w.cond <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

// Lines returns the lines read so far.
func (w *LogWatcher) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// Wait returns the first line at or after index from that contains every
// one of subs, and the index after it (to wait for the next event). It
// fails the test after 20 s, printing the whole log.
func (w *LogWatcher) Wait(t testing.TB, from int, subs ...string) (string, int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		w.mu.Lock()
		for i := from; i < len(w.lines); i++ {
			ok := true
			for _, s := range subs {
				ok = ok && strings.Contains(w.lines[i], s)
			}
			if ok {
				w.mu.Unlock()
				return w.lines[i], i + 1
			}
		}
		all := strings.Join(w.lines, "\n")
		w.mu.Unlock()
		select {
		case <-w.cond:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("daemon never logged %q; log:\n%s", subs, all)
		}
	}
}

// Fixture returns the content of testdata/name of the package under test.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
