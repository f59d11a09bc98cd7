//go:build kernel

package policy

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestConnQuota: tenant A (conntrack_limit = 3) refuses its 4th
// connection and counts the drop, while tenant B (limit 3 too, its own
// count) still opens all of its connections; closing A's connections
// frees its quota again.
func TestConnQuota(t *testing.T) {
	conf := labBase + "[tenant.fw]\nconntrack_limit = 3\n"
	a, b := newLab(t), newLab(t)
	for _, l := range []*lab{a, b} {
		serve(t, l.wan, "203.0.113.2:80")
		route(t, l.wan, "192.0.2.0/24", "203.0.113.1")
		mustApply(t, tenantFrom(t, conf), l.fw)
	}
	if out := nft(t, a.fwN, "list", "chain", "inet", TableName, QuotaChain); !strings.Contains(out, "ct count over 3") {
		t.Fatalf("quota chain:\n%s", out)
	}
	open := func(l *lab, n int) ([]net.Conn, error) {
		var cs []net.Conn
		for i := 0; i < n; i++ {
			c, err := dialIn(l.lan, "203.0.113.2:80", 700*time.Millisecond)
			if err != nil {
				return cs, err
			}
			cs = append(cs, c)
		}
		return cs, nil
	}
	closeAll := func(cs []net.Conn) {
		for _, c := range cs {
			c.Close()
		}
	}
	held, err := open(a, 3)
	if err != nil {
		t.Fatalf("tenant A, 3 connections under its limit: %v", err)
	}
	defer closeAll(held)
	if c, err := dialIn(a.lan, "203.0.113.2:80", 700*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("tenant A: a 4th connection passed its conntrack_limit of 3")
	} else if !isTimeout(err) {
		t.Fatalf("tenant A: 4th connection: want a timeout (dropped), got %v", err)
	}
	if n := counterOf(t, a.fw, idQuota); n == 0 {
		t.Fatal("tenant A: the quota rule counted no drop")
	}
	// Tenant B is unaffected while A is at its limit.
	other, err := open(b, 3)
	defer closeAll(other)
	if err != nil {
		t.Fatalf("tenant B while A is at its limit: %v", err)
	}
	if n := counterOf(t, b.fw, idQuota); n != 0 {
		t.Fatalf("tenant B: the quota dropped %d packets", n)
	}
	// Established connections keep working at the limit.
	if _, err := held[0].Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// Closed connections leave the count (the kernel evicts connections
	// in time_wait or close from a connlimit list).
	closeAll(held)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialIn(a.lan, "203.0.113.2:80", 500*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant A: quota not freed after its connections closed: %v", err)
		}
	}
}
