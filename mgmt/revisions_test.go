package mgmt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A corrupt revision (torn metadata) is skipped, not fatal to the
// history, and numbers keep growing past it.
func TestFaultStoreSkipsCorruptRevision(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "revs")}
	now := time.Now()
	for i := 1; i <= 3; i++ {
		if _, err := s.Add([]byte{byte('a' + i)}, nil, "reload", now); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"000002.json", "000003.json"} {
		if err := os.WriteFile(filepath.Join(s.Dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	revs, err := s.List()
	if err != nil || len(revs) != 1 || revs[0].Number != 1 {
		t.Fatalf("list with corrupt revisions: %+v %v", revs, err)
	}
	if _, _, err := s.Get(3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("get corrupt: %v", err)
	}
	r, err := s.Add([]byte("new"), nil, "reload", now)
	if err != nil || r.Number != 4 {
		t.Fatalf("add after corrupt: %+v %v", r, err)
	}
}

// A revision keeps the files the configuration references.
func TestStoreFiles(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "revs"), Keep: 2}
	files := map[string][]byte{"/etc/fwd/block.txt": []byte("192.0.2.1\n"), "/etc/fwd/a.txt": []byte("198.51.100.0/24\n")}
	r, err := s.Add([]byte("toml"), files, "reload", time.Now())
	if err != nil || len(r.Files) != 2 || r.Files[0].Path != "/etc/fwd/a.txt" {
		t.Fatalf("add: %+v %v", r, err)
	}
	got, err := s.Files(r.Number)
	if err != nil || len(got) != 2 || string(got["/etc/fwd/block.txt"]) != "192.0.2.1\n" {
		t.Fatalf("files: %q %v", got, err)
	}
	if revs, _ := s.List(); len(revs) != 1 || revs[0].Sums()["/etc/fwd/a.txt"] != FileSums(files)["/etc/fwd/a.txt"] {
		t.Fatalf("sums: %+v", revs)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "000001.set-1"), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Files(1); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("tampered set copy: %v", err)
	}
	// Pruning removes the copies too.
	for range 2 {
		if _, err := s.Add([]byte("x"), nil, "reload", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "000001.set-0")); !os.IsNotExist(err) {
		t.Fatalf("pruned set copy still there: %v", err)
	}
}

// An empty or torn pending.json is an error, never "nothing pending".
func TestFaultLoadPendingCorrupt(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	if p, err := s.LoadPending(); p != nil || err != nil {
		t.Fatalf("none: %v %v", p, err)
	}
	for _, body := range []string{"", "{", `{"revision":3}`} {
		if err := os.WriteFile(filepath.Join(s.Dir, "pending.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if p, err := s.LoadPending(); p != nil || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%q: %v %v", body, p, err)
		}
	}
	want := &Pending{Revision: 3, Previous: 2, Deadline: time.Now().Add(time.Minute).Round(0)}
	if err := s.SavePending(want); err != nil {
		t.Fatal(err)
	}
	if p, err := s.LoadPending(); err != nil || p.Revision != 3 || !p.Deadline.Equal(want.Deadline) {
		t.Fatalf("saved: %+v %v", p, err)
	}
}

// A failed write leaves the previous file whole and is reported by
// Health until a write succeeds.
func TestFaultWriteFailureKeepsPreviousFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory modes; the kernel test covers a read-only mount")
	}
	s := &Store{Dir: t.TempDir()}
	r, err := s.Add([]byte("one"), nil, "reload", time.Now())
	if err != nil || !s.Health().OK {
		t.Fatal(err)
	}
	if err := os.Chmod(s.Dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(s.Dir, 0o700) })
	if _, err := s.Add([]byte("two"), nil, "reload", time.Now()); err == nil || s.Health().OK {
		t.Fatalf("add to a read-only dir: %v %+v", err, s.Health())
	}
	if _, data, err := s.Get(r.Number); err != nil || string(data) != "one" {
		t.Fatalf("previous revision: %q %v", data, err)
	}
	if err := os.Chmod(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add([]byte("two"), nil, "reload", time.Now()); err != nil || !s.Health().OK {
		t.Fatalf("after recovery: %v %+v", err, s.Health())
	}
}
