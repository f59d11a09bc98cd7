package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fwdproject/fwd/supervise"
)

// The daemon's pid file: `fwd reload` (and scripts) find the daemon
// there when its API does not answer. A PID alone can be reused by any
// process, so the file records the PID with the process's start time
// (supervise's pid-file format), and a process counts as the daemon only
// if both match and it runs the fwd program: fwd never signals, nor
// refuses to start because of, a process that is not fwd.

// ErrNoDaemon says the pid file names no running fwd daemon.
var ErrNoDaemon = errors.New("no running fwd daemon")

func writePid(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if pid, err := DaemonPID(path); err == nil && pid != os.Getpid() {
		return fmt.Errorf("another fwd daemon runs as pid %d (%s)", pid, path)
	}
	return supervise.WritePidFile(path)
}

// DaemonPID returns the PID of the fwd daemon recorded in path, or an
// error wrapping ErrNoDaemon when the file is missing, in an old
// format, or names a process that is gone, was started later (a reused
// PID) or is another program.
func DaemonPID(path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoDaemon, err)
	}
	pid, ok := supervise.Identity(path)
	if !ok {
		return 0, fmt.Errorf("%w: %s names no live process that wrote it", ErrNoDaemon, path)
	}
	if !sameProgram(pid) {
		return 0, fmt.Errorf("%w: pid %d in %s is not fwd", ErrNoDaemon, pid, path)
	}
	return pid, nil
}

// sameProgram reports whether pid runs the same program as this process
// (its command name: the binary's base name, kept across upgrades that
// replace the file).
func sameProgram(pid int) bool {
	theirs, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	ours, err2 := os.ReadFile("/proc/self/comm")
	return err1 == nil && err2 == nil && bytes.Equal(bytes.TrimSpace(theirs), bytes.TrimSpace(ours))
}
