//go:build kernel

package zones_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// An apply holds a bounded number of descriptors whatever the number of
// tenants: the daemon runs with 1024, and keeping handles (and a
// connection for each hand-back) of every tenant for the whole apply ran
// out of them near 200 tenants. Here 100 tenants move in and hand back a
// NIC each under a limit of 256 descriptors.
func TestFaultApplyDescriptorsBounded(t *testing.T) {
	testkit.Require(t)
	const n = 100
	testnet.Host(t, "h-many")
	var batch, cfg strings.Builder
	for i := range n {
		fmt.Fprintf(&batch, "link add many%d type veth peer name p%d netns h-many\n", i, i)
		fmt.Fprintf(&cfg, "[tenant.m%03d.interface.lan]\ndevice = \"many%d\"\n", i, i)
	}
	bf := filepath.Join(t.TempDir(), "nics")
	if err := os.WriteFile(bf, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	testnet.MustCmd(t, "", "ip", "-batch", bf)
	m := newManager(t)
	teardown(t, m)

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }()

	reconcile(t, m, mustConfig(t, cfg.String()))
	reconcile(t, m, &config.Config{})
	def := testnet.Addrs(t, "")
	for i := range n {
		if _, ok := def[fmt.Sprintf("many%d", i)]; !ok {
			t.Fatalf("many%d not handed back", i)
		}
	}
}
