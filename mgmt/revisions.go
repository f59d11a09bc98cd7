package mgmt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Store keeps applied configurations as numbered files in Dir:
// NNNNNN.toml (the file exactly as applied), NNNNNN.set-K (the K-th file
// it references, a set file) and NNNNNN.json (metadata, written last).
// Numbers only grow; the oldest are pruned beyond Keep.
//
// Every write goes to a temporary file that is fsynced and renamed over
// the target, and the directory is fsynced after: a full disk or a crash
// leaves the previous file, never a short one. A write that fails is
// returned and remembered (Health), until a later write succeeds.
type Store struct {
	Dir  string
	Keep int
	// Log receives the warnings about revisions skipped as corrupt (nil
	// discards them).
	Log *slog.Logger

	mu     sync.Mutex
	health error // the last write's failure, nil once one succeeds
}

// Checksum is the sha256 of a configuration file, hex.
func Checksum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// FileSums are the checksums of the files a configuration references,
// by path: what a revision's Files say, for comparing two revisions.
func FileSums(files map[string][]byte) map[string]string {
	out := make(map[string]string, len(files))
	for p, b := range files {
		out[p] = Checksum(b)
	}
	return out
}

// Sums returns the revision's file checksums by path.
func (r Revision) Sums() map[string]string {
	out := make(map[string]string, len(r.Files))
	for _, f := range r.Files {
		out[f.Path] = f.SHA256
	}
	return out
}

// ErrCorrupt marks a stored file that exists but cannot be read back
// (torn write, disk corruption, a hand edit).
var ErrCorrupt = errors.New("corrupt")

func (s *Store) path(n int, ext string) string {
	return filepath.Join(s.Dir, fmt.Sprintf("%06d.%s", n, ext))
}

func (s *Store) warn(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Warn(msg, args...)
	}
}

// Health reports whether the store could be written the last time it
// was (a store never written yet is probed with Check).
func (s *Store) Health() StoreHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.health != nil {
		return StoreHealth{OK: false, Error: s.health.Error()}
	}
	return StoreHealth{OK: true}
}

// record remembers the outcome of a write for Health. Caller holds s.mu.
func (s *Store) record(err error) error {
	s.health = err
	return err
}

// Check probes that Dir can be written (created if missing) and records
// the outcome for Health.
func (s *Store) Check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return s.record(err)
	}
	probe := filepath.Join(s.Dir, ".probe")
	err := WriteFileAtomic(probe, []byte("fwd\n"), 0o600)
	if err == nil {
		err = os.Remove(probe)
	}
	return s.record(err)
}

// List returns the stored revisions, oldest first. A revision whose
// metadata is unreadable is skipped with a warning: one bad file must
// not hide the history.
func (s *Store) List() ([]Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	revs, _, err := s.list()
	return revs, err
}

// list also returns the highest revision number present, corrupt ones
// included, so that numbers only grow.
func (s *Store) list() ([]Revision, int, error) {
	ents, err := os.ReadDir(s.Dir)
	if os.IsNotExist(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var revs []Revision
	top := 0
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		top = max(top, n)
		b, err := os.ReadFile(filepath.Join(s.Dir, e.Name()))
		var r Revision
		if err == nil {
			if jerr := json.Unmarshal(b, &r); jerr != nil || r.Number != n {
				err = fmt.Errorf("revision %d: %w metadata", n, ErrCorrupt)
			}
		}
		if err != nil {
			s.warn("revision skipped", "file", filepath.Join(s.Dir, e.Name()), "error", err)
			continue
		}
		revs = append(revs, r)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Number < revs[j].Number })
	return revs, top, nil
}

// Get returns a revision and its configuration file.
func (s *Store) Get(n int) (Revision, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.meta(n)
	if err != nil {
		return Revision{}, nil, err
	}
	data, err := os.ReadFile(s.path(n, "toml"))
	if err != nil {
		return Revision{}, nil, fmt.Errorf("revision %d: %w", n, err)
	}
	if Checksum(data) != r.SHA256 {
		return Revision{}, nil, fmt.Errorf("revision %d: checksum mismatch: the stored file was modified", n)
	}
	return r, data, nil
}

func (s *Store) meta(n int) (Revision, error) {
	b, err := os.ReadFile(s.path(n, "json"))
	if os.IsNotExist(err) {
		return Revision{}, fmt.Errorf("revision %d: %w", n, ErrNotFound)
	}
	if err != nil {
		return Revision{}, err
	}
	var r Revision
	if err := json.Unmarshal(b, &r); err != nil {
		return Revision{}, fmt.Errorf("revision %d: %w metadata: %w", n, ErrCorrupt, err)
	}
	return r, nil
}

// Files returns the content of the files revision n references, by
// path (empty for a revision without any, or stored before fwd kept
// them).
func (s *Store) Files(n int) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.meta(n)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(r.Files))
	for k, f := range r.Files {
		b, err := os.ReadFile(s.path(n, "set-"+strconv.Itoa(k)))
		if err != nil {
			return nil, fmt.Errorf("revision %d: %s: %w", n, f.Path, err)
		}
		if Checksum(b) != f.SHA256 {
			return nil, fmt.Errorf("revision %d: %s: checksum mismatch: the stored copy was modified", n, f.Path)
		}
		out[f.Path] = b
	}
	return out, nil
}

// Add stores data and the files it references (by path) as the next
// revision and prunes old ones. On error nothing of the new revision is
// visible and the earlier ones are untouched.
func (s *Store) Add(data []byte, files map[string][]byte, reason string, now time.Time) (Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.add(data, files, reason, now)
	return r, s.record(err)
}

func (s *Store) add(data []byte, files map[string][]byte, reason string, now time.Time) (Revision, error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Revision{}, err
	}
	revs, top, err := s.list()
	if err != nil {
		return Revision{}, err
	}
	r := Revision{Number: top + 1, Time: now.UTC(), SHA256: Checksum(data), Size: len(data), Reason: reason}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		r.Files = append(r.Files, RevisionFile{Path: p, SHA256: Checksum(files[p]), Size: len(files[p])})
	}
	meta, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return Revision{}, err
	}
	// The content first, the metadata last: List only sees complete
	// revisions. A failure removes what this revision had written.
	written := []string{s.path(r.Number, "toml")}
	err = writeAtomic(written[0], data)
	for k, f := range r.Files {
		if err != nil {
			break
		}
		p := s.path(r.Number, "set-"+strconv.Itoa(k))
		written = append(written, p)
		err = writeAtomic(p, files[f.Path])
	}
	if err == nil {
		err = writeAtomic(s.path(r.Number, "json"), append(meta, '\n'))
	}
	if err != nil {
		for _, p := range written {
			os.Remove(p)
		}
		return Revision{}, fmt.Errorf("store revision %d in %s: %w", r.Number, s.Dir, err)
	}
	revs = append(revs, r)
	for s.Keep > 0 && len(revs) > s.Keep {
		s.remove(revs[0])
		revs = revs[1:]
	}
	return r, nil
}

// remove deletes a pruned revision, its metadata first.
func (s *Store) remove(r Revision) {
	os.Remove(s.path(r.Number, "json"))
	os.Remove(s.path(r.Number, "toml"))
	for k := range r.Files {
		os.Remove(s.path(r.Number, "set-"+strconv.Itoa(k)))
	}
}

// writeAtomic replaces path with data (same directory temp file + rename).
func writeAtomic(path string, data []byte) error {
	return WriteFileAtomic(path, data, 0o600)
}

// WriteFileAtomic replaces path with data so readers see the old or the
// new content, never a mix, and a crash or a full disk never leaves a
// short file: the data is fsynced before the rename, the directory after.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	// Every error reaches the rename check: a short write must never
	// replace the file.
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// SavePending records an unconfirmed change (nil clears it), so that a
// daemon restarted before the deadline still rolls it back.
func (s *Store) SavePending(p *Pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(s.Dir, "pending.json")
	if p == nil {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return s.record(err)
		}
		if err := syncDir(s.Dir); err != nil && !os.IsNotExist(err) {
			return s.record(err)
		}
		return nil
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return s.record(err)
	}
	b, err := json.Marshal(p)
	if err == nil {
		err = writeAtomic(path, b)
	}
	return s.record(err)
}

// LoadPending returns the recorded unconfirmed change, or nil when none
// is recorded. A record that exists but cannot be read (empty, torn)
// returns an error wrapping ErrCorrupt: a change was awaiting
// confirmation, and the caller must not take it for confirmed.
func (s *Store) LoadPending() (*Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(s.Dir, "pending.json"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Pending
	if err := json.Unmarshal(b, &p); err != nil || p.Deadline.IsZero() {
		if err == nil {
			err = errors.New("incomplete record")
		}
		return nil, fmt.Errorf("pending.json: %w: %w", ErrCorrupt, err)
	}
	return &p, nil
}
