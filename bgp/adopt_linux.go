package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fwdproject/fwd/supervise"
	api "github.com/osrg/gobgp/v3/api"
)

// Speakers outlive the daemon. A new daemon finds them through their pid
// files (RUNDIR/TENANT/speaker.pid, checked against /proc) and learns what
// they were configured with from RUNDIR/TENANT/applied.json.

// adoptOnce adopts the running speakers the first time it is called
// after NewSupervisor or Close. s.mu is held.
func (s *Supervisor) adoptOnce() {
	if s.scanned {
		return
	}
	s.adoptRunning()
	s.scanned = true
}

// adoptRunning takes over speakers a previous daemon left running: each
// is connected to and supervised. s.mu is held.
func (s *Supervisor) adoptRunning() {
	ents, err := os.ReadDir(s.runDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || s.speakers[e.Name()] != nil {
			continue
		}
		sp := s.newSpeaker(e.Name())
		pid := speakerPID(sp.dir)
		if pid == 0 {
			continue
		}
		exited, err := supervise.WaitPID(pid)
		if err != nil {
			continue
		}
		c, err := Dial(sp.sock)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = c.api.GetBgp(cctx, &api.GetBgpRequest{})
		cancel()
		if err != nil {
			c.Close()
			continue
		}
		sp.pid, sp.exited, sp.client, sp.started = pid, exited, c, time.Now()
		sp.app, sp.table = recordedConfig(sp.dir, pid)
		if sp.app.Global == unknownGlobal {
			// Unknown configuration: restart it cleanly (routes stay).
			sp.log.Warn("running speaker has no record of its configuration; restarting it", "pid", pid)
		}
		sp.log.Info("adopted running speaker", "pid", pid)
		s.supervise(sp)
	}
}

// peekRunning describes the running speakers under runDir from their pid
// and applied files, without connecting to or supervising them: what a
// plan made in a process that never adopted them (`fwd plan` without the
// daemon) compares with.
func (s *Supervisor) peekRunning() map[string]*speaker {
	out := map[string]*speaker{}
	ents, err := os.ReadDir(s.runDir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sp := s.newSpeaker(e.Name())
		pid := speakerPID(sp.dir)
		if pid == 0 {
			continue
		}
		sp.pid, sp.exited = pid, make(chan struct{}) // open: running
		sp.app, sp.table = recordedConfig(sp.dir, pid)
		out[sp.tenant] = sp
	}
	return out
}

// recordedConfig is the configuration recorded for the speaker pid in
// dir, or a record that forces a restart when there is none for it.
func recordedConfig(dir string, pid int) (*applied, uint32) {
	if a := readApplied(dir); a != nil && a.PID == pid {
		return a, a.Table
	}
	return &applied{PID: pid, Global: unknownGlobal}, 0
}

// speakerPID returns the PID in dir's pid file if that process is alive
// and is a speaker.
func speakerPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, pidFileName))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "-socket") {
		return 0
	}
	return pid
}

const appliedFileName = "applied.json"

func readApplied(dir string) *applied {
	b, err := os.ReadFile(filepath.Join(dir, appliedFileName))
	if err != nil {
		return nil
	}
	var a applied
	if json.Unmarshal(b, &a) != nil {
		return nil
	}
	return &a
}

// saveApplied records sp.app for the next daemon. sp.mu is held.
func (sp *speaker) saveApplied() {
	if sp.app == nil {
		return
	}
	b, err := json.MarshalIndent(sp.app, "", "  ")
	if err != nil {
		return
	}
	tmp := filepath.Join(sp.dir, appliedFileName+".tmp")
	err = os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(sp.dir, appliedFileName))
	}
	if err != nil {
		sp.log.Warn("record speaker configuration", "error", err)
	}
}
