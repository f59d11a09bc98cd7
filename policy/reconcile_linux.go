package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/change"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
)

// Socket buffers for one batch. A 10k-rule policy with a 100k-element set
// is tens of MB of netlink messages; with the default buffers sendmsg
// fails ("message too long") or replies are dropped.
const (
	writeBuffer = 64 << 20
	readBuffer  = 64 << 20
)

var table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}

func dial(ns netns.NsHandle) (*nftables.Conn, error) {
	return nftables.New(nftables.WithNetNSFd(int(ns)), nftables.WithSockOptions(
		func(c *netlink.Conn) error {
			if err := c.SetWriteBuffer(writeBuffer); err != nil {
				return fmt.Errorf("netlink write buffer: %w", err)
			}
			return c.SetReadBuffer(readBuffer)
		}))
}

func isNotFound(err error) bool { return errors.Is(err, syscall.ENOENT) }

// kernelState is what fwd's table holds now.
type kernelState struct {
	exists bool
	hash   string
	chains map[string][]*nftables.Rule // nil unless rules were read
	names  []string                    // chain names
	sets   map[string]*nftables.Set
}

func observe(c *nftables.Conn, withRules bool) (*kernelState, error) {
	st := &kernelState{}
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		if isNotFound(err) {
			return st, nil
		}
		return nil, fmt.Errorf("list table: %w", err)
	}
	st.exists = true
	sets, err := c.GetSets(table)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	st.sets = map[string]*nftables.Set{}
	for _, s := range sets {
		if s.Anonymous || strings.HasPrefix(s.Name, "__") {
			continue // bound to rules; freed with them
		}
		st.sets[s.Name] = s
		if s.Name == stateSet {
			st.hash = strings.TrimPrefix(s.Comment, "sha256:")
		}
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != TableName {
			continue
		}
		st.names = append(st.names, ch.Name)
		if withRules {
			if st.chains == nil {
				st.chains = map[string][]*nftables.Rule{}
			}
			rules, err := c.GetRules(table, ch)
			if err != nil {
				return nil, fmt.Errorf("list rules of %s: %w", ch.Name, err)
			}
			st.chains[ch.Name] = rules
		}
	}
	sort.Strings(st.names)
	return st, nil
}

func (st *kernelState) upToDate(rs *Ruleset) bool {
	if !st.exists || st.hash != rs.Hash || len(st.names) != len(rs.Chains) {
		return false
	}
	want := make([]string, len(rs.Chains))
	for i, ch := range rs.Chains {
		want[i] = ch.Name
	}
	sort.Strings(want)
	for i := range want {
		if want[i] != st.names[i] {
			return false
		}
	}
	// Rules added or deleted behind fwd's back: compare each chain's rule
	// comments (cheap once rules are merged; sets are trusted by hash).
	if st.chains != nil {
		for _, ch := range rs.Chains {
			got := st.chains[ch.Name]
			if len(got) != len(ch.Rules) {
				return false
			}
			for i, r := range ch.Rules {
				if ruleComment(got[i]) != r.comment() {
					return false
				}
			}
		}
	}
	for _, s := range rs.Sets {
		if ks, ok := st.sets[s.Name]; !ok || ks.Comment != s.comment() {
			return false
		}
	}
	return true
}

func ruleComment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}

// counterKey identifies a kernel rule across reloads: chain, identity and
// the occurrence of that identity in the chain.
type counterKey struct {
	chain, id string
	n         int
}

func kernelCounters(st *kernelState) map[counterKey]Counter {
	out := map[counterKey]Counter{}
	for ch, rules := range st.chains {
		seen := map[string]int{}
		for _, r := range rules {
			id := IDFromComment(ruleComment(r))
			k := counterKey{ch, id, seen[id]}
			seen[id]++
			for _, e := range r.Exprs {
				if c, ok := e.(*expr.Counter); ok {
					out[k] = Counter{Packets: c.Packets, Bytes: c.Bytes}
				}
			}
		}
	}
	return out
}

// Reconcile makes the tenant's nftables state in namespace ns match t's
// policy. With dryRun it only computes the changes (for `fwd plan`). An
// unchanged policy sends nothing to the kernel and returns no changes; a
// changed one is applied in one transaction that flushes fwd's chains,
// replaces only the sets whose content changed and re-adds every rule:
// packets see the old or the new ruleset, never a mix, and conntrack
// entries (established flows, NAT mappings) are untouched. Counters of
// rules whose identity did not change are carried over. Only the table
// inet fwd_policy is ever touched.
func Reconcile(ctx context.Context, t *config.Tenant, ns netns.NsHandle, dryRun bool) ([]change.Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	log := slog.Default().With("subsystem", "policy", "tenant", t.Name)
	desired := Compile(t)
	if !ns.IsOpen() {
		// `fwd plan` for a tenant whose namespace does not exist yet: plan
		// against an empty namespace.
		if !dryRun {
			return nil, fmt.Errorf("tenant %q: namespace handle is not open", t.Name)
		}
		if desired == nil {
			return nil, nil
		}
		return diff(nil, t.Name, &kernelState{}, desired)
	}
	c, err := dial(ns)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: nftables: %w", t.Name, err)
	}
	st, err := observe(c, desired != nil)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", t.Name, err)
	}
	if desired == nil {
		if !st.exists {
			return nil, nil
		}
		chg := []change.Change{{Tenant: t.Name, Subsystem: "policy", Action: "delete-table", Object: "inet " + TableName, Detail: "no policy configured"}}
		if dryRun {
			return chg, nil
		}
		c.DelTable(table)
		if err := c.Flush(); err != nil {
			return nil, fmt.Errorf("tenant %q: delete table: %w", t.Name, err)
		}
		return chg, nil
	}
	if st.upToDate(desired) {
		return nil, nil
	}
	chg, err := diff(c, t.Name, st, desired)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", t.Name, err)
	}
	if dryRun {
		return chg, nil
	}
	sent, err := apply(c, desired, st, kernelCounters(st))
	if err != nil {
		return nil, fmt.Errorf("tenant %q: apply: %w", t.Name, err)
	}
	if err := verifySets(c, sent); err != nil {
		return nil, fmt.Errorf("tenant %q: %w", t.Name, err)
	}
	log.Info("policy applied", "changes", len(chg), "chains", len(desired.Chains), "sets", len(desired.Sets))
	return chg, nil
}

// ApplyStats times the phases of one Apply.
type ApplyStats struct {
	Commit time.Duration // build the batch, send it, kernel commit
	Verify time.Duration // read back the element counts of the sets sent
}

// Apply installs rs in namespace ns in one transaction, without the
// unchanged-check Reconcile does (used by benchmarks; Reconcile is the
// normal path).
func Apply(ns netns.NsHandle, rs *Ruleset) (ApplyStats, error) {
	var stats ApplyStats
	c, err := dial(ns)
	if err != nil {
		return stats, err
	}
	t0 := time.Now()
	st, err := observe(c, true)
	if err != nil {
		return stats, err
	}
	sent, err := apply(c, rs, st, kernelCounters(st))
	stats.Commit = time.Since(t0)
	if err != nil {
		return stats, err
	}
	t0 = time.Now()
	err = verifySets(c, sent)
	stats.Verify = time.Since(t0)
	return stats, err
}

// apply queues the whole desired table in one batch and flushes once; if
// building fails, nothing is sent. On an existing table it does not delete
// the table: it flushes every chain, replaces only the sets whose content
// changed (and the state set), drops chains no longer wanted and re-adds
// all rules, all in the same transaction. Unchanged large sets are thus
// neither resent nor re-verified. It returns the sets it sent.
func apply(c *nftables.Conn, rs *Ruleset, st *kernelState, counters map[counterKey]Counter) ([]*NamedSet, error) {
	wantChain := map[string]bool{}
	for _, ch := range rs.Chains {
		wantChain[ch.Name] = true
	}
	if !st.exists {
		c.AddTable(table)
	} else {
		for _, name := range st.names {
			c.FlushChain(&nftables.Chain{Name: name, Table: table})
		}
		wantSet := map[string]string{}
		for _, s := range rs.Sets {
			wantSet[s.Name] = s.comment()
		}
		for name, ks := range st.sets {
			if cm, ok := wantSet[name]; !ok || cm != ks.Comment || name == stateSet {
				c.DelSet(&nftables.Set{Name: name, Table: table})
			}
		}
		for _, name := range st.names {
			if !wantChain[name] {
				c.DelChain(&nftables.Chain{Name: name, Table: table})
			}
		}
	}
	b := &builder{c: c, t: table}
	if err := c.AddSet(&nftables.Set{Table: table, Name: stateSet, KeyType: nftables.TypeIPAddr, Comment: "sha256:" + rs.Hash}, nil); err != nil {
		return nil, err
	}
	var sent []*NamedSet
	for _, s := range rs.Sets {
		if ks, ok := st.sets[s.Name]; ok && ks.Comment == s.comment() {
			continue
		}
		kt := nftables.TypeIPAddr
		if s.V6 {
			kt = nftables.TypeIP6Addr
		}
		ks := &nftables.Set{Table: table, Name: s.Name, KeyType: kt, Interval: true, Comment: s.comment()}
		if err := c.AddSet(ks, addrIntervals(s.Elems)); err != nil {
			return nil, fmt.Errorf("set %s: %w", s.Name, err)
		}
		sent = append(sent, s)
	}
	chains := map[string]*nftables.Chain{}
	for _, ch := range rs.Chains {
		kc := &nftables.Chain{Name: ch.Name, Table: table}
		chains[ch.Name] = kc
		if ch.Hook != "" {
			kc.Type = nftables.ChainType(ch.Type)
			kc.Hooknum = hooks[ch.Hook]
			prio := nftables.ChainPriority(ch.Priority)
			kc.Priority = &prio
			pol := nftables.ChainPolicyAccept
			if ch.Policy == "drop" {
				pol = nftables.ChainPolicyDrop
			}
			kc.Policy = &pol
		}
		c.AddChain(kc)
	}
	// Maps hold "goto chain" verdicts: the chains must exist first.
	for _, s := range rs.IfSets {
		if err := addIfSet(c, s); err != nil {
			return nil, fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	for _, ch := range rs.Chains {
		seen := map[string]int{}
		for _, r := range ch.Rules {
			k := counterKey{ch.Name, r.ID, seen[r.ID]}
			seen[r.ID]++
			var exprs []expr.Any
			for _, s := range r.Stmts {
				if cnt, ok := s.(Counter); ok {
					if prev, ok := counters[k]; ok {
						s = prev
					} else {
						s = cnt
					}
				}
				exprs = append(exprs, b.exprs(s)...)
			}
			if b.err != nil {
				return nil, fmt.Errorf("chain %s rule %s: %w", ch.Name, r.ID, b.err)
			}
			c.AddRule(&nftables.Rule{Table: table, Chain: chains[ch.Name], Exprs: exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment())})
		}
	}
	return sent, c.Flush()
}

var hooks = map[string]*nftables.ChainHook{
	"input": nftables.ChainHookInput, "forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
	"prerouting": nftables.ChainHookPrerouting, "postrouting": nftables.ChainHookPostrouting,
}

// verifySets reads back every named set and checks that the kernel holds
// all elements: a truncated batch must not pass silently.
func verifySets(c *nftables.Conn, sets []*NamedSet) error {
	for _, s := range sets {
		want := len(addrIntervals(s.Elems))
		got, err := c.GetSetElements(&nftables.Set{Table: table, Name: s.Name})
		if err != nil {
			return fmt.Errorf("read back set %s: %w", s.Name, err)
		}
		if len(got) != want {
			return fmt.Errorf("set %s: kernel holds %d interval elements, want %d", s.Name, len(got), want)
		}
	}
	return nil
}

// diff describes, per chain and set, what an apply would change.
func diff(c *nftables.Conn, tenant string, st *kernelState, rs *Ruleset) ([]change.Change, error) {
	mk := func(action, obj, detail string) change.Change {
		return change.Change{Tenant: tenant, Subsystem: "policy", Action: action, Object: obj, Detail: detail}
	}
	if !st.exists {
		n := 0
		for _, ch := range rs.Chains {
			n += len(ch.Rules)
		}
		el := 0
		for _, s := range rs.Sets {
			el += len(s.Elems)
		}
		return []change.Change{mk("create-table", "inet "+TableName, fmt.Sprintf("%d chains, %d rules, %d sets, %d set elements", len(rs.Chains), n, len(rs.Sets), el))}, nil
	}
	var out []change.Change
	want := map[string]bool{}
	for _, ch := range rs.Chains {
		want[ch.Name] = true
		old, had := st.chains[ch.Name]
		if !had {
			out = append(out, mk("add-chain", ch.Name, fmt.Sprintf("%d rules", len(ch.Rules))))
			continue
		}
		// Compare by full comment: it carries the identity, and for merged
		// groups the member list, so a changed group shows up too.
		oldC := map[string]int{}
		for _, r := range old {
			oldC[ruleComment(r)]++
		}
		newC := map[string]int{}
		for _, r := range ch.Rules {
			newC[r.comment()]++
		}
		reported := map[string]bool{}
		for _, r := range ch.Rules {
			cm := r.comment()
			if newC[cm] > oldC[cm] && !reported[cm] {
				reported[cm] = true
				out = append(out, mk("add-rule", ch.Name+" "+r.ID, ruleSummary(r)))
			}
		}
		for cm, n := range oldC {
			if newC[cm] < n {
				out = append(out, mk("delete-rule", ch.Name+" "+IDFromComment(cm), ""))
			}
		}
	}
	for _, name := range st.names {
		if !want[name] {
			out = append(out, mk("delete-chain", name, ""))
		}
	}
	wantSet := map[string]bool{stateSet: true}
	for _, s := range rs.Sets {
		wantSet[s.Name] = true
	}
	for _, s := range rs.IfSets {
		wantSet[s.Name] = true
	}
	for name := range st.sets {
		if !wantSet[name] {
			out = append(out, mk("delete-set", name, ""))
		}
	}
	for _, s := range rs.Sets {
		if _, ok := st.sets[s.Name]; !ok {
			out = append(out, mk("add-set", s.Name, fmt.Sprintf("%d elements", len(s.Elems))))
			continue
		}
		if st.sets[s.Name].Comment != s.comment() {
			out = append(out, mk("update-set", s.Name, fmt.Sprintf("%d elements", len(s.Elems))))
		}
	}
	if len(out) == 0 {
		out = append(out, mk("update-table", "inet "+TableName, "rule contents changed"))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out, nil
}

// ruleSummary is the rule in nft syntax, shortened for plan output.
func ruleSummary(r *Rule) string {
	parts := make([]string, len(r.Stmts))
	for i, s := range r.Stmts {
		parts[i] = s.text()
	}
	t := strings.Join(parts, " ")
	if len(t) > 200 {
		t = t[:200] + "…"
	}
	return t
}

// RuleCounter is the packet and byte count of one rule identity, summed
// over the kernel rules it compiled to.
type RuleCounter struct {
	ID      string   `json:"id"`
	Comment string   `json:"comment,omitempty"`
	Chains  []string `json:"chains"`
	Packets uint64   `json:"packets"`
	Bytes   uint64   `json:"bytes"`
	// Members lists, for a merged group (ID "_merged/..."), the identities
	// of the config rules it holds (filled by ReadRuleCounters).
	Members []string `json:"members,omitempty"`
}

// ReadRuleCounters is ReadCounters plus, for merged groups, the member
// rules, taken from compiling t (the config that was applied).
func ReadRuleCounters(t *config.Tenant, ns netns.NsHandle) ([]RuleCounter, error) {
	cs, err := ReadCounters(ns)
	if err != nil {
		return nil, err
	}
	members := map[string][]string{}
	if rs := Compile(t); rs != nil {
		for _, ch := range rs.Chains {
			for _, r := range ch.Rules {
				if len(r.Members) > 0 {
					members[r.ID] = r.Members
				}
			}
		}
	}
	for i := range cs {
		cs[i].Members = members[cs[i].ID]
	}
	return cs, nil
}

// ReadCounters returns the counters of every rule in fwd's table in
// namespace ns, in chain order. Built-in rules have identities starting
// with '_' (e.g. "_default" for the zone pair's default verdict).
func ReadCounters(ns netns.NsHandle) ([]RuleCounter, error) {
	if !ns.IsOpen() {
		return nil, errors.New("policy: namespace handle is not open")
	}
	c, err := dial(ns)
	if err != nil {
		return nil, err
	}
	st, err := observe(c, true)
	if err != nil {
		return nil, err
	}
	if !st.exists {
		return nil, nil
	}
	idx := map[string]*RuleCounter{}
	var order []string
	for _, ch := range st.names {
		for _, r := range st.chains[ch] {
			cm := ruleComment(r)
			id := IDFromComment(cm)
			rc, ok := idx[id]
			if !ok {
				rc = &RuleCounter{ID: id}
				if i := strings.Index(cm, ": "); i >= 0 {
					rc.Comment = cm[i+2:]
				}
				idx[id] = rc
				order = append(order, id)
			}
			if len(rc.Chains) == 0 || rc.Chains[len(rc.Chains)-1] != ch {
				rc.Chains = append(rc.Chains, ch)
			}
			for _, e := range r.Exprs {
				if cnt, ok := e.(*expr.Counter); ok {
					rc.Packets += cnt.Packets
					rc.Bytes += cnt.Bytes
				}
			}
		}
	}
	out := make([]RuleCounter, 0, len(order))
	for _, id := range order {
		out = append(out, *idx[id])
	}
	return out, nil
}
