package ha

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Spec is one tenant's HA pair, as this box sees it. Both boxes of a pair
// render from specs that agree on VRID, AdvertInterval, SyncPort and VIPs,
// and mirror each other's LocalAddress and Peer.
type Spec struct {
	Tenant string
	// Dir holds the generated files, pid files, sockets, logs and the
	// state file (production: /run/fwd/TENANT/ha). Tenants share one
	// filesystem, so nothing a daemon writes may live outside it.
	Dir string

	SyncInterface string     // dedicated to VRRP adverts and conntrackd sync
	LocalAddress  netip.Addr // this box's address on SyncInterface
	Peer          netip.Addr // the other box's address on SyncInterface

	Priority       int           // 1..254; the box meant to be master has the higher one
	VRID           int           // 1..255; DefaultVRID when 0
	AdvertInterval time.Duration // DefaultAdvertInterval when 0; 10ms steps
	PreemptDelay   time.Duration // DefaultPreemptDelay when 0; failback waits this long
	SyncPort       int           // conntrackd UDP port; DefaultSyncPort when 0

	VIPs []VIP
	// TrackInterfaces are watched besides the VIP interfaces (which are
	// always watched): any of them down puts this box in FAULT.
	TrackInterfaces []string
	// IgnoreAddresses are this box's own addresses (not VIPs): conntrackd
	// does not sync connections to or from them, they end on this box.
	IgnoreAddresses []netip.Addr
}

// VIP is a virtual address keepalived holds on the master.
type VIP struct {
	Interface string
	Prefix    netip.Prefix // the address with its subnet length, 203.0.113.5/24
}

// Defaults for the optional Spec fields.
const (
	DefaultVRID           = 51
	DefaultAdvertInterval = 500 * time.Millisecond // master down after ~1.7 s
	DefaultPreemptDelay   = 10 * time.Second
	DefaultSyncPort       = 3780
)

// WithDefaults fills the optional fields left zero.
func (s Spec) WithDefaults() Spec {
	if s.VRID == 0 {
		s.VRID = DefaultVRID
	}
	if s.AdvertInterval == 0 {
		s.AdvertInterval = DefaultAdvertInterval
	}
	if s.PreemptDelay == 0 {
		s.PreemptDelay = DefaultPreemptDelay
	}
	if s.SyncPort == 0 {
		s.SyncPort = DefaultSyncPort
	}
	return s
}

// Files under Spec.Dir.
func (s Spec) path(name string) string { return filepath.Join(s.Dir, name) }

// KeepalivedConf is the path of the generated keepalived.conf.
func (s Spec) KeepalivedConf() string { return s.path("keepalived.conf") }

// ConntrackdConf is the path of the generated conntrackd.conf.
func (s Spec) ConntrackdConf() string { return s.path("conntrackd.conf") }

// StateFile is where the notify script records each transition.
func (s Spec) StateFile() string { return s.path("state") }

// FailoverFile is keepalived's track file: Failover writes into it.
func (s Spec) FailoverFile() string { return s.path("failover") }

func (s Spec) notifyScript() string     { return s.path("notify.sh") }
func (s Spec) conntrackdSocket() string { return s.path("conntrackd.ctl") }
func (s Spec) conntrackdLock() string   { return s.path("conntrackd.lock") }

// maxSocketPath is sun_path's size minus the terminating NUL.
const maxSocketPath = 107

// Validate checks what Render relies on. The config package reports the
// same rules with file and line; this is the last guard.
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.Tenant == "" {
		bad("tenant is empty")
	}
	if !filepath.IsAbs(s.Dir) || strings.ContainsAny(s.Dir, " \t\n\"'#!") {
		bad("run directory %q must be an absolute path without blanks, quotes, '#' or '!'", s.Dir)
	} else if len(s.conntrackdSocket()) > maxSocketPath {
		bad("run directory %q is too long for conntrackd's unix socket", s.Dir)
	}
	if s.SyncInterface == "" {
		bad("sync interface is empty")
	}
	if !s.LocalAddress.IsValid() || !s.Peer.IsValid() {
		bad("sync addresses (local %v, peer %v) must both be set", s.LocalAddress, s.Peer)
	} else if s.LocalAddress.Is4() != s.Peer.Is4() {
		bad("local sync address %s and peer %s are of different families", s.LocalAddress, s.Peer)
	} else if s.LocalAddress == s.Peer {
		bad("peer %s is this box's own sync address", s.Peer)
	}
	if s.Priority < 1 || s.Priority > 254 {
		bad("priority %d is outside 1..254", s.Priority)
	}
	if s.VRID < 1 || s.VRID > 255 {
		bad("vrid %d is outside 1..255", s.VRID)
	}
	if s.AdvertInterval < 10*time.Millisecond || s.AdvertInterval > 40*time.Second || s.AdvertInterval%(10*time.Millisecond) != 0 {
		bad("advert interval %s must be a multiple of 10ms between 10ms and 40s", s.AdvertInterval)
	}
	if s.PreemptDelay < 0 || s.PreemptDelay > 1000*time.Second {
		bad("preempt delay %s is outside 0..1000s", s.PreemptDelay)
	}
	if s.SyncPort < 1 || s.SyncPort > 65535 {
		bad("sync port %d is outside 1..65535", s.SyncPort)
	}
	if len(s.VIPs) == 0 {
		bad("no VIP")
	}
	seen := map[netip.Addr]bool{}
	for _, v := range s.VIPs {
		if v.Interface == "" || !v.Prefix.IsValid() {
			bad("vip %v on %q: interface and address/length are required", v.Prefix, v.Interface)
			continue
		}
		if v.Interface == s.SyncInterface {
			bad("vip %s is on the sync interface %q", v.Prefix, v.Interface)
		}
		if seen[v.Prefix.Addr()] {
			bad("vip %s is listed twice", v.Prefix.Addr())
		}
		seen[v.Prefix.Addr()] = true
	}
	return errors.Join(errs...)
}

// trackedInterfaces are the VIP interfaces then TrackInterfaces, once
// each, in first-seen order. The sync interface is not among them: see
// dontTrackPrimary in render.go.
func (s Spec) trackedInterfaces() []string {
	var out []string
	seen := map[string]bool{s.SyncInterface: true}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, v := range s.VIPs {
		add(v.Interface)
	}
	for _, n := range s.TrackInterfaces {
		add(n)
	}
	return out
}
