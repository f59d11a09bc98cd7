//go:build kernel

package ha

// What a box does for the scale-out test: it runs the real fwd daemon
// (`fwd run -c cfg`), as an operator would, inside the box's own network,
// mount and PID namespaces. The harness builds the binary and writes the
// config; the box starts and stops the daemon and runs fwd's CLI.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/internal/testkit/twobox"
)

var (
	soDaemon     *exec.Cmd     // the box's `fwd run`, while it runs
	soDaemonDone chan struct{} // closed when it has exited
)

func init() {
	// so-fwd-start BIN CFG REVDIR LOG: start `fwd run` and return once it
	// has applied the config at start (its log says so).
	twobox.Register("so-fwd-start", func(args []string) (string, error) {
		if len(args) != 4 {
			return "", errors.New("usage: so-fwd-start BIN CFG REVDIR LOG")
		}
		bin, cfg, revDir, logPath := args[0], args[1], args[2], args[3]
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return "", err
		}
		defer logf.Close()
		cmd := exec.Command(bin, "run", "-c", cfg, "--log-format", "text", "--pid-file", "/run/fwd/fwd.pid",
			"--socket", "/run/fwd/fwd.sock", "--revision-dir", revDir, "--metrics-listen", "off")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return "", err
		}
		soDaemon = cmd
		exited, done := make(chan error, 1), make(chan struct{})
		soDaemonDone = done
		go func() { exited <- cmd.Wait(); close(done) }()
		deadline := time.After(30 * time.Second)
		for {
			b, _ := os.ReadFile(logPath)
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "msg=applied") && strings.Contains(l, "reason=start") {
					return l, nil
				}
			}
			select {
			case err := <-exited:
				soDaemon = nil
				return string(b), fmt.Errorf("fwd run exited: %v", err)
			case <-deadline:
				return string(b), errors.New("fwd run did not apply its config within 30 s")
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	// so-fwd-stop: SIGTERM to the daemon, as systemctl stop would. The
	// data plane and the BGP speaker stay (fwd restarts adopt them); the
	// box's death takes them.
	twobox.Register("so-fwd-stop", func([]string) (string, error) {
		if soDaemon == nil {
			return "", nil
		}
		err := soDaemon.Process.Signal(syscall.SIGTERM)
		soDaemon = nil
		if errors.Is(err, os.ErrProcessDone) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		select {
		case <-soDaemonDone:
			return "", nil
		case <-time.After(15 * time.Second):
			return "", errors.New("fwd run still running 15 s after SIGTERM")
		}
	})
}
