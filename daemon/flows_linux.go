package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/explain"
	"github.com/fwdproject/fwd/flows"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/mgmt"
)

// After a reload, the established flows of every tenant are explained
// against the new policy as if their first packet arrived now (ct state
// new): those it would not admit are counted and logged and, with
// ReloadRequest.KillDenied, deleted from conntrack, so that their next
// packet is no longer "established" and meets the new policy (a TCP
// peer then gets the new verdict: silence or a reset).
//
// Conntrack records no interfaces. The input interface of each flow is
// derived from the route lookup of its reply direction (the interface
// the answer to its source leaves by, explain.Explainer.ArrivesOn); the
// output interface from the route lookup explain makes for the original
// direction. With symmetric routing that is where the flow passes; with
// asymmetric routing (source-based policy routes, ECMP, BGP routes
// explain does not know) it is an approximation, so such a flow may be
// judged on the wrong zone pair.

// deniedFlow is an established flow with the trace that denies it.
type deniedFlow struct {
	flows.Flow
	in    string
	trace *explain.Trace
}

// established reports whether fl is a flow a reload must re-check: a TCP
// connection in state established, or a flow of another protocol that
// has seen an answer.
func established(fl flows.Flow) bool {
	if fl.Proto == "tcp" {
		return fl.State == "established"
	}
	return fl.SeenReply
}

// deniedOf explains each established flow of list with x (pure). A flow
// counts as denied when a filter hook of the new policy drops or rejects
// its first packet; a flow that only lost its route is not the policy's
// to kill. unknown counts flows that could not be explained.
func deniedOf(x *explain.Explainer, list []flows.Flow) (den []deniedFlow, checked, unknown int) {
	for _, fl := range list {
		if !established(fl) {
			continue
		}
		checked++
		proto, ok := flows.ProtoNumber(fl.Proto)
		in := x.ArrivesOn(fl.Orig.Src, fl.Orig.Dst)
		if !ok || in == "" {
			unknown++
			continue
		}
		q := explain.Query{In: in, Src: fl.Orig.Src, Dst: fl.Orig.Dst, Proto: proto, SPort: fl.Orig.SPort, DPort: fl.Orig.DPort, State: "new"}
		tr, err := x.Explain(q)
		if err != nil {
			unknown++
			continue
		}
		if tr.Verdict != explain.Accept && tr.Hook != "" {
			den = append(den, deniedFlow{Flow: fl, in: in, trace: tr})
		}
	}
	return den, checked, unknown
}

// denied returns the established flows of tenant that the policy of cfg
// would not admit, from the tenant's conntrack table. A tenant whose
// namespace does not exist has no flows.
func denied(cfg *config.Config, tenant string) (den []deniedFlow, checked, unknown int, err error) {
	t := cfg.Tenant(tenant)
	if t == nil || !t.Policy.Enabled {
		return nil, 0, 0, nil // no policy: nothing is filtered
	}
	x, err := explain.NewExplainer(cfg, tenant)
	if err != nil {
		return nil, 0, 0, err
	}
	h, err := ns.Open(tenant)
	if errors.Is(err, ns.ErrNotFound) {
		return nil, 0, 0, nil
	}
	if err != nil {
		return nil, 0, 0, err
	}
	defer h.Close()
	list, err := flows.List(h, flows.Filter{})
	if err != nil {
		return nil, 0, 0, err
	}
	den, checked, unknown = deniedOf(x, list)
	return den, checked, unknown, nil
}

// checkFlows explains every tenant's established flows against cfg (just
// applied), logs the denied ones and, with kill, deletes exactly those.
func (d *Daemon) checkFlows(cfg *config.Config, kill bool) *mgmt.FlowCheck {
	start := time.Now()
	fc := &mgmt.FlowCheck{Denied: []mgmt.DeniedFlow{}}
	for _, t := range cfg.Tenants {
		log := d.log.With("tenant", t.Name)
		den, checked, unknown, err := denied(cfg, t.Name)
		fc.Checked += checked
		fc.Unknown += unknown
		if err != nil {
			log.Warn("established flows not checked against the new policy", "error", err)
			fc.Errors = append(fc.Errors, fmt.Sprintf("tenant %q: %v", t.Name, err))
			continue
		}
		killed := map[int]bool{}
		if kill && len(den) > 0 {
			killed = d.killFlows(t.Name, den, fc)
		}
		for i, f := range den {
			df := mgmt.DeniedFlow{Tenant: t.Name, Proto: f.Proto, Src: f.Orig.Src, Dst: f.Orig.Dst, SPort: f.Orig.SPort, DPort: f.Orig.DPort,
				In: f.in, Verdict: f.trace.Verdict, Reason: f.trace.Reason, Killed: killed[i]}
			if r := f.trace.Rule; r != nil {
				df.Rule, df.Where = r.ID, r.Where()
			}
			fc.Denied = append(fc.Denied, df)
			log.Warn("established flow not admitted by the new policy", "proto", f.Proto,
				"src", endpoint(df.Src, df.SPort), "dst", endpoint(df.Dst, df.DPort), "in", f.in,
				"verdict", df.Verdict, "rule", df.Rule, "where", df.Where, "killed", df.Killed)
		}
	}
	d.log.Info("established flows checked against the new policy", "checked", fc.Checked, "denied", len(fc.Denied),
		"killed", fc.Killed, "unknown", fc.Unknown, "duration", time.Since(start).Round(time.Microsecond).String())
	return fc
}

// killFlows deletes the denied flows of one tenant and returns which
// (by index) were deleted. A flow that closed meanwhile is not an error.
func (d *Daemon) killFlows(tenant string, den []deniedFlow, fc *mgmt.FlowCheck) map[int]bool {
	out := map[int]bool{}
	h, err := ns.Open(tenant)
	if err != nil {
		fc.Errors = append(fc.Errors, fmt.Sprintf("tenant %q: %v", tenant, err))
		return out
	}
	defer h.Close()
	fls := make([]flows.Flow, len(den))
	for i, f := range den {
		fls[i] = f.Flow
	}
	deleted, err := flows.DeleteEach(h, fls) // one socket for all of them
	if err != nil {
		d.log.Warn("denied flows not all deleted", "tenant", tenant, "error", err)
		fc.Errors = append(fc.Errors, fmt.Sprintf("tenant %q: %v", tenant, err))
	}
	for i, ok := range deleted {
		if ok {
			out[i] = true
			fc.Killed++
		}
	}
	return out
}

func endpoint(a netip.Addr, port uint16) string {
	if port == 0 {
		return a.String()
	}
	return netip.AddrPortFrom(a, port).String()
}

// afterReload completes a reload's result with the rehearsal report
// and, when the configuration was applied, the check of the established
// flows. The recorded result is replaced rather than changed: status
// readers may hold the old one. Caller holds applyMu.
func (d *Daemon) afterReload(res *mgmt.Result, cfg *config.Config, req mgmt.ReloadRequest, reh *mgmt.Rehearsal) *mgmt.Result {
	out := *res
	out.Rehearsal = reh
	if res.OK() {
		out.Flows = d.checkFlows(cfg, req.KillDenied)
	}
	d.mu.Lock()
	if d.last == res {
		d.last = &out
	}
	d.mu.Unlock()
	return &out
}
