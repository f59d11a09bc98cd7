package bgp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/supervise"
	api "github.com/osrg/gobgp/v3/api"
)

// Process control of one speaker: start it inside the tenant's namespace,
// kill it (routes stay), stop it for good (routes go).

func (sp *speaker) running() bool {
	if sp.pid == 0 || sp.exited == nil {
		return false
	}
	select {
	case <-sp.exited:
		return false
	default:
		return true
	}
}

// speakerArgs is the command line of a new speaker.
func (sp *speaker) speakerArgs(table uint32) ([]string, error) {
	argv := sp.sup.SpeakerArgv
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		argv = []string{exe, SpeakerCommand}
	}
	args := append(append([]string(nil), argv...), "-tenant", sp.tenant, "-socket", sp.sock,
		"-table", strconv.Itoa(int(table)), "-stale-timeout", sp.sup.StaleTimeout.String())
	args = append(args, speakerLogFlags(sp.sup.log, sp.sup.LogFormat)...)
	if sp.sup.WatchParent {
		args = append(args, "-watch-pid", strconv.Itoa(os.Getpid()))
	}
	return args, nil
}

// start runs a new speaker process for sp.desired inside the tenant's
// namespace and waits for its API. sp.mu is held.
func (sp *speaker) start(ctx context.Context) error {
	b := sp.desired
	if err := os.MkdirAll(sp.dir, 0o700); err != nil {
		return err
	}
	args, err := sp.speakerArgs(b.TableID)
	if err != nil {
		return err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), sp.sup.SpeakerEnv...)
	// Its own session: a Ctrl-C or SIGTERM aimed at the daemon's process
	// group must not take the speakers (and the routes' freshness) along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logf, err := os.OpenFile(filepath.Join(sp.dir, "speaker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	os.Remove(filepath.Join(sp.dir, pidFileName))
	h, err := ns.Open(sp.tenant)
	if err != nil {
		return err
	}
	// A child forked from a thread inside the namespace is born in it.
	err = ns.Do(h, cmd.Start)
	h.Close()
	if err != nil {
		return fmt.Errorf("start speaker: %w", err)
	}
	exited := make(chan struct{})
	pid, log := cmd.Process.Pid, sp.log
	go func() {
		// The monitor reports the exit; its status is detail.
		if err := cmd.Wait(); err != nil {
			log.Debug("speaker exit status", "pid", pid, "error", err)
		}
		close(exited)
	}()
	sp.pid, sp.exited, sp.table, sp.app, sp.started = cmd.Process.Pid, exited, b.TableID, nil, time.Now()
	sp.gen++
	sp.publish()
	sp.log.Info("speaker started", "pid", sp.pid, "socket", sp.sock)

	c, err := Dial(sp.sock)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = c.api.GetBgp(cctx, &api.GetBgpRequest{})
		cancel()
		if err == nil || strings.Contains(err.Error(), "not started") {
			break
		}
		select {
		case <-exited:
			c.Close()
			return fmt.Errorf("speaker exited at start (see %s)", filepath.Join(sp.dir, "speaker.log"))
		default:
		}
		if time.Now().After(deadline) {
			c.Close()
			return fmt.Errorf("speaker API at %s did not come up: %w", sp.sock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sp.client != nil {
		sp.client.Close()
	}
	sp.client = c
	return nil
}

// kill stops the current process (routes stay in the kernel). sp.mu is held.
func (sp *speaker) kill(ctx context.Context) error {
	if !sp.running() {
		return nil
	}
	if err := supervise.Kill(sp.pid, syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-sp.exited:
	case <-time.After(10 * time.Second):
		if err := supervise.Kill(sp.pid, syscall.SIGKILL); err != nil {
			return err
		}
		<-sp.exited
	}
	sp.app = nil
	sp.gen++
	if sp.client != nil {
		sp.client.Close()
		sp.client = nil
	}
	sp.publish()
	return nil
}

// flushRoutes deletes the speaker's routes from a table of the tenant.
func (sp *speaker) flushRoutes(table uint32) error {
	h, err := ns.Open(sp.tenant)
	if err != nil {
		if errors.Is(err, ns.ErrNotFound) {
			return nil
		}
		return err
	}
	defer h.Close()
	return flushTable(h, table, Protocol)
}

// endSupervision tells the monitor to return. sp.mu is held.
func (sp *speaker) endSupervision() {
	if !sp.stopping {
		sp.stopping = true
		close(sp.stopCh)
	}
}

// stop ends supervision and the process; with flush its routes go too.
func (sp *speaker) stop(ctx context.Context, flush bool) error {
	sp.mu.Lock()
	sp.endSupervision()
	table := sp.table
	err := sp.kill(ctx)
	sp.mu.Unlock()
	<-sp.done
	if flush {
		if ferr := sp.flushRoutes(table); ferr != nil {
			err = errors.Join(err, ferr)
		}
		removeSpeakerFiles(sp.dir)
	}
	return err
}

// removeSpeakerFiles removes what a speaker keeps in its tenant's run
// directory, and the directory if nothing else lives there: the same
// directory holds the tenant's HA and dnsmasq files, which outlive a
// removed [bgp] table.
func removeSpeakerFiles(dir string) {
	for _, name := range []string{pidFileName, appliedFileName, appliedFileName + ".tmp", "speaker.log",
		filepath.Base(SocketPath("", "")), filepath.Base(FIBStatusPath(dir)), filepath.Base(FIBStatusPath(dir)) + ".tmp"} {
		_ = os.Remove(filepath.Join(dir, name)) // absent: nothing to do
	}
	_ = os.Remove(dir) // fails while other files remain, on purpose
}
