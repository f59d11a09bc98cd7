package policy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var reCounter = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// TestRenderMatchesKernel applies the golden config twice, once over
// netlink and once as `nft -f` of the rendered text, and compares what
// nft lists: the text fwd shows is the ruleset the kernel runs.
func TestRenderMatchesKernel(t *testing.T) {
	sandbox := newLab(t) // for namespaces only
	tn := loadTenant(t, "testdata/edge.toml", "edge")
	other := newNS(t, sandbox.prefix+"txt")
	mustApply(t, tn, other)
	f := filepath.Join(t.TempDir(), "r.nft")
	os.WriteFile(f, []byte(Compile(tn).String()), 0o644)
	if out, err := exec.Command("ip", "netns", "exec", sandbox.prefix+"fw", "nft", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	norm := func(s string) string { return reCounter.ReplaceAllString(s, "counter") }
	viaNetlink := norm(nft(t, sandbox.prefix+"txt", "list", "table", "inet", TableName))
	viaText := norm(nft(t, sandbox.prefix+"fw", "list", "table", "inet", TableName))
	if viaNetlink != viaText {
		a, b := strings.Split(viaNetlink, "\n"), strings.Split(viaText, "\n")
		for i := 0; i < len(a) && i < len(b); i++ {
			if a[i] != b[i] {
				t.Fatalf("line %d:\nnetlink: %s\nnft -f:  %s", i+1, a[i], b[i])
			}
		}
		if len(a) != len(b) {
			t.Errorf("netlink listing has %d lines, nft -f %d", len(a), len(b))
		}
	}
}
