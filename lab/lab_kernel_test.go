//go:build kernel

package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
)

// tagged lists the processes whose environment holds tag, with their
// command lines.
func tagged(tag string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(tag)) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
	}
	return out
}

// `fwd lab` stopped with Ctrl-C leaves no process behind: not the
// daemon, not a BGP speaker (which by design outlives a daemon), not
// dnsmasq.
func TestFaultLabCtrlCLeavesNoProcess(t *testing.T) {
	labStopLeavesNoProcess(t, "Ctrl-C", func(pid int) error { return syscall.Kill(-pid, syscall.SIGINT) })
}

// So does a SIGTERM to the lab's process alone (a timeout, a service
// manager): the process outside the sandbox passes it on. Before, the
// child died with it (Pdeathsig) and dnsmasq was left running.
func TestFaultLabSIGTERMLeavesNoProcess(t *testing.T) {
	labStopLeavesNoProcess(t, "SIGTERM", func(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) })
}

func labStopLeavesNoProcess(t *testing.T, how string, stop func(pid int) error) {
	testkit.Require(t)
	tag := fmt.Sprintf("FWD_LAB_TEST=%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := exec.Command(testkit.Binary(t), "lab")
	cmd.Env = append(os.Environ(), tag)
	// Its own process group, like a shell job: Ctrl-C signals the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		for _, p := range tagged(tag) {
			if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	log := testkit.WatchLog(stdout)
	log.Wait(t, 0, "lab running; Ctrl-C stops it")
	if procs := tagged(tag); !strings.Contains(strings.Join(procs, "\n"), "bgp-speaker") {
		t.Logf("no BGP speaker running in the lab (processes: %q)", procs)
	}
	if err := stop(pgid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("lab exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("lab did not stop within 30 s of %s", how)
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(tagged(tag)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := tagged(tag); len(left) > 0 {
		t.Fatalf("the lab stopped by %s left processes running:\n%s", how, strings.Join(left, "\n"))
	}
}
