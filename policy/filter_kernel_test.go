//go:build kernel

package policy

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestFilterAndNAT(t *testing.T) {
	l := newLab(t)
	serve(t, l.wan, "203.0.113.2:80")
	serve(t, l.lan, "192.0.2.10:80")
	serve(t, l.fw, "203.0.113.1:2222")
	serve(t, l.fw, "203.0.113.1:22")
	route(t, l.wan, "192.0.2.0/24", "203.0.113.1")

	// Before the policy, WAN reaches the LAN directly.
	if _, err := connect(l.wan, "192.0.2.10:80"); err != nil {
		t.Fatalf("no policy: wan -> lan: %v", err)
	}
	tn := tenantFrom(t, labPolicy)
	mustApply(t, tn, l.fw)
	out := nft(t, l.fwN, "list", "ruleset")
	if !strings.Contains(out, "table inet fwd_policy") {
		t.Fatalf("nft list ruleset does not show fwd's table:\n%s", out)
	}

	t.Run("lan to wan is masqueraded", func(t *testing.T) {
		src, err := connect(l.lan, "203.0.113.2:80")
		if err != nil {
			t.Fatal(err)
		}
		if src != "203.0.113.1" {
			t.Fatalf("wan server saw source %s, want the masqueraded 203.0.113.1", src)
		}
	})
	t.Run("wan to lan is dropped", func(t *testing.T) {
		_, err := connect(l.wan, "192.0.2.10:80")
		if !isTimeout(err) {
			t.Fatalf("want a timeout, got %v", err)
		}
	})
	t.Run("port-forward reaches the lan server", func(t *testing.T) {
		src, err := connect(l.wan, "203.0.113.1:8080")
		if err != nil {
			t.Fatal(err)
		}
		if src != "203.0.113.2" {
			t.Fatalf("lan server saw %s, want the wan client 203.0.113.2", src)
		}
	})
	t.Run("ssh from wan is rejected", func(t *testing.T) {
		before := counterOf(t, l.fw, "ssh-wan")
		_, err := connect(l.wan, "203.0.113.1:22")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("want connection refused (tcp reset), got %v", err)
		}
		if after := counterOf(t, l.fw, "ssh-wan"); after <= before {
			t.Fatalf("ssh-wan counter did not increase: %d -> %d", before, after)
		}
	})
	t.Run("allowed input connects, counters move on that rule only", func(t *testing.T) {
		before := counterOf(t, l.fw, "admin-wan")
		if _, err := connect(l.wan, "203.0.113.1:2222"); err != nil {
			t.Fatal(err)
		}
		if after := counterOf(t, l.fw, "admin-wan"); after != before+1 {
			t.Fatalf("admin-wan counter %d -> %d, want +1 (only the first packet walks the policy)", before, after)
		}
		if n := counterOf(t, l.fw, "never"); n != 0 {
			t.Fatalf("rule never matched but counts %d packets", n)
		}
	})
	t.Run("wan to self default drops", func(t *testing.T) {
		_, err := connect(l.wan, "203.0.113.1:2223")
		if !isTimeout(err) {
			t.Fatalf("want a timeout, got %v", err)
		}
	})
	t.Run("unchanged config sends nothing", func(t *testing.T) {
		chg, err := reconcile(t, tn, l.fw)
		if err != nil || len(chg) != 0 {
			t.Fatalf("second reconcile: %v %v", chg, err)
		}
	})
}
