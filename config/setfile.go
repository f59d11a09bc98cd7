package config

// Reading set files: the loader step after decoding. Decode names the
// files; this reads them, through a SetCache when the caller keeps one.

import (
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
)

// MaxSetFileBytes bounds a set file (a few million CIDRs fit).
const MaxSetFileBytes = 256 << 20

// readSetFiles reads every set file of cfg, reporting each unreadable or
// malformed one at the set's file key. c may be nil (no cache).
func readSetFiles(cfg *Config, rep *report, c *SetCache) {
	readSetFilesFrom(cfg, rep, c, func(path string) (string, [sha256.Size]byte, error) { return readSetText(path) })
}

// ReadSetFile reads a set file as a load would: only a regular file of
// at most MaxSetFileBytes, opened without blocking, so that a FIFO, a
// device such as /dev/zero or a runaway file neither hangs nor exhausts
// `fwd check` or a reload.
func ReadSetFile(path string) ([]byte, error) {
	text, _, err := readSetText(path)
	if err != nil {
		return nil, err
	}
	return []byte(text), nil
}

// ReadSetFilesWith is ReadSetFiles with each file's content coming from
// read: the daemon keeps what it read (a revision stores the set files
// with the TOML) and restores a revision from its stored copies.
func ReadSetFilesWith(cfg *Config, read func(path string) ([]byte, error)) error {
	return (*SetCache)(nil).ReadSetFilesWith(cfg, read)
}

// ReadSetFilesWith is the package's ReadSetFilesWith through the cache c:
// content that c has parsed before (same path, length and SHA-256) is not
// parsed again.
func (c *SetCache) ReadSetFilesWith(cfg *Config, read func(path string) ([]byte, error)) error {
	rep := &report{file: cfg.File}
	readSetFilesFrom(cfg, rep, c, func(path string) (string, [sha256.Size]byte, error) {
		b, err := read(path)
		if err != nil {
			return "", [sha256.Size]byte{}, err
		}
		return string(b), sha256.Sum256(b), nil
	})
	return rep.result()
}

func readSetFilesFrom(cfg *Config, rep *report, c *SetCache, read func(path string) (string, [sha256.Size]byte, error)) {
	used := map[string]bool{}
	for _, t := range cfg.Tenants {
		for _, s := range t.Policy.Sets {
			if s.File == "" {
				continue
			}
			used[s.File] = true
			f, err := c.fileFrom(s.File, read)
			if err != nil {
				rep.add(&Error{File: rep.file, Line: s.fileLine, Key: s.fileKey, Msg: err.Error()})
				continue
			}
			if len(s.V4)+len(s.V6) == 0 {
				s.V4, s.V6 = f.v4, f.v6 // shared, read-only
				s.fileSum = &f.sum
				continue
			}
			all := make([]AddrRange, 0, len(s.V4)+len(s.V6)+len(f.v4)+len(f.v6))
			all = append(append(append(append(all, s.V4...), s.V6...), f.v4...), f.v6...)
			s.V4, s.V6 = mergeFamilies(all)
		}
	}
	c.keepOnly(used)
}

// FileSum returns the SHA-256 of the set file the set's V4 and V6 were
// parsed from, when they are exactly that file's content (a set with
// inline elements too, or without a file, has none): equal sums mean
// equal V4 and V6, so a consumer can tell an unchanged set without
// reading its ranges. The sum was computed while the file was read.
func (s *AddrSet) FileSum() (sum [sha256.Size]byte, ok bool) {
	if s.fileSum == nil {
		return sum, false
	}
	return *s.fileSum, true
}

// setFile is one parsed set file: its ranges by family, sorted and
// merged, and the SHA-256 of the bytes they were parsed from.
type setFile struct {
	sum    [sha256.Size]byte
	size   int
	v4, v6 []AddrRange
}

// readSetText reads a set file (a regular file of at most
// MaxSetFileBytes, see openRegular) and hashes it while reading.
func readSetText(path string) (string, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, size, err := openRegular(path, MaxSetFileBytes, "set files")
	if err != nil {
		return "", sum, err
	}
	defer f.Close()
	var b strings.Builder
	b.Grow(int(size))
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(&b, h), io.LimitReader(f, MaxSetFileBytes+1))
	if err != nil {
		return "", sum, err
	}
	if n > MaxSetFileBytes {
		return "", sum, fmt.Errorf("%s grew past the %d MiB limit for set files while being read", path, MaxSetFileBytes>>20)
	}
	h.Sum(sum[:0])
	return b.String(), sum, nil
}

// maxBadLines bounds the bad lines of a set file that are reported.
const maxBadLines = 5

// parseSetFile parses one address, CIDR or range per line; '#' starts a
// comment. It walks the bytes once, parses each line in place with
// netip (no regexp, no allocation per line) and sorts and merges each
// family at the end.
func parseSetFile(path, text string) (v4, v6 []AddrRange, err error) {
	var s4, s6 spans
	lines := strings.Count(text, "\n") + 1
	var bad []string
	nbad := 0
	for n := 1; text != ""; n++ {
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		ar, err := ParseAddrRange(line)
		if err != nil {
			if nbad++; nbad <= maxBadLines {
				if len(line) > 100 {
					err = fmt.Errorf("invalid address (a line of %d bytes)", len(line))
				}
				bad = append(bad, fmt.Sprintf("%s:%d: %v", path, n, err))
			}
			continue
		}
		if ar.From.Is4() {
			s4.add(toU128(ar.From), toU128(ar.To), lines-n+1)
		} else {
			s6.add(toU128(ar.From), toU128(ar.To), lines-n+1)
		}
	}
	if nbad > 0 {
		if nbad > maxBadLines {
			bad = append(bad, fmt.Sprintf("%d more bad lines", nbad-maxBadLines))
		}
		return nil, nil, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return s4.merged(false), s6.merged(true), nil
}
