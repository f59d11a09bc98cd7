//go:build kernel

package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testkit/servicekit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/services/dnsmasq"
)

// The WAN NIC of a DHCP client goes away and comes back as a new
// interface (a driver reload, a hot swap): the client's socket was bound
// to the old one, so the apply that moves the new NIC in makes the client
// open a new socket and renew; the lease's address and default route are
// back on the new interface and masqueraded traffic flows, without a
// reload.
func TestServicesWANNICReplaced(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "cloud")
	testnet.Host(t, "lanhost")
	testnet.NIC(t, "eth1", "cloud", "cloud0", netip.Addr{}, "198.51.100.1/24")
	testnet.NIC(t, "eth2", "lanhost", "eth0", netip.Addr{})
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y", "--force") })

	cloudDir := servicekit.RunDir(t)
	cloud := dnsmasq.NewSupervisor(slog.New(slog.DiscardHandler), cloudDir)
	t.Cleanup(cloud.StopAll)
	servicekit.Serve(t, cloud, "cloud", cloudServer("198.51.100.10", "198.51.100.20"))
	srv, err := testnet.ServeTCP("cloud", "198.51.100.1:8080", "hello")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, strings.Replace(servicesConfig, "dhcp6 = true\n", "", 1))
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "svc-nic"})
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range d.Log.Lines() {
				t.Log(l)
			}
		}
	})
	line, n := d.Log.Wait(t, 0, `msg="dhcp lease"`, "tenant=edge", "interface=wan")
	d.Log.Wait(t, n, "msg=applied", `reason="dhcp lease changed"`)
	lan := servicekit.Lease(t, "lanhost", nil)
	masqueraded(t, strings.TrimSuffix(logAttr(line, "address"), "/24"), lan.Address.Addr())
	oldIndex := testnet.MustCmd(t, "edge", "cat", "/sys/class/net/wan/ifindex")

	// The NIC goes (deleting one end of the pair takes the cloud's end
	// too), then a new one appears in the default namespace; the cloud's
	// server is restarted on its new end (its lease file kept).
	testnet.MustCmd(t, "edge", "ip", "link", "del", "wan")
	_, n = d.Log.Wait(t, n, `msg="dhcp client renews on a new socket"`, "tenant=edge", "interface=wan")
	cloud.StopAll()
	testnet.NIC(t, "eth1", "cloud", "cloud0", netip.Addr{}, "198.51.100.1/24")
	servicekit.Serve(t, cloud, "cloud", cloudServer("198.51.100.10", "198.51.100.20"))

	// The apply that moves the new NIC in kicks the client: a new socket,
	// a renewal of the same lease, its address and route put back.
	d.Log.Wait(t, n, `msg="dhcp socket reopened"`, "tenant=edge", "interface=wan")
	addr := logAttr(line, "address")
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := testnet.Addrs(t, "edge")["wan"].GlobalAddrs()
		r := testnet.MustCmd(t, "", "ip", "-n", "edge", "route", "show", "default", "proto", "243")
		if len(got) == 1 && got[0] == addr && strings.Contains(r, "via 198.51.100.1 dev wan") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new wan has %v and default route %q, want the lease %s via 198.51.100.1", got, r, addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if idx := testnet.MustCmd(t, "edge", "cat", "/sys/class/net/wan/ifindex"); idx == oldIndex {
		t.Fatalf("wan has the same ifindex %s: not a new interface", idx)
	}
	for {
		reply, err := testnet.DialTCP("lanhost", "198.51.100.1:8080", 2*time.Second)
		if err == nil && strings.HasPrefix(reply, "hello "+strings.TrimSuffix(addr, "/24")+":") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LAN traffic after the NIC came back: %q (%v), want the source %s", reply, err, addr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// dhcp = true becomes the leased address, configured: the address
	// stays (now permanent) and is not given back to the server.
	static := strings.NewReplacer("dhcp6 = true\n", "", `forwarders_from = ["wan"]`+"\n", "",
		"dhcp = true\n", `addresses = ["`+addr+`"]`+"\n").Replace(servicesConfig)
	writeFile(t, cfg, static)
	d.Signal(t, syscall.SIGHUP)
	d.Log.Wait(t, n, `msg="dhcp client stopped; its address is configured now, not released"`, "address="+addr)
	d.Log.Wait(t, n, "msg=applied", "reason=reload")
	var wanAddrs []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
			ValidLife uint64 `json:"valid_life_time"`
		} `json:"addr_info"`
	}
	testnet.JSON(t, &wanAddrs, "", "ip", "-j", "-4", "-n", "edge", "addr", "show", "dev", "wan")
	if len(wanAddrs) != 1 || len(wanAddrs[0].AddrInfo) != 1 || fmt.Sprintf("%s/%d", wanAddrs[0].AddrInfo[0].Local, wanAddrs[0].AddrInfo[0].Prefixlen) != addr ||
		wanAddrs[0].AddrInfo[0].ValidLife != 4294967295 {
		t.Fatalf("wan after dhcp -> static: %+v, want %s permanent", wanAddrs, addr)
	}
	if b, _ := os.ReadFile(filepath.Join(cloudDir, "cloud/dnsmasq/dnsmasq.leases")); !strings.Contains(string(b), " "+strings.TrimSuffix(addr, "/24")+" ") {
		t.Fatalf("the lease of the now configured %s was released:\n%s", addr, b)
	}
	d.Stop(t)
}
