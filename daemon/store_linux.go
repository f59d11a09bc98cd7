package daemon

import (
	"github.com/fwdproject/fwd/mgmt"
	"github.com/prometheus/client_golang/prometheus"
)

// The revision store's health: a store that cannot be written (full
// disk, read-only directory) does not stop the daemon, but it is never
// silent either: the reload's caller gets Result.StoreError, `fwd
// status` shows it and the metric fwd_revision_store_ok drops to 0.

// StoreHealth is whether the last write to the revision store worked.
func (d *Daemon) StoreHealth() *mgmt.StoreHealth {
	h := d.store.Health()
	return &h
}

func (d *Daemon) registerStoreMetric() {
	d.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fwd_revision_store_ok",
		Help: "1 if the last write to the revision store (revisions, pending confirm) succeeded, 0 if it failed (full disk, read-only directory).",
	}, func() float64 {
		if d.store.Health().OK {
			return 1
		}
		return 0
	}))
}
