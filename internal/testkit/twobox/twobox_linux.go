package twobox

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/sandbox"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const envBox = "FWD_TWOBOX_BOX" // the box's name, in a box process

// Func is a function a box runs for the harness; its output goes back to
// the caller.
type Func func(args []string) (string, error)

var funcs = map[string]Func{
	// sh runs a shell command line inside the box (its default namespace).
	"sh": func(args []string) (string, error) {
		out, err := exec.Command("/bin/sh", "-c", strings.Join(args, " ")).CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return string(out), nil
	},
}

// Register makes fn callable in boxes under name. Call it from an init
// function or a package-level variable, so a box process has it before
// Main serves.
func Register(name string, fn Func) { funcs[name] = fn }

// Name is the box's name inside a box process, "" in the harness.
func Name() string { return os.Getenv(envBox) }

// Main is TestMain for packages with two-box tests. In a box process it
// serves the harness and exits when the harness hangs up; otherwise it is
// testkit.Main.
func Main(m *testing.M) {
	Serve()
	testkit.Main(m)
}

// Serve is the box side: in a box process it prepares the box, serves
// the harness and exits when the harness hangs up; in any other process
// it returns at once. Main calls it; a program that is not a test (the
// HA demo) calls it first thing in main, after its Register calls.
func Serve() {
	if Name() == "" {
		return
	}
	if err := setupBox(); err != nil {
		fmt.Fprintf(os.Stderr, "box %s: %v\n", Name(), err)
		os.Exit(1)
	}
	os.Exit(serve(os.NewFile(3, "twobox")))
}

func setupBox() error {
	if err := sandbox.Setup(); err != nil {
		return err
	}
	// The box is its PID namespace's init: a /proc of its own shows (and
	// pgrep finds) only its processes.
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return nil
}

type request struct {
	Fn   string   `json:"fn"`
	Args []string `json:"args"`
}

type response struct {
	Out string `json:"out"`
	Err string `json:"err,omitempty"`
}

func serve(f *os.File) int {
	dec := json.NewDecoder(bufio.NewReader(f))
	enc := json.NewEncoder(f)
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			return 0 // harness gone: the box ends, and everything in it
		}
		var resp response
		if fn, ok := funcs[req.Fn]; !ok {
			resp.Err = fmt.Sprintf("no function %q registered in the box", req.Fn)
		} else if out, err := fn(req.Args); err != nil {
			resp.Out, resp.Err = out, err.Error()
		} else {
			resp.Out = out
		}
		if err := enc.Encode(resp); err != nil {
			return 1
		}
	}
}

// --- harness side ---

// Box is a box as the harness sees it.
type Box struct {
	Name string
	t    testing.TB
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	conn   *os.File
	dec    *json.Decoder
	exited chan struct{}
	links  []link
	pidNS  uint64
}

type link struct{ boxIf, host, hostIf, bridge string }

var (
	allMu    sync.Mutex
	allPidNS = map[uint64]string{} // every box's PID namespace, for Leftovers
)

// Start starts a box; the test's cleanup kills it.
func Start(t testing.TB, name string) *Box {
	t.Helper()
	testkit.Require(t)
	b := &Box{Name: name, t: t, log: filepath.Join(t.TempDir(), "box-"+name+".log")}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Kill()
		if t.Failed() {
			if out, err := os.ReadFile(b.log); err == nil && len(out) > 0 {
				t.Logf("box %s output:\n%s", name, out)
			}
		}
	})
	return b
}

// New starts a box for a program that is not a test (the HA demo),
// which must run inside the sandbox; the box's output goes to logPath,
// and stopping it (Kill) is the caller's.
func New(name, logPath string) (*Box, error) {
	if !sandbox.Ready() {
		return nil, errors.New("twobox: refusing to start a box outside the sandbox")
	}
	b := &Box{Name: name, log: logPath}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Box) start() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "twobox-harness"), os.NewFile(uintptr(fds[1]), "twobox-box")
	defer theirs.Close()
	logf, err := os.OpenFile(b.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envBox+"="+b.Name)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		Pdeathsig:  syscall.SIGKILL,
	}
	// Pdeathsig fires when the thread that forked the box exits: fork
	// from a thread locked for the box's whole life.
	started, exited := make(chan error, 1), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // a box ends killed: its status says nothing
		close(exited)
	}()
	if err := <-started; err != nil {
		ours.Close()
		return fmt.Errorf("start box %s: %w", b.Name, err)
	}
	b.mu.Lock()
	b.cmd, b.conn, b.dec, b.exited = cmd, ours, json.NewDecoder(bufio.NewReader(ours)), exited
	b.mu.Unlock()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/pid", cmd.Process.Pid), &st); err == nil {
		b.pidNS = st.Ino
		allMu.Lock()
		allPidNS[st.Ino] = b.Name
		allMu.Unlock()
	}
	// The box is ready when it answers.
	if _, err := b.Call("sh", "true"); err != nil {
		return fmt.Errorf("box %s does not answer: %w", b.Name, err)
	}
	return nil
}

// Pid is the box's process in the harness's PID namespace.
func (b *Box) Pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd.Process.Pid
}

// Call runs a registered function in the box and returns its output.
// Calls to one box are serialised; calls to different boxes run in
// parallel.
func (b *Box) Call(fn string, args ...string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return "", fmt.Errorf("box %s is not running", b.Name)
	}
	if err := json.NewEncoder(b.conn).Encode(request{Fn: fn, Args: args}); err != nil {
		return "", fmt.Errorf("box %s: %w", b.Name, err)
	}
	var resp response
	if err := b.dec.Decode(&resp); err != nil {
		return "", fmt.Errorf("box %s: no answer to %s: %w", b.Name, fn, err)
	}
	if resp.Err != "" {
		return resp.Out, fmt.Errorf("box %s: %s: %s", b.Name, fn, resp.Err)
	}
	return resp.Out, nil
}

// MustCall is Call that fails the test on error.
func (b *Box) MustCall(t testing.TB, fn string, args ...string) string {
	t.Helper()
	out, err := b.Call(fn, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Kill is kill -9 of the whole box: SIGKILL to its init takes every
// process of its PID namespace down, and its network namespace (with the
// box ends of its links) goes with them. It returns when all are gone.
func (b *Box) Kill() {
	b.mu.Lock()
	cmd, conn, exited := b.cmd, b.conn, b.exited
	b.conn = nil
	b.mu.Unlock()
	if cmd == nil || conn == nil {
		return
	}
	_ = cmd.Process.Kill() // an already dead box is as good
	<-exited               // a PID namespace's init is reaped after all its processes
	conn.Close()
	// The network namespace is torn down asynchronously after its last
	// process: until then the box's veths still answer. Wait for their
	// host ends to go.
	b.mu.Lock()
	links := b.links
	b.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for _, l := range links {
		for linkExists(l.host, l.hostIf) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func linkExists(host, name string) bool {
	h, err := ns.Open(host)
	if err != nil {
		return false
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return false
	}
	defer nh.Close()
	_, err = nh.LinkByName(name)
	return err == nil
}

// Restart kills the box if it runs, starts a new one of the same name and
// re-creates its links.
func (b *Box) Restart() error {
	b.Kill()
	if err := b.start(); err != nil {
		return err
	}
	b.mu.Lock()
	links := b.links
	b.links = nil
	b.mu.Unlock()
	for _, l := range links {
		if err := b.addLink(l); err != nil {
			return err
		}
	}
	return nil
}

// Link connects the box to a shared namespace: a veth whose end boxIf is
// in the box's default network namespace (where the box finds its NICs)
// and whose end hostIf is in namespace host, enslaved to bridge when it is
// not "". Both ends are up. Restart re-creates it.
func (b *Box) Link(t testing.TB, boxIf, host, hostIf, bridge string) {
	t.Helper()
	if err := b.addLink(link{boxIf, host, hostIf, bridge}); err != nil {
		t.Fatal(err)
	}
}

// AddLink is Link returning its error, for a program that is not a test.
func (b *Box) AddLink(boxIf, host, hostIf, bridge string) error {
	return b.addLink(link{boxIf, host, hostIf, bridge})
}

func (b *Box) addLink(l link) error {
	if !sandbox.Ready() {
		return errors.New("twobox: refusing to create links outside the sandbox")
	}
	h, err := ns.Open(l.host)
	if err != nil {
		return err
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	// A hostIf left from a killed box is gone with its peer; an old one
	// of a live box would be a test bug.
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l.hostIf}, PeerName: l.boxIf, PeerNamespace: netlink.NsPid(b.Pid())}
	if err := nh.LinkAdd(v); err != nil {
		return fmt.Errorf("link %s/%s - box %s/%s: %w", l.host, l.hostIf, b.Name, l.boxIf, err)
	}
	hl, err := nh.LinkByName(l.hostIf)
	if err != nil {
		return err
	}
	if l.bridge != "" {
		br, err := nh.LinkByName(l.bridge)
		if err != nil {
			return fmt.Errorf("bridge %s in %s: %w", l.bridge, l.host, err)
		}
		if err := nh.LinkSetMaster(hl, br); err != nil {
			return err
		}
	}
	if err := nh.LinkSetUp(hl); err != nil {
		return err
	}
	if _, err := b.Call("sh", "ip link set", l.boxIf, "up"); err != nil {
		return err
	}
	b.mu.Lock()
	b.links = append(b.links, l)
	b.mu.Unlock()
	return nil
}

// Bridge creates a bridge in host namespace nsName, up, with addresses.
// Its MAC address is fixed: a bridge left to itself takes the lowest MAC
// of its ports and changes it when that port goes (a box killed), which
// flushes the host's neighbour table and leaves the boxes sending to a
// MAC nobody has: a switch never does that to the hosts behind it.
func Bridge(t testing.TB, nsName, name string, addrs ...string) {
	t.Helper()
	if err := AddBridge(nsName, name, addrs...); err != nil {
		t.Fatal(err)
	}
}

// AddBridge is Bridge returning its error, for a program that is not a
// test.
func AddBridge(nsName, name string, addrs ...string) error {
	h, err := ns.Open(nsName)
	if err != nil {
		return err
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	sum := sha256.Sum256([]byte(nsName + "/" + name))
	mac := net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]} // locally administered
	if err := nh.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}}); err != nil {
		return fmt.Errorf("bridge %s in %s: %w", name, nsName, err)
	}
	br, err := nh.LinkByName(name)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		ad, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		ad.Flags = unix.IFA_F_NODAD
		if err := nh.AddrAdd(br, ad); err != nil {
			return fmt.Errorf("address %s on %s/%s: %w", a, nsName, name, err)
		}
	}
	return nh.LinkSetUp(br)
}

// Leftovers lists the processes named one of names (their comm) still
// running in any box this harness started, dead boxes included: the
// check every two-box test ends with.
func Leftovers(names ...string) []string {
	allMu.Lock()
	defer allMu.Unlock()
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/pid", pid), &st) != nil {
			continue
		}
		box, ours := allPidNS[st.Ino]
		if !ours {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		c := strings.TrimSpace(string(comm))
		for _, n := range names {
			if c == n {
				out = append(out, fmt.Sprintf("%s (pid %d) in box %s", c, pid, box))
			}
		}
	}
	return out
}
