package config

import (
	"crypto/sha256"
	"sync"
)

// SetCache keeps parsed set files across loads, so that a reload does
// not parse again the set files that did not change. The caller owns
// it: the daemon keeps one for its config file across reloads; a nil
// *SetCache caches nothing. It is safe for concurrent use.
//
// What it trusts: the content, nothing else. Every load still opens,
// reads and hashes each set file (SHA-256 while reading; cheap next to
// parsing); a cached parse is reused only when the path, the length and
// the SHA-256 of the bytes just read are those it was parsed from. Size,
// mtime and inode are not trusted: a rewrite that keeps them (rsync
// --times, a clock step, a same-size edit within the timestamp
// granularity) is still seen. The ranges are shared between the cache
// and every Config built from it, so they are read-only.
//
// The cache holds the files of the last load only: a file no longer
// named is dropped, so the cache never outgrows one configuration.
type SetCache struct {
	mu     sync.Mutex
	files  map[string]*setFile
	parses int // set files parsed, for tests
}

// fileFrom returns the parsed set file at path, its bytes and their hash
// coming from read, parsing it unless the cache has it.
func (c *SetCache) fileFrom(path string, read func(string) (string, [sha256.Size]byte, error)) (*setFile, error) {
	text, sum, err := read(path)
	if err != nil {
		return nil, err
	}
	if c != nil {
		c.mu.Lock()
		f := c.files[path]
		c.mu.Unlock()
		if f != nil && f.sum == sum && f.size == len(text) {
			return f, nil
		}
	}
	f := &setFile{sum: sum, size: len(text)}
	if f.v4, f.v6, err = parseSetFile(path, text); err != nil {
		return nil, err
	}
	if c != nil {
		c.mu.Lock()
		if c.files == nil {
			c.files = map[string]*setFile{}
		}
		c.files[path] = f
		c.parses++
		c.mu.Unlock()
	}
	return f, nil
}

// keepOnly drops the files a load did not name.
func (c *SetCache) keepOnly(used map[string]bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.files {
		if !used[p] {
			delete(c.files, p)
		}
	}
}
