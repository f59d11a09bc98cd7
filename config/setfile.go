package config

// Reading set files: the loader step after decoding. Decode names the
// files; this reads them.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// readSetFiles reads every set file of cfg, reporting each unreadable or
// malformed one at the set's file key.
func readSetFiles(cfg *Config, rep *report) { readSetFilesWith(cfg, rep, ReadSetFile) }

// ReadSetFilesWith is ReadSetFiles with each file's content coming from
// read: the daemon keeps what it read (a revision stores the set files
// with the TOML) and restores a revision from its stored copies.
func ReadSetFilesWith(cfg *Config, read func(path string) ([]byte, error)) error {
	rep := &report{file: cfg.File}
	readSetFilesWith(cfg, rep, read)
	return rep.result()
}

func readSetFilesWith(cfg *Config, rep *report, read func(path string) ([]byte, error)) {
	for _, t := range cfg.Tenants {
		for _, s := range t.Policy.Sets {
			if s.File == "" {
				continue
			}
			data, err := read(s.File)
			if err == nil {
				err = s.parseFile(s.File, data)
			}
			if err != nil {
				rep.add(&Error{File: rep.file, Line: s.fileLine, Key: s.fileKey, Msg: err.Error()})
			}
		}
	}
}

func (s *AddrSet) add(ar AddrRange) {
	if ar.From.Is4() {
		s.V4 = append(s.V4, ar)
	} else {
		s.V6 = append(s.V6, ar)
	}
}

// maxSetFileBytes bounds a set file (a few million CIDRs fit).
const maxSetFileBytes = 256 << 20

// ReadSetFile reads a set file: only a regular file of sane size, so
// that a FIFO, a device such as /dev/zero or a runaway file neither
// hangs nor exhausts `fwd check` or a reload.
func ReadSetFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxSetFileBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d MiB limit for set files", path, fi.Size(), maxSetFileBytes>>20)
	}
	return os.ReadFile(path)
}

// parseFile loads one address, CIDR or range per line; '#' starts a
// comment.
func (s *AddrSet) parseFile(path string, data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var bad []string
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		ar, err := ParseAddrRange(line)
		if err != nil {
			if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%s:%d: %v", path, n, err))
			}
			continue
		}
		s.add(ar)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}
