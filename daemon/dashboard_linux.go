package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/statuspage"
	"github.com/fwdproject/fwd/zones"
)

// The status page (package statuspage) reads GET /v1/dashboard, which is
// served from the collector's last sample: a page left open, or many of
// them, costs the kernel nothing more. The collector samples the read
// models (readmodel_linux.go) every sampleEvery, so a sample costs the
// same whatever the number of routes, and keeps bounded histories
// (mgmt.DashboardSamples points) for the sparklines.

// sampleEvery is the spacing of the dashboard's history points.
const sampleEvery = 3 * time.Second

// topRules bounds the "top rules" list of a tenant.
const topRules = 10

// observers are the daemon's background readers: the dashboard collector
// and the per-tenant packet log readers (pktlog_linux.go). The zero value
// is ready; the first apply starts them, Close stops them.
type observers struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dash   *collector
	logs   *packetLogs
}

func (o *observers) start(d *Daemon) {
	o.once.Do(func() {
		o.ctx, o.cancel = context.WithCancel(context.Background())
		o.dash = newCollector(d)
		o.logs = newPacketLogs(d.log.With("subsystem", "pktlog"))
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			o.dash.run(o.ctx)
		}()
	})
}

// applied follows an apply of cfg: packet log readers for its tenants,
// and a fresh dashboard sample.
func (o *observers) applied(d *Daemon, cfg *config.Config) {
	o.start(d)
	o.logs.sync(o.ctx, cfg)
	o.dash.kick()
}

// close stops every observer and waits for them.
func (o *observers) close() {
	o.once.Do(func() {}) // a later apply must not start them
	if o.cancel == nil {
		return
	}
	o.cancel()
	o.logs.wait()
	o.wg.Wait()
}

// pagePatterns are the page's own files: fixed, holding no data, so a
// browser can load them before it has a token to send (the page takes
// the token from its URL fragment and sends it with every fetch).
var pagePatterns = []string{"GET /{$}", "GET /index.html", "GET /app.js", "GET /style.css"}

// mountDashboard adds the status page, GET /v1/dashboard and (withLog)
// GET /v1/log to mux. The metrics listener mounts the page and the
// dashboard; the API listeners all three, behind their own checks.
func (d *Daemon) mountDashboard(mux *http.ServeMux, withLog bool) *http.ServeMux {
	page := statuspage.Handler()
	for _, p := range pagePatterns {
		mux.Handle(p, page)
	}
	mux.HandleFunc("GET /v1/dashboard", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = json.NewEncoder(w).Encode(d.dashboard()) // fails only if the client hung up
	})
	if withLog {
		mux.HandleFunc("GET /v1/log", d.serveLog)
	}
	return mux
}

// apiHandler is an API listener's handler: the API, the status page,
// /v1/dashboard and /v1/log behind the listener's checks (Host, Origin,
// token). The page's own files need no token: a browser cannot send a
// bearer header when it opens the page; the files hold no data, and the
// page then sends the token (from its URL fragment) with every fetch.
func (d *Daemon) apiHandler(a mgmt.Access) http.Handler {
	mux := d.mountDashboard(mgmt.Routes(d), true)
	guarded := mgmt.Guard(mux, a)
	pageOnly := a
	pageOnly.Token = ""
	page := mgmt.Guard(mux, pageOnly)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); slices.Contains(pagePatterns, pattern) {
			page.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// dashboard is the last sample with the daemon's own state, which is
// cheap, read now.
func (d *Daemon) dashboard() *mgmt.Dashboard {
	d.mu.Lock()
	out := &mgmt.Dashboard{Time: time.Now(), ConfigFile: d.opts.ConfigPath, Revision: d.rev, Started: d.started,
		SampleSeconds: int(sampleEvery / time.Second), Tenants: []mgmt.DashTenant{}}
	if d.pending != nil {
		p := d.pending.Pending
		out.PendingConfirm = &p
	}
	d.mu.Unlock()
	out.Reloads = d.metrics.recentReloads()
	out.Store = d.StoreHealth() // what status and the metric report
	if c := d.obs.dash; c != nil {
		c.mu.Lock()
		if c.tenants != nil {
			out.Time, out.Tenants = c.at, c.tenants
		}
		c.mu.Unlock()
	}
	return out
}

// collector samples the tenants for the dashboard. Its run goroutine owns
// the previous counters and the histories; mu guards the published
// sample.
type collector struct {
	d      *Daemon
	kickCh chan struct{}

	mu      sync.Mutex
	at      time.Time
	tenants []mgmt.DashTenant

	prevAt time.Time
	prev   map[string]uint64    // counter key → last value
	hist   map[string][]float64 // series key → points, oldest first
	pos    map[*config.Config]map[string]map[string]string
}

func newCollector(d *Daemon) *collector {
	return &collector{d: d, kickCh: make(chan struct{}, 1), prev: map[string]uint64{}, hist: map[string][]float64{}}
}

// kick asks for a sample now (after an apply).
func (c *collector) kick() {
	select {
	case c.kickCh <- struct{}{}:
	default:
	}
}

func (c *collector) run(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kickCh:
		}
		c.sample(time.Now())
	}
}

// sample reads every tenant once and publishes the result.
func (c *collector) sample(now time.Time) {
	d := c.d
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	dt := now.Sub(c.prevAt).Seconds()
	if c.prevAt.IsZero() || dt < 0.5 {
		dt = 0 // first sample, or a kick right after a tick: no rate
	}
	prev, hist := c.prev, c.hist
	c.prev, c.hist = map[string]uint64{}, map[string][]float64{}
	// rate turns a counter into a per-second rate and extends its series.
	// A sample too close to the last one (a kick right after a tick)
	// measures no rate: it keeps the previous counters and rates.
	rate := func(key string, v uint64) (float64, []float64) {
		old, seen := prev[key]
		h := hist[key]
		if dt == 0 || !seen {
			c.prev[key], c.hist[key] = v, h
			if seen {
				c.prev[key] = old
			}
			last := 0.0
			if len(h) > 0 {
				last = h[len(h)-1]
			}
			return last, slices.Clone(h)
		}
		c.prev[key] = v
		r := 0.0
		if v >= old { // a counter reset (NIC replaced) counts as nothing
			r = float64(v-old) / dt
		}
		h = append(h, r)
		if len(h) > mgmt.DashboardSamples {
			h = h[len(h)-mgmt.DashboardSamples:]
		}
		c.hist[key] = h
		return r, slices.Clone(h)
	}
	positions := c.positions(cfg)
	out := []mgmt.DashTenant{}
	for i, s := range d.snapshot(cfg) {
		t := cfg.Tenants[i]
		tv := mgmt.DashTenant{Name: s.Name, Interfaces: []mgmt.DashInterface{}, TopRules: []mgmt.DashCounter{},
			Drops: []mgmt.DashCounter{}, NAT: []mgmt.DashCounter{}, Routes: map[string]int{},
			Conntrack: s.CTCount, ConntrackLimit: s.CTMax}
		for _, ci := range t.Interfaces {
			di := mgmt.DashInterface{Name: ci.Name, Device: cmp.Or(ci.Device, ci.Parent), State: "absent", Addresses: []string{}}
			if l := findLink(s.Links, ci.Name); l != nil {
				di.State = "down"
				if linkUp(l) {
					di.State = "up"
				}
				for _, a := range l.Addrs {
					di.Addresses = append(di.Addresses, a.String())
				}
				k := s.Name + "\x00" + ci.Name
				di.RxBps, di.RxHist = rate(k+"\x00rx", l.RxBytes)
				di.TxBps, di.TxHist = rate(k+"\x00tx", l.TxBytes)
			}
			tv.Interfaces = append(tv.Interfaces, di)
		}
		var newPkts uint64
		tv.TopRules, tv.Drops, tv.NAT, newPkts = ruleCounters(s, t, positions[t.Name])
		if s.RulesOK && t.Policy.Enabled {
			tv.NewConnsPerSec, tv.NewConnsHist = rate(s.Name+"\x00new", newPkts)
		}
		if tv.NewConnsHist == nil {
			tv.NewConnsHist = []float64{}
		}
		if s.Static != nil {
			n := 0
			for _, v := range s.Static {
				n += v
			}
			tv.Routes["static"] = n
		}
		if n := s.bgpRoutes(); n >= 0 {
			tv.Routes["bgp"] = n
		}
		if s.BGP != nil {
			for _, n := range s.BGP.Neighbors {
				tv.Neighbors = append(tv.Neighbors, mgmt.DashNeighbor{Address: n.Address, ASN: n.ASN, Description: n.Description,
					State: n.State, UptimeS: int64(n.Uptime), Received: int(n.Received), Accepted: int(n.Accepted)})
			}
		}
		out = append(out, tv)
	}
	if dt != 0 || c.prevAt.IsZero() {
		c.prevAt = now
	}
	c.mu.Lock()
	c.at, c.tenants = now, out
	c.mu.Unlock()
}

func findLink(links []*zones.Link, name string) *zones.Link {
	for _, l := range links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// ruleCounters splits a tenant's counters into the busiest config rules,
// the default-verdict counters and the NAT entries, summed per identity.
// A NAT entry's rules (prerouting, the port-forward admit) see the same
// packets: its figure is the largest of them, not their sum.
//
// newPkts counts the packets that opened a connection (or tried to): the
// ruleset accepts established and related packets before any rule, so
// every packet a filter rule, a port-forward admit or a default verdict
// counts is in conntrack state new, and each is counted by exactly one
// of them. (Conntrack's own per-CPU "insert" statistic would say the
// same without a policy, but kernels since 5.x no longer increment it for
// packet-created connections: it reads 0.)
func ruleCounters(s *tenantSnapshot, t *config.Tenant, pos map[string]string) (top, drops, nat []mgmt.DashCounter, newPkts uint64) {
	natIDs := map[string]bool{}
	for _, n := range t.Policy.NAT {
		natIDs[n.ID] = true
	}
	by := map[string]*mgmt.DashCounter{}
	var order []string
	for _, r := range s.Rules {
		builtinDefault := strings.HasPrefix(r.ID, "_default/")
		if r.ConfigRules == 0 && !builtinDefault && !natIDs[r.ID] {
			continue // hygiene, dispatch
		}
		c := by[r.ID]
		if c == nil {
			c = &mgmt.DashCounter{ID: r.ID, Pos: pos[r.ID], Comment: r.Comment}
			by[r.ID] = c
			order = append(order, r.ID)
		}
		if natIDs[r.ID] {
			c.Packets, c.Bytes = max(c.Packets, r.Packets), max(c.Bytes, r.Bytes)
			if slices.Contains(r.Chains, "hook_forward") { // the port-forward admit
				newPkts += r.Packets
			}
		} else {
			c.Packets, c.Bytes = c.Packets+r.Packets, c.Bytes+r.Bytes
			newPkts += r.Packets
		}
	}
	top, drops, nat = []mgmt.DashCounter{}, []mgmt.DashCounter{}, []mgmt.DashCounter{}
	for _, id := range order {
		switch c := *by[id]; {
		case natIDs[id]:
			nat = append(nat, c)
		case strings.HasPrefix(id, "_default/"):
			drops = append(drops, c)
		default:
			top = append(top, c)
		}
	}
	busiest := func(a, b mgmt.DashCounter) int {
		return cmp.Or(cmp.Compare(b.Packets, a.Packets), cmp.Compare(a.ID, b.ID))
	}
	slices.SortStableFunc(top, busiest)
	slices.SortStableFunc(drops, busiest)
	if len(top) > topRules {
		top = top[:topRules]
	}
	return top, drops, nat, newPkts
}

// positions maps each tenant's rule and NAT identities to their place in
// the TOML (`rule[3]`, `nat[0]`), computed once per configuration.
func (c *collector) positions(cfg *config.Config) map[string]map[string]string {
	if p, ok := c.pos[cfg]; ok {
		return p
	}
	p := map[string]map[string]string{}
	for _, t := range cfg.Tenants {
		m := map[string]string{}
		for _, r := range t.Policy.Rules {
			if _, dup := m[r.ID]; !dup {
				m[r.ID] = "rule[" + strconv.Itoa(r.Index) + "]"
			}
		}
		for _, n := range t.Policy.NAT {
			m[n.ID] = "nat[" + strconv.Itoa(n.Index) + "]"
		}
		p[t.Name] = m
	}
	c.pos = map[*config.Config]map[string]map[string]string{cfg: p}
	return p
}
