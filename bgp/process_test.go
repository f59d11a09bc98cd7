package bgp

import (
	"os"
	"path/filepath"
	"testing"
)

// A speaker stopped for good removes its own files only: the tenant's run
// directory also holds its HA pair's and dnsmasq's files (it used to be
// removed whole, taking conntrackd's socket and dnsmasq's leases along).
func TestRemoveSpeakerFilesKeepsOthers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "edge")
	if err := os.MkdirAll(filepath.Join(dir, "ha"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{pidFileName, appliedFileName, "speaker.log", "gobgp.sock", "fib.json", "ha/keepalived.conf"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removeSpeakerFiles(dir)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "ha" {
		t.Fatalf("left %v, want only ha/", ents)
	}
	if _, err := os.Stat(filepath.Join(dir, "ha", "keepalived.conf")); err != nil {
		t.Fatal(err)
	}
	// With nothing else in it, the directory goes too.
	os.RemoveAll(filepath.Join(dir, "ha"))
	removeSpeakerFiles(dir)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("empty run directory kept: %v", err)
	}
}
