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

// SetAcceptRA writes accept_ra (and autoconf, on for SLAAC whenever RAs
// are accepted) for one interface of namespace h. /proc/sys/net shows the
// namespace of the thread that opens it, so the files are opened through
// the ns door. It returns whether anything changed.
func SetAcceptRA(h netns.NsHandle, ifname string, mode int) (bool, error) {
	if strings.ContainsAny(ifname, "/.") || ifname == "" {
		return false, fmt.Errorf("bad interface name %q", ifname)
	}
	autoconf := 0
	if mode != AcceptRAOff {
		autoconf = 1
	}
	changed := false
	err := ns.Do(h, func() error {
		for _, kv := range []struct {
			key string
			val int
		}{{"accept_ra", mode}, {"autoconf", autoconf}} {
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

// AcceptRA reads accept_ra of one interface of namespace h.
func AcceptRA(h netns.NsHandle, ifname string) (int, error) {
	var v int
	err := ns.Do(h, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/accept_ra")
		if err != nil {
			return err
		}
		v, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	return v, err
}
