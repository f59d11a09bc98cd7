package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The daemon's pid file: `fwd reload` (and scripts) find the daemon there.

func writePid(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if pid, err := ReadPid(path); err == nil && syscall.Kill(pid, 0) == nil && pid != os.Getpid() {
		return fmt.Errorf("another fwd daemon runs as pid %d (%s)", pid, path)
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// ReadPid reads the daemon's pid file.
func ReadPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
