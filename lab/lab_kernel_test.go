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
// daemon, not a BGP speaker (which by design outlives a daemon).
func TestFaultLabCtrlCLeavesNoProcess(t *testing.T) {
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
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
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
		t.Fatal("lab did not stop within 30 s of Ctrl-C")
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(tagged(tag)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := tagged(tag); len(left) > 0 {
		t.Fatalf("the lab left processes running:\n%s", strings.Join(left, "\n"))
	}
}
