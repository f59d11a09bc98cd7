package main

// What a box does in the demo: it plays a fwd box whose tenant "edge" has
// wan, lan and sync interfaces, a forwarding + SNAT ruleset, and an HA
// pair run by an ha.Manager living in the box process (HA is not wired
// into fwd's config yet; the Manager is what the daemon will call).

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/ha"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit/twobox"
	"github.com/fwdproject/fwd/supervise"
	"github.com/vishvananda/netlink"
)

const (
	tenant  = "edge"
	wanVIP  = "203.0.113.1"
	lanVIP  = "192.0.2.1"
	wanHost = "203.0.113.10"
	lanHost = "192.0.2.10"

	preemptDelay = 3 * time.Second
)

var boxMgr *ha.Manager

// boxSpec is box idx's HA pair (1 = A, the preferred master; 2 = B).
func boxSpec(idx int) ha.Spec {
	return ha.Spec{
		Tenant: tenant, SyncInterface: "sync",
		LocalAddress: netip.MustParseAddr(fmt.Sprintf("198.18.9.%d", idx)),
		Peer:         netip.MustParseAddr(fmt.Sprintf("198.18.9.%d", 3-idx)),
		Priority:     150 - 50*(idx-1), PreemptDelay: preemptDelay,
		VIPs: []ha.VIP{
			{Interface: "wan", Prefix: netip.MustParsePrefix(wanVIP + "/24")},
			{Interface: "lan", Prefix: netip.MustParsePrefix(lanVIP + "/24")},
		},
		IgnoreAddresses: []netip.Addr{
			netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", 1+idx)),
			netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 1+idx)),
		},
	}
}

// The ruleset fwd's policy for an HA tenant amounts to: VRRP and
// conntrackd admitted on the sync interface only, LAN → WAN forwarding
// with state, SNAT to the WAN VIP (which the new master has too).
const ruleset = `
table inet hademo {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		iifname "sync" ip protocol vrrp accept
		iifname "sync" udp dport 3780 accept
		icmp type echo-request accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan" oifname "wan" accept
	}
	chain postrouting {
		type nat hook postrouting priority 100;
		oifname "wan" snat ip to ` + wanVIP + `
	}
}
`

func sh(script string) (string, error) {
	out, err := exec.Command("/bin/sh", "-ec", script).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, out)
	}
	return string(out), nil
}

func init() {
	// tenant IDX: the tenant namespace with the box's NICs in it.
	twobox.Register("tenant", func(args []string) (string, error) {
		idx, _ := strconv.Atoi(args[0])
		if out, err := sh(fmt.Sprintf(`
ip netns add %[1]s
for i in wan lan sync; do ip link set $i netns %[1]s; ip -n %[1]s link set $i up; done
ip -n %[1]s link set lo up
ip -n %[1]s addr add 203.0.113.%[2]d/24 dev wan
ip -n %[1]s addr add 192.0.2.%[2]d/24 dev lan
ip -n %[1]s addr add 198.18.9.%[3]d/24 dev sync
ip netns exec %[1]s sysctl -qw net.ipv4.ip_forward=1
`, tenant, 1+idx, idx)); err != nil {
			return out, err
		}
		c := exec.Command("ip", "netns", "exec", tenant, "nft", "-f", "-")
		c.Stdin = strings.NewReader(ruleset)
		if out, err := c.CombinedOutput(); err != nil {
			return string(out), fmt.Errorf("nft: %w: %s", err, out)
		}
		return "", nil
	})
	// ha-up IDX: start (or reconcile) the box's HA pair.
	twobox.Register("ha-up", func(args []string) (string, error) {
		idx, _ := strconv.Atoi(args[0])
		supervise.MinBackoff = 200 * time.Millisecond
		if boxMgr == nil {
			boxMgr = ha.NewManager(slog.New(slog.NewTextHandler(os.Stderr, nil)), "/run/fwd")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return "", boxMgr.Reconcile(ctx, []ha.Spec{boxSpec(idx)})
	})
	twobox.Register("ha-status", func([]string) (string, error) {
		if boxMgr == nil {
			return `{"State":"stopped"}`, nil
		}
		st, err := boxMgr.Status(context.Background(), tenant)
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(st)
		return string(b), err
	})
	// ka-term: SIGTERM to keepalived, as a stop would; the supervisor
	// restarts it.
	twobox.Register("ka-term", func([]string) (string, error) {
		return "", boxMgr.Process(tenant, "keepalived").Signal(syscall.SIGTERM)
	})
	twobox.Register("ha-stop", func([]string) (string, error) {
		if boxMgr != nil {
			boxMgr.Stop()
		}
		return "", nil
	})
	// wait-vip present|absent TIMEOUT_MS: polls the WAN VIP every 10 ms and
	// returns when it was seen in the wanted state (unix nanoseconds).
	twobox.Register("wait-vip", func(args []string) (string, error) {
		want := args[0] == "present"
		ms, _ := strconv.Atoi(args[1])
		deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
		for {
			if hasVIP() == want {
				return strconv.FormatInt(time.Now().UnixNano(), 10), nil
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("VIP not %s after %sms", args[0], args[1])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func hasVIP() bool {
	h, err := ns.Open(tenant)
	if err != nil {
		return false
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return false
	}
	defer nh.Close()
	l, err := nh.LinkByName("wan")
	if err != nil {
		return false
	}
	addrs, err := nh.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.String() == wanVIP {
			return true
		}
	}
	return false
}
