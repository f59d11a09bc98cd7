package dhcpclient

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/vishvananda/netns"
)

// AcceptRA values (net.ipv6.conf.IF.accept_ra).
const (
	AcceptRAOff    = 0 // ignore router advertisements
	AcceptRAOn     = 1 // accept them unless forwarding is on
	AcceptRAAlways = 2 // accept them even with forwarding on: a tenant's WAN
)

// RA is how one interface treats router advertisements: accept_ra, and
// autoconf (SLAAC addresses from the advertised prefixes). A DHCPv6
// client's interface accepts them for the default route without
// autoconfiguring.
type RA struct {
	AcceptRA int
	Autoconf bool
}

// String is the form change lines show.
func (r RA) String() string {
	return "accept_ra=" + strconv.Itoa(r.AcceptRA) + " autoconf=" + strconv.Itoa(b2i(r.Autoconf))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetRA writes accept_ra and autoconf for one interface of namespace h.
// /proc/sys/net shows the namespace of the thread that opens it, so the
// files are opened through the ns door. It returns whether anything
// changed.
func SetRA(h netns.NsHandle, ifname string, r RA) (bool, error) {
	if err := checkName(ifname); err != nil {
		return false, err
	}
	changed := false
	err := ns.Do(h, func() error {
		for _, kv := range []struct {
			key string
			val int
		}{{"accept_ra", r.AcceptRA}, {"autoconf", b2i(r.Autoconf)}} {
			path := "/proc/sys/net/ipv6/conf/" + ifname + "/" + kv.key
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(b)) == strconv.Itoa(kv.val) {
				continue
			}
			if err := os.WriteFile(path, []byte(strconv.Itoa(kv.val)), 0o644); err != nil {
				return err
			}
			changed = true
		}
		return nil
	})
	return changed, err
}

// ReadRA reads accept_ra and autoconf of one interface of namespace h.
func ReadRA(h netns.NsHandle, ifname string) (RA, error) {
	if err := checkName(ifname); err != nil {
		return RA{}, err
	}
	var r RA
	err := ns.Do(h, func() error {
		var vals [2]int
		for i, key := range []string{"accept_ra", "autoconf"} {
			b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/" + key)
			if err != nil {
				return err
			}
			if vals[i], err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				return err
			}
		}
		r = RA{AcceptRA: vals[0], Autoconf: vals[1] != 0}
		return nil
	})
	return r, err
}

// checkName refuses what could leave /proc/sys/net/ipv6/conf/ (a VLAN
// name such as wan.100 is fine).
func checkName(ifname string) error {
	if strings.Contains(ifname, "/") || ifname == "" || ifname == "." || ifname == ".." {
		return fmt.Errorf("bad interface name %q", ifname)
	}
	return nil
}
