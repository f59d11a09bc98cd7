//go:build kernel

package supervise

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func netnsOf(t *testing.T, pid int) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The program runs inside the tenant namespace, is restarted after a
// kill -9, is adopted (not restarted) by a new supervisor after Release,
// and Stop ends it and its pid file.
func TestRunRestartAdoptStop(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "supt")
	MinBackoff = 50 * time.Millisecond
	spec := Spec{Name: "sleeper", Tenant: "supt", Dir: t.TempDir(), Argv: []string{"sleep", "1000"}}
	p, err := Run(spec, quiet())
	if err != nil {
		t.Fatal(err)
	}
	st := p.Status()
	h, _ := ns.Open("supt")
	defer h.Close()
	want := netnsOf(t, st.PID)
	if self := netnsOf(t, os.Getpid()); want == self {
		t.Fatal("program runs in the caller's namespace, not the tenant's")
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart", func() bool { s := p.Status(); return s.Running && s.PID != st.PID })
	if s := p.Status(); s.Restarts != 1 {
		t.Fatalf("restarts %d", s.Restarts)
	}
	second := p.Status().PID
	p.Release()
	if !alive2(second) {
		t.Fatal("Release stopped the program")
	}
	q, err := Run(spec, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if q.Status().PID != second {
		t.Fatalf("not adopted: pid %d, want %d", q.Status().PID, second)
	}
	// The adopted process is still supervised: kill it, it comes back.
	if err := syscall.Kill(second, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart of adopted", func() bool { s := q.Status(); return s.Running && s.PID != second })
	last := q.Status().PID
	if err := q.Stop(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stop", func() bool { return !alive2(last) })
	if _, err := os.Stat(spec.pidFile()); !os.IsNotExist(err) {
		t.Fatalf("pid file left: %v", err)
	}
}

// A pid file naming a live process that is not the recorded one (a reused
// PID: same number, other start time) is never adopted or signalled.
func TestReusedPidIsNotAdopted(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "supr")
	spec := Spec{Name: "sleeper", Tenant: "supr", Dir: t.TempDir(), Argv: []string{"sleep", "1000"}}
	// Our own PID with a wrong start time stands for a reused PID.
	if err := os.WriteFile(spec.pidFile(), []byte(fmt.Sprintf("%d 1\n", os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Run(spec, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(time.Second); err != nil {
			t.Error(err)
		}
	})
	if pid := p.Status().PID; pid == os.Getpid() {
		t.Fatal("adopted an unrelated process")
	}
	b, _ := os.ReadFile(spec.pidFile())
	if strings.HasPrefix(string(b), fmt.Sprint(os.Getpid())+" ") {
		t.Fatalf("pid file still names the unrelated process: %s", b)
	}
	if pid, ok := Identity(spec.pidFile()); !ok || pid != p.Status().PID {
		t.Fatalf("Identity: %d %v", pid, ok)
	}
}

func alive2(pid int) bool { return syscall.Kill(pid, 0) == nil }

// StopPidFile stops the process its file names, and never one whose
// identity does not match (a reused PID).
func TestStopPidFile(t *testing.T) {
	testkit.Require(t)
	dir := t.TempDir()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	start, err := startTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	path := PidFile(dir, "sleeper")
	if err := writePidFile(path, cmd.Process.Pid, start); err != nil {
		t.Fatal(err)
	}
	pid, err := StopPidFile(path, 2*time.Second)
	if err != nil || pid != cmd.Process.Pid {
		t.Fatalf("StopPidFile: %d %v", pid, err)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("process not stopped")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("pid file left: %v", err)
	}
	// Our own PID with a wrong start time stands for a reused PID.
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d 1\n", os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	if pid, err := StopPidFile(path, time.Second); pid != 0 || err != nil {
		t.Fatalf("stopped an unrelated process: %d %v", pid, err)
	}
}
