// Package rehearse tries a configuration on the kernel before it goes
// live (`fwd reload --rehearse`, `mgmt.rehearse = true`). For every
// tenant whose policy or routes would change, it builds a throwaway
// network namespace holding veth stand-ins with the tenant's interface
// names, addresses and MTUs (both ends of each pair stay in the scratch
// namespace), and applies the tenant's compiled ruleset and routes there
// with the subsystems' own Plan and Apply (Observe finds the scratch
// namespace empty). A kernel refusal (an expression or set type the
// kernel lacks, a route it rejects) is found without touching anything
// live, then the namespace is deleted. Interfaces moves, BGP and
// services are not rehearsed: they depend on the live NICs and peers.
package rehearse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/policy"
	"github.com/fwdproject/fwd/routing"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Report says what was rehearsed.
type Report struct {
	// Tenants lists the tenants rehearsed; Unchanged those skipped
	// because neither their policy nor their routes would change.
	Tenants   []string
	Unchanged []string
	// Changes counts what the rehearsal applied.
	Changes  int
	Duration time.Duration
}

// ErrRefused wraps every kernel refusal found by a rehearsal.
var ErrRefused = errors.New("the kernel refused the configuration in rehearsal")

// scratchPrefix names the scratch namespaces: a leading dot keeps them
// out of ns.List (they are never tenants); the daemon's pid follows, so
// that leftovers of a dead daemon can be recognised and removed.
const scratchPrefix = ".fwd-rehearse."

// alterRuleset and alterRoutes, when set (tests only), change a compiled
// ruleset or route set before it is rehearsed, to inject what the
// validator lets through nowhere but the kernel refuses.
var (
	alterRuleset func(rs *policy.Ruleset)
	alterRoutes  func(d *routing.Desired)
)

// Run rehearses cfg: each tenant whose policy or routes differ from what
// its live namespace holds (or whose namespace does not exist yet) is
// applied to a scratch namespace. Errors wrap ErrRefused when the kernel
// refused something; the live state is never changed.
func Run(ctx context.Context, log *slog.Logger, cfg *config.Config) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	defer func() { rep.Duration = time.Since(start) }()
	sweep(log)
	var errs []error
	for _, t := range cfg.Tenants {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if changed, err := differs(t); err == nil && !changed {
			rep.Unchanged = append(rep.Unchanged, t.Name)
			continue
		}
		rep.Tenants = append(rep.Tenants, t.Name)
		n, err := tenant(log.With("tenant", t.Name), t)
		rep.Changes += n
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", t.Name, err))
		}
	}
	return rep, errors.Join(errs...)
}

// differs reports whether applying t would change its live namespace's
// policy or routes (read only).
func differs(t *config.Tenant) (bool, error) {
	h, err := ns.Open(t.Name)
	if err != nil {
		return true, err
	}
	defer h.Close()
	st, err := policy.Observe(h)
	if err != nil {
		return true, err
	}
	if !policy.Plan(t.Name, policy.Compile(t), st).Empty() {
		return true, nil
	}
	d := routing.Compile(t)
	obs, err := routing.Observe(h, d)
	if err != nil {
		return true, err
	}
	steps := routing.Plan(d, obs)
	return len(steps.Routes) > 0 || len(steps.Rules) > 0, nil
}

// tenant rehearses one tenant and returns the number of changes applied.
func tenant(log *slog.Logger, t *config.Tenant) (int, error) {
	name := scratchPrefix + strconv.Itoa(os.Getpid()) + "." + t.Name
	h, err := ns.Create(name)
	if err != nil {
		return 0, fmt.Errorf("scratch namespace: %w", err)
	}
	defer func() {
		h.Close()
		if err := ns.Delete(name); err != nil {
			log.Warn("scratch namespace not deleted", "namespace", name, "error", err)
		}
	}()
	if err := standIns(h, t); err != nil {
		return 0, fmt.Errorf("%w: stand-in interfaces: %w", ErrRefused, err)
	}
	return tenantInto(h, t)
}

// tenantInto applies t's policy and routes to namespace h.
func tenantInto(h netns.NsHandle, t *config.Tenant) (int, error) {
	ctx := context.Background()
	n := 0
	if rs := policy.Compile(t); rs != nil {
		if alterRuleset != nil {
			alterRuleset(rs)
		}
		st, err := policy.Observe(h)
		if err != nil {
			return n, err
		}
		tx := policy.Plan(t.Name, rs, st)
		if _, err := policy.Apply(h, tx); err != nil {
			return n, fmt.Errorf("%w: policy: %w", ErrRefused, err)
		}
		n += len(tx.Changes())
	}
	d := routing.Compile(t)
	if alterRoutes != nil {
		alterRoutes(&d)
	}
	obs, err := routing.Observe(h, d)
	if err != nil {
		return n, err
	}
	res, err := routing.Apply(ctx, slog.New(slog.DiscardHandler), h, routing.Plan(d, obs))
	if err != nil {
		return n, fmt.Errorf("%w: routing: %w", ErrRefused, err)
	}
	// Live, a route whose gateway is unreachable is skipped with a
	// warning (its interface may come up later). Here every interface is
	// up with its addresses: a skipped route is one the kernel refuses.
	var skipped []string
	for _, c := range res.Changes {
		if c.Action == "skip-route" {
			skipped = append(skipped, c.Object+": "+c.Detail)
			continue
		}
		n++
	}
	if len(skipped) > 0 {
		return n, fmt.Errorf("%w: routing: %s", ErrRefused, strings.Join(skipped, "; "))
	}
	return n, nil
}

// standIns creates, in scratch namespace h, one veth per interface of t
// with its name, MTU and addresses (without duplicate address detection,
// so IPv6 sources are usable at once), up, its peer beside it.
func standIns(h netns.NsHandle, t *config.Tenant) error {
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	if lo, err := nh.LinkByName("lo"); err == nil {
		if err := nh.LinkSetUp(lo); err != nil {
			return err
		}
	}
	for i, ifc := range t.Interfaces {
		peer := "fwdrh" + strconv.Itoa(i)
		for t.Interface(peer) != nil {
			peer += "x"
		}
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ifc.Name, MTU: ifc.MTU}, PeerName: peer}
		if err := nh.LinkAdd(v); err != nil {
			return fmt.Errorf("%s: %w", ifc.Name, err)
		}
		for _, name := range []string{peer, ifc.Name} {
			l, err := nh.LinkByName(name)
			if err != nil {
				return err
			}
			if err := nh.LinkSetUp(l); err != nil {
				return fmt.Errorf("%s up: %w", name, err)
			}
		}
		l, err := nh.LinkByName(ifc.Name)
		if err != nil {
			return err
		}
		for _, p := range ifc.Addresses {
			a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, Flags: unix.IFA_F_NODAD}
			if err := nh.AddrAdd(l, a); err != nil {
				return fmt.Errorf("%s address %s: %w", ifc.Name, p, err)
			}
		}
	}
	return nil
}

// sweep removes scratch namespaces of daemons that are gone (a crash in
// the middle of a rehearsal).
func sweep(log *slog.Logger) {
	ents, err := os.ReadDir(ns.RunDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), scratchPrefix)
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, ".")
		p, err := strconv.Atoi(pid)
		// Rehearsals are serialised: one of this process is a leftover too.
		if err != nil || (p != os.Getpid() && !errors.Is(unix.Kill(p, 0), unix.ESRCH)) {
			continue
		}
		if err := ns.Delete(e.Name()); err != nil {
			log.Warn("leftover scratch namespace not deleted", "namespace", e.Name(), "error", err)
		}
	}
}
