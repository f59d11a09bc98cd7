// Package sandbox runs a process inside a private network and mount
// namespace, so tests, benchmarks and the lab can create namespaces, veths,
// routes and nftables tables that vanish with the process and never touch
// the host's own network namespace.
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const (
	envMarker = "FWD_SANDBOX_PARENT_NETNS" // set by Reexec: the parent's netns inode
	envReady  = "FWD_SANDBOX_READY"        // set by Setup: the sandbox's own netns inode
)

// ErrUnavailable means the sandbox cannot be created here (not root, or
// namespaces are not permitted).
var ErrUnavailable = errors.New("sandbox unavailable")

func netnsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// Inside reports whether this process runs in a sandbox made by Reexec: the
// marker is set and our network namespace differs from the parent's.
func Inside() bool {
	v := os.Getenv(envMarker)
	if v == "" {
		return false
	}
	parent, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return false
	}
	self, err := netnsInode("/proc/self/ns/net")
	return err == nil && self != parent
}

// Ready reports whether this process runs in the very network namespace
// that Setup prepared (its own or an ancestor's, inherited with the
// environment). It is the guard for code that creates namespaces and
// links: stricter than Inside, it also refuses a process that inherited
// the sandbox's environment but was moved to another namespace (e.g.
// nsenter into the host's from a lab shell).
func Ready() bool {
	if !Inside() {
		return false
	}
	want, err := strconv.ParseUint(os.Getenv(envReady), 10, 64)
	if err != nil {
		return false
	}
	self, err := netnsInode("/proc/self/ns/net")
	return err == nil && self == want
}

// Reexec runs this executable again with the same arguments in a new
// network and mount namespace and returns its exit code. Stdio is shared.
func Reexec() (int, error) {
	ino, err := netnsInode("/proc/self/ns/net")
	if err != nil {
		return 1, err
	}
	exe, err := os.Executable()
	if err != nil {
		return 1, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, envMarker+"=") && !strings.HasPrefix(e, envReady+"=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, envMarker+"="+strconv.FormatUint(ino, 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	// SIGTERM and SIGHUP sent to this process (a service manager, a
	// timeout) are passed on: the child then stops what it started
	// before it exits. Without this the child died of Pdeathsig with
	// this process, and left its helpers (dnsmasq) running.
	fwd := make(chan os.Signal, 2)
	signal.Notify(fwd, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(fwd)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	waited := make(chan struct{})
	defer close(waited)
	go func() {
		for {
			select {
			case sig := <-fwd:
				_ = cmd.Process.Signal(sig)
			case <-waited:
				return
			}
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// Setup prepares the sandbox from inside it: private mount propagation, a
// tmpfs on /run (so /run/netns and /run/fwd are ours), a fresh sysfs, and
// loopback up. It refuses to run outside a sandbox.
func Setup() error {
	if !Inside() {
		return errors.New("sandbox: refusing to set up outside a private network namespace")
	}
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("sandbox: make / private: %w", err)
	}
	if err := unix.Mount("fwd-sandbox", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("sandbox: tmpfs on /run: %w", err)
	}
	for _, d := range []string{"/run/netns", "/run/fwd", "/run/lock"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// sysfs shows the namespace of whoever mounted it: remount ours.
	if err := unix.Mount("sysfs", "/sys", "sysfs", 0, ""); err != nil {
		return fmt.Errorf("sandbox: sysfs: %w", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("sandbox: lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return err
	}
	self, err := netnsInode("/proc/self/ns/net")
	if err != nil {
		return err
	}
	return os.Setenv(envReady, strconv.FormatUint(self, 10))
}

// Enter makes sure the caller runs in a fresh sandbox of its own: it
// re-executes the program in a new sandbox and exits with the child's code,
// so it returns only inside, after Setup. A process started inside another
// sandbox (the lab run by a test) gets a nested one. Used by TestMain,
// benchmarks and `fwd lab`.
func Enter() error {
	if !Inside() || os.Getenv(envReady) != "" {
		code, err := Reexec()
		if err != nil {
			return err
		}
		os.Exit(code)
	}
	return Setup()
}
