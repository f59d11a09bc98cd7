package zones

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/vishvananda/netns"
)

// Manager observes, plans and applies tenant namespaces and their links.
// It must be created in the default namespace, which it remembers as the
// home of free NICs.
type Manager struct {
	defaultNS netns.NsHandle
	log       *slog.Logger

	mu    sync.Mutex
	watch *Watch // nil unless Watch was called
}

// NewManager returns a Manager for the caller's current (default)
// namespace. log receives the warnings of each Apply; nil discards them.
func NewManager(log *slog.Logger) (*Manager, error) {
	h, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("default namespace: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{defaultNS: h, log: log}, nil
}

func (m *Manager) watching() *Watch {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.watch
}

// Close releases the default namespace handle.
func (m *Manager) Close() { m.defaultNS.Close() }

// Result is the outcome of an Apply.
type Result struct {
	// Changes lists the steps done, in order (up to the failing one).
	Changes  []change.Change `json:"changes"`
	Warnings []string        `json:"warnings,omitempty"`
	Absent   []string        `json:"absent,omitempty"`
}

// Observe reads the current state of the default and tenant namespaces.
func (m *Manager) Observe() (*State, error) { return Observe(m.defaultNS) }

// Plan observes the kernel and computes (Compute, pure) the steps that
// make it match cfg's tenants and interfaces. It changes nothing: a dry
// run is a Plan without Apply.
func (m *Manager) Plan(ctx context.Context, cfg *config.Config) (*Plan, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := m.Observe()
	if err != nil {
		return nil, err
	}
	return Compute(cfg, st)
}

// Apply runs p's steps in order; it is the only code in zones that
// writes to the kernel. It stops at the first failing step and returns
// the changes made so far with the error. It logs p's warnings.
func (m *Manager) Apply(ctx context.Context, p *Plan) (*Result, error) {
	res := &Result{Warnings: p.Warnings, Absent: p.Absent}
	for _, w := range p.Warnings {
		m.log.Warn(w)
	}
	if len(p.Steps) == 0 {
		return res, nil
	}
	ex, err := newExecutor(m.defaultNS)
	if err != nil {
		return res, err
	}
	defer ex.close()
	for _, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		c := s.Change()
		w := m.watching()
		if s.Op == OpDeleteNamespace && w != nil {
			w.remove(s.Tenant)
		}
		if err := ex.run(s); err != nil {
			return res, fmt.Errorf("%s: %w", c, err)
		}
		if s.Op == OpCreateNamespace && w != nil {
			if err := w.add(s.Tenant); err != nil {
				m.log.Warn("link watch: cannot watch the new namespace", "namespace", s.Tenant, "error", err)
			}
		}
		res.Changes = append(res.Changes, c)
	}
	return res, nil
}
