package mgmt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Store keeps applied configurations as numbered files in Dir:
// NNNNNN.toml (the file exactly as applied) and NNNNNN.json (metadata).
// Numbers only grow; the oldest are pruned beyond Keep.
type Store struct {
	Dir  string
	Keep int
	mu   sync.Mutex
}

// Checksum is the sha256 of a configuration file, hex.
func Checksum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func (s *Store) path(n int, ext string) string {
	return filepath.Join(s.Dir, fmt.Sprintf("%06d.%s", n, ext))
}

// List returns the stored revisions, oldest first.
func (s *Store) List() ([]Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list()
}

func (s *Store) list() ([]Revision, error) {
	ents, err := os.ReadDir(s.Dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var revs []Revision
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var r Revision
		if err := json.Unmarshal(b, &r); err != nil || r.Number != n {
			return nil, fmt.Errorf("revision %s: corrupt metadata", e.Name())
		}
		revs = append(revs, r)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Number < revs[j].Number })
	return revs, nil
}

// Get returns a revision and its configuration file.
func (s *Store) Get(n int) (Revision, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(s.path(n, "json"))
	if os.IsNotExist(err) {
		return Revision{}, nil, fmt.Errorf("revision %d: %w", n, ErrNotFound)
	}
	if err != nil {
		return Revision{}, nil, err
	}
	var r Revision
	if err := json.Unmarshal(b, &r); err != nil {
		return Revision{}, nil, fmt.Errorf("revision %d: corrupt metadata: %w", n, err)
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

// Add stores data as the next revision and prunes old ones.
func (s *Store) Add(data []byte, reason string, now time.Time) (Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Revision{}, err
	}
	revs, err := s.list()
	if err != nil {
		return Revision{}, err
	}
	r := Revision{Number: 1, Time: now.UTC(), SHA256: Checksum(data), Size: len(data), Reason: reason}
	if len(revs) > 0 {
		r.Number = revs[len(revs)-1].Number + 1
	}
	meta, _ := json.MarshalIndent(r, "", "  ")
	// The file first, the metadata last: List only sees complete revisions.
	if err := writeAtomic(s.path(r.Number, "toml"), data); err != nil {
		return Revision{}, err
	}
	if err := writeAtomic(s.path(r.Number, "json"), append(meta, '\n')); err != nil {
		return Revision{}, err
	}
	revs = append(revs, r)
	for s.Keep > 0 && len(revs) > s.Keep {
		os.Remove(s.path(revs[0].Number, "json"))
		os.Remove(s.path(revs[0].Number, "toml"))
		revs = revs[1:]
	}
	return r, nil
}

// writeAtomic replaces path with data (same directory temp file + rename).
func writeAtomic(path string, data []byte) error {
	return WriteFileAtomic(path, data, 0o600)
}

// WriteFileAtomic replaces path with data so readers see the old or the
// new content, never a mix.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	// The write's and the sync's errors must reach the rename check: a
	// short write must never replace the file.
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
			return err
		}
		return nil
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(p)
	return writeAtomic(path, b)
}

// LoadPending returns the recorded unconfirmed change, or nil.
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
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("pending.json: %w", err)
	}
	return &p, nil
}
