//go:build kernel

package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/zones"
)

// running is a daemon started in-process by Run, as `fwd run` does.
type running struct {
	log  *testkit.LogWatcher
	errc chan error
}

// startRun runs the daemon on cfg until the test ends, then tears the
// tenants down.
func startRun(t *testing.T, name, cfg string) *running {
	t.Helper()
	testkit.Require(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "fwd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	r := &running{log: testkit.WatchLog(pr), errc: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		r.errc <- Run(ctx, Options{ConfigPath: path, Socket: "/run/fwd/" + name + ".sock", RevisionDir: filepath.Join(dir, "revs"),
			MetricsListen: "off", Log: slog.New(slog.NewTextHandler(pw, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-r.errc; err != nil {
			t.Errorf("run: %v", err)
		}
		pw.Close()
		e, err := engine.New(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if _, err := e.Apply(context.Background(), &config.Config{}, false); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	r.log.Wait(t, 0, "msg=applied", "reason=start")
	return r
}

// alive fails the test if Run has returned.
func (r *running) alive(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.errc:
		r.errc <- err
		t.Fatalf("the daemon stopped: %v", err)
	default:
	}
}

// A netlink overflow (ENOBUFS) used to end the daemon ("link watch
// closed"). With a tiny receive buffer and the reader held while a burst
// of link events arrives, the socket overflows; the daemon re-scans,
// keeps running and still moves in a late NIC.
func TestFaultLinkWatchOverflow(t *testing.T) {
	watchBufferOverride.Store(1) // the kernel's minimum
	var held atomic.Bool
	gate := make(chan struct{})
	watchOnEvent = func(zones.LinkEvent) {
		if held.Load() {
			<-gate
		}
	}
	t.Cleanup(func() { watchBufferOverride.Store(0); watchOnEvent = nil })

	r := startRun(t, "ovf", `
[tenant.ovf.interface.wan]
device = "eth21"
addresses = ["198.51.100.1/24"]
`)
	held.Store(true)
	var batch strings.Builder
	for i := range 120 {
		fmt.Fprintf(&batch, "link add burst%d type veth peer name burst%dp\n", i, i)
	}
	bf := filepath.Join(t.TempDir(), "burst")
	if err := os.WriteFile(bf, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	testnet.MustCmd(t, "", "ip", "-batch", bf)
	t.Cleanup(func() {
		for i := range 120 {
			testnet.DelLinkEverywhere(fmt.Sprintf("burst%d", i))
		}
	})
	time.Sleep(100 * time.Millisecond)
	watchBufferOverride.Store(0) // the subscription made after the overflow has the normal size
	close(gate)
	_, n := r.log.Wait(t, 0, "link watch lost events")
	r.alive(t)

	testnet.Host(t, "h-ovf")
	testnet.NIC(t, "eth21", "h-ovf", "p0", netip.Addr{}, "198.51.100.10/24")
	r.log.Wait(t, n, "msg=applied", `reason="link appeared"`)
	r.log.Wait(t, n, `msg="link event"`, "link=eth21", "tenant=ovf", "interface=wan")
	if !testnet.WaitPing("h-ovf", "198.51.100.1", 5*time.Second) {
		t.Fatal("late NIC not moved in after the overflow")
	}
	r.alive(t)
}

// A declared NIC that goes away (here: deleted inside its tenant, as a
// driver unload or a hot unplug does) and comes back in the default
// namespace is moved back in within about a second, and its far end
// works again. Both events are logged.
func TestFaultNICGoneAndBack(t *testing.T) {
	testnet.Host(t, "h-back")
	testnet.NIC(t, "eth22", "h-back", "p0", netip.Addr{}, "198.51.100.10/24")
	r := startRun(t, "back", `
[tenant.back.interface.wan]
device = "eth22"
addresses = ["198.51.100.1/24"]
`)
	if !testnet.WaitPing("h-back", "198.51.100.1", 5*time.Second) {
		t.Fatal("tenant not reachable at start")
	}
	testnet.MustCmd(t, "back", "ip", "link", "del", "wan")
	_, n := r.log.Wait(t, 0, `msg="link event"`, "link=wan", "namespace=back", "event=gone", "tenant=back")
	_, n = r.log.Wait(t, n, "msg=applied", `reason="link gone"`, "waiting_for")

	testnet.NIC(t, "eth22", "h-back", "p0", netip.Addr{}, "198.51.100.10/24")
	start := time.Now()
	for {
		if _, ok := testnet.Addrs(t, "back")["wan"]; ok {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("NIC that came back not moved in within 3 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("moved back in %v", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("moved back after %v, want about 1 s at most", d)
	}
	r.log.Wait(t, n, `msg="link event"`, "link=eth22", "namespace=default", "event=appeared", "tenant=back")
	if !testnet.WaitPing("h-back", "198.51.100.1", 5*time.Second) {
		t.Fatal("far end of the NIC that came back cannot reach the tenant")
	}
	r.alive(t)
}
