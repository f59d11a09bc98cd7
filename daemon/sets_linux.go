package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/policy"
)

// Live sets through the API (mgmt.SetController): the daemon checks the
// tenant and set against the running configuration and calls policy's
// live-set functions in the tenant's namespace. They do not take applyMu:
// a live-set change is one small nftables transaction of its own, which
// the kernel serialises with an apply's, and reloads never touch dynamic
// sets' elements, so a change never waits for a reload.

// liveSet returns the running configuration's set name of tenant.
func (d *Daemon) liveSet(tenant, name string) (*config.AddrSet, error) {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	t := cfg.Tenant(tenant)
	if t == nil {
		return nil, fmt.Errorf("tenant %q: %w", tenant, mgmt.ErrNotFound)
	}
	for _, s := range t.Policy.Sets {
		if s.Name == name {
			if !s.Dynamic {
				return nil, fmt.Errorf("tenant %q: set %q: %w", tenant, name, mgmt.ErrStaticSet)
			}
			return s, nil
		}
	}
	return nil, fmt.Errorf("tenant %q: set %q: %w", tenant, name, mgmt.ErrNotFound)
}

// setErr maps policy's live-set errors to the API's.
func setErr(tenant string, err error) error {
	switch {
	case errors.Is(err, policy.ErrStaticSet):
		return fmt.Errorf("tenant %q: %w: %w", tenant, mgmt.ErrStaticSet, err)
	case errors.Is(err, policy.ErrNoSet), errors.Is(err, ns.ErrNotFound):
		return fmt.Errorf("tenant %q: %w: %w", tenant, mgmt.ErrNotFound, err)
	}
	return fmt.Errorf("tenant %q: %w", tenant, err)
}

// SetList implements mgmt.SetController.
func (d *Daemon) SetList(ctx context.Context, tenant, name string) (*mgmt.SetView, error) {
	if _, err := d.liveSet(tenant, name); err != nil {
		return nil, err
	}
	h, err := ns.Open(tenant)
	if err != nil {
		return nil, setErr(tenant, err)
	}
	defer h.Close()
	el, err := policy.SetList(h, name)
	if err != nil {
		return nil, setErr(tenant, err)
	}
	v := &mgmt.SetView{Tenant: tenant, Set: name, Elements: make([]mgmt.SetElement, 0, len(el))}
	for _, e := range el {
		v.Elements = append(v.Elements, mgmt.SetElement{Element: rangeString(e.Range), Expires: e.Expires})
	}
	return v, nil
}

// SetChange implements mgmt.SetController.
func (d *Daemon) SetChange(ctx context.Context, tenant, name, op string, req mgmt.SetRequest) (*mgmt.SetResult, error) {
	if _, err := d.liveSet(tenant, name); err != nil {
		return nil, err
	}
	var elems []config.AddrRange
	for _, s := range req.Elements {
		r, err := config.ParseAddrRange(s)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", mgmt.ErrBadElement, s, err)
		}
		elems = append(elems, r)
	}
	var timeout time.Duration
	if req.Timeout != "" {
		var err error
		if timeout, err = time.ParseDuration(req.Timeout); err != nil || timeout <= 0 {
			return nil, fmt.Errorf("%w: timeout %q is not a positive duration", mgmt.ErrBadElement, req.Timeout)
		}
		if op != "add" {
			return nil, fmt.Errorf("%w: a timeout applies to add only", mgmt.ErrBadElement)
		}
	}
	h, err := ns.Open(tenant)
	if err != nil {
		return nil, setErr(tenant, err)
	}
	defer h.Close()
	start := time.Now()
	switch op {
	case "add":
		err = policy.SetAdd(h, name, elems, timeout)
	case "del":
		err = policy.SetDel(h, name, elems)
	case "flush":
		err = policy.SetFlush(h, name)
	default:
		return nil, fmt.Errorf("%w: unknown set operation %q", mgmt.ErrBadElement, op)
	}
	took := time.Since(start)
	if err != nil {
		d.log.Warn("live set change refused", "tenant", tenant, "set", name, "op", op, "error", err)
		return nil, setErr(tenant, err)
	}
	d.log.Info("live set changed", "tenant", tenant, "set", name, "op", op, "elements", len(elems), "duration", took.Round(time.Microsecond).String())
	return &mgmt.SetResult{Tenant: tenant, Set: name, Op: op, Elements: len(elems), Duration: took}, nil
}

// rangeString renders a range as an address, a prefix when it is one, or
// "from-to".
func rangeString(r config.AddrRange) string {
	if r.From == r.To {
		return r.From.String()
	}
	for bits := 0; bits <= r.From.BitLen(); bits++ {
		p := netip.PrefixFrom(r.From, bits)
		if p.Masked().Addr() == r.From && config.PrefixLast(p) == r.To {
			return p.String()
		}
	}
	return r.From.String() + "-" + r.To.String()
}
