package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/pktlog"
)

// Packets that `log = true` rules hand to NFLOG (policy logs to group
// pktlog.Group) are read by one pktlog.Reader per tenant namespace that
// has a log rule. Each becomes one structured log line and an entry of a
// bounded ring that GET /v1/log (`fwd log [-f]`) serves. Rates are bounded
// upstream by the rule's log_limit.

// ringSize bounds the entries kept for `fwd log`.
const ringSize = 4096

// packetLogs runs the readers. sync (after every apply) starts a reader
// for every tenant with a log rule and stops those of tenants that lost
// theirs or went away; a reader that fails is reopened with a backoff.
type packetLogs struct {
	log  *slog.Logger
	ring *pktlog.Ring

	mu      sync.Mutex
	readers map[string]context.CancelFunc
	wg      sync.WaitGroup
}

func newPacketLogs(log *slog.Logger) *packetLogs {
	return &packetLogs{log: log, ring: pktlog.NewRing(ringSize), readers: map[string]context.CancelFunc{}}
}

// hasLogRule reports whether the tenant's policy logs anything.
func hasLogRule(t *config.Tenant) bool {
	for _, r := range t.Policy.Rules {
		if r.Log {
			return true
		}
	}
	return false
}

func (p *packetLogs) sync(ctx context.Context, cfg *config.Config) {
	want := map[string]bool{}
	for _, t := range cfg.Tenants {
		if t.Policy.Enabled && hasLogRule(t) {
			want[t.Name] = true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, stop := range p.readers {
		if !want[name] {
			stop()
			delete(p.readers, name)
		}
	}
	for name := range want {
		if _, ok := p.readers[name]; ok || ctx.Err() != nil {
			continue
		}
		rctx, stop := context.WithCancel(ctx)
		p.readers[name] = stop
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.read(rctx, name)
		}()
	}
}

// wait returns once every reader has stopped; their context is done, so
// no sync starts another once wait holds mu.
func (p *packetLogs) wait() {
	p.mu.Lock()
	p.mu.Unlock() //nolint:staticcheck // a barrier: sync checks ctx under mu
	p.wg.Wait()
}

// read keeps one tenant's reader running until ctx ends: reopened after
// a failure (or while the namespace does not exist yet), 1 s doubling to
// 30 s, the delay reset after a minute of health.
func (p *packetLogs) read(ctx context.Context, tenant string) {
	log := p.log.With("tenant", tenant)
	backoff := time.Second
	for {
		began := time.Now()
		err := p.readOnce(ctx, tenant, log)
		if ctx.Err() != nil {
			log.Debug("packet log reader stopped")
			return
		}
		if time.Since(began) > time.Minute {
			backoff = time.Second
		}
		if errors.Is(err, ns.ErrNotFound) {
			log.Debug("packet log waits for the namespace", "retry_in", backoff.String())
		} else {
			log.Warn("packet log reader failed; restarting", "error", err, "retry_in", backoff.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (p *packetLogs) readOnce(ctx context.Context, tenant string, log *slog.Logger) error {
	h, err := ns.Open(tenant)
	if err != nil {
		return err
	}
	defer h.Close()
	r, err := pktlog.Open(tenant, h, log)
	if err != nil {
		return err
	}
	defer r.Close()
	log.Info("packet log reader started", "group", pktlog.Group)
	err = r.Run(ctx, func(e pktlog.Entry) {
		p.ring.Add(e)
		attrs := []any{"tenant", e.Tenant, "rule", e.Rule, "prefix", e.Prefix, "in", e.In, "out", e.Out,
			"proto", e.Proto, "src", e.Src.String(), "dst", e.Dst.String()}
		if e.SPort != 0 || e.DPort != 0 {
			attrs = append(attrs, "sport", e.SPort, "dport", e.DPort)
		}
		if e.ICMPType != nil {
			attrs = append(attrs, "icmp_type", *e.ICMPType, "icmp_code", *e.ICMPCode)
		}
		p.log.Info("packet logged", append(attrs, "length", e.Length)...)
	})
	if err == nil && ctx.Err() == nil {
		err = errors.New("reader ended")
	}
	return err
}

// serveLog is GET /v1/log?tenant=T&follow=1&n=N: the last N (default 100)
// logged packets as newline-delimited JSON (pktlog.Entry), then, with
// follow, every new one as it comes until the client goes away.
func (d *Daemon) serveLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tenant := q.Get("tenant")
	if tenant != "" {
		d.mu.Lock()
		known := d.cfg.Tenant(tenant) != nil
		d.mu.Unlock()
		if !known {
			http.Error(w, "no tenant "+strconv.Quote(tenant)+" in the running configuration", http.StatusNotFound)
			return
		}
	}
	n := 100
	if v := q.Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			http.Error(w, "n must be a number ≥ 0", http.StatusBadRequest)
			return
		}
	}
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	d.obs.start(d) // the ring exists even before the first apply
	logs := d.obs.logs
	if logs == nil {
		http.Error(w, "the daemon is stopping", http.StatusServiceUnavailable)
		return
	}
	done := d.obs.ctx.Done()
	rc := http.NewResponseController(w)
	if follow {
		_ = rc.SetWriteDeadline(time.Time{}) // a stream has no end
	}
	enc := json.NewEncoder(w)
	entries, next, _, wake := logs.ring.Since(0, tenant)
	if len(entries) > n {
		entries = entries[len(entries)-n:]
	}
	for {
		for _, e := range entries {
			if enc.Encode(e) != nil {
				return
			}
		}
		if !follow {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-done:
			return
		case <-wake:
		}
		entries, next, _, wake = logs.ring.Since(next, tenant)
	}
}
