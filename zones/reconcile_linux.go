package zones

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/change"
	"github.com/vishvananda/netns"
)

// Manager reconciles tenant namespaces and their links. It must be created
// in the default namespace, which it remembers as the home of free NICs.
type Manager struct {
	defaultNS netns.NsHandle
	log       *slog.Logger
}

// NewManager returns a Manager for the caller's current (default) namespace.
func NewManager(log *slog.Logger) (*Manager, error) {
	h, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("default namespace: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Manager{defaultNS: h, log: log.With("subsystem", "zones")}, nil
}

// Close releases the default namespace handle.
func (m *Manager) Close() { m.defaultNS.Close() }

// Result is the outcome of a reconcile.
type Result struct {
	Changes  []change.Change `json:"changes"`
	Warnings []string        `json:"warnings,omitempty"`
	Absent   []string        `json:"absent,omitempty"`
}

// Observe reads the current state.
func (m *Manager) Observe() (*State, error) { return Observe(m.defaultNS) }

// plan observes the kernel and plans the steps towards cfg.
func (m *Manager) plan(cfg *config.Config) (*Plan, error) {
	st, err := m.Observe()
	if err != nil {
		return nil, err
	}
	return Compute(cfg, st)
}

// Diff computes what Reconcile would change, without changing anything.
func (m *Manager) Diff(ctx context.Context, cfg *config.Config) (*Result, error) {
	p, err := m.plan(cfg)
	if err != nil {
		return nil, err
	}
	return &Result{Changes: p.Changes(), Warnings: p.Warnings, Absent: p.Absent}, nil
}

// Reconcile makes the kernel match cfg's tenants and interfaces. It stops
// at the first failing step and returns the changes made so far with the
// error.
func (m *Manager) Reconcile(ctx context.Context, cfg *config.Config) (*Result, error) {
	p, err := m.plan(cfg)
	if err != nil {
		return nil, err
	}
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
		if err := ex.run(s); err != nil {
			return res, fmt.Errorf("%s: %w", c, err)
		}
		res.Changes = append(res.Changes, c)
	}
	return res, nil
}
