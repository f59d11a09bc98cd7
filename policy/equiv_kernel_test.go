//go:build kernel

package policy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/testkit"
)

var reCounter = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// TestRenderMatchesKernel applies the golden config twice, once over
// netlink and once as `nft -f` of the rendered text, and compares what
// nft lists: the text fwd shows is the ruleset the kernel runs.
func TestRenderMatchesKernel(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, file := range files {
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range cfg.Tenants {
			t.Run(filepath.Base(file)+"/"+tn.Name, func(t *testing.T) { renderMatchesKernel(t, tn) })
		}
	}
}

func renderMatchesKernel(t *testing.T, tn *config.Tenant) {
	testkit.Require(t)
	p := fmt.Sprintf("eq%d", nsSeq.Add(1))
	a, _ := newNS(t, p+"a"), newNS(t, p+"b")
	mustApply(t, tn, a)
	f := filepath.Join(t.TempDir(), "r.nft")
	_ = os.WriteFile(f, []byte(Compile(tn).String()), 0o644)
	if out, err := exec.Command("ip", "netns", "exec", p+"b", "nft", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	norm := func(s string) string { return reCounter.ReplaceAllString(s, "counter") }
	viaNetlink := norm(nft(t, p+"a", "list", "table", "inet", TableName))
	viaText := norm(nft(t, p+"b", "list", "table", "inet", TableName))
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

// TestRenderedParses feeds every golden ruleset to `nft -c -f`: what
// `fwd show ruleset` prints must be valid nft input.
func TestRenderedParses(t *testing.T) {
	testkit.Require(t)
	files, _ := filepath.Glob("testdata/*.nft")
	for _, f := range files {
		out, err := exec.Command("nft", "-c", "-f", f).CombinedOutput()
		if err != nil {
			t.Errorf("nft -c -f %s: %v\n%s", f, err, out)
		}
	}
}
