package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
)

// The pipeline: Load reads the file (ReadFile), Decode turns bytes into a
// validated Config without touching the filesystem, ReadSetFiles is the
// loader step that reads the set files Decode named. Parse composes
// Decode and ReadSetFiles for callers that hold the bytes already. The
// ...With variants read set files through a SetCache the caller keeps
// across loads.

// Load reads, decodes and validates a config file and reads its set
// files. A returned error is an Errors value listing every problem, or an
// I/O error.
func Load(path string) (*Config, error) { return LoadWith(path, nil) }

// LoadWith is Load with the set files read through c (nil: no cache).
func LoadWith(path string, c *SetCache) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseWith(path, data, c)
}

// ReadFile reads a config file: only a regular file of at most
// MaxFileBytes, so that a FIFO, a device such as /dev/zero or a runaway
// file neither hangs nor exhausts `fwd check` or a running daemon.
func ReadFile(path string) ([]byte, error) {
	f, size, err := openRegular(path, MaxFileBytes, "config files")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One allocation for a file that does not grow while being read;
	// the extra byte tells a file that did.
	data := make([]byte, 0, size+1)
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(data) > MaxFileBytes {
			return nil, fmt.Errorf("%s grew past the %d MiB limit for config files while being read", path, MaxFileBytes>>20)
		}
		if len(data) == cap(data) {
			data = slices.Grow(data, 4096)
		}
	}
	return data, nil
}

// openRegular opens a file that must be a regular file of at most limit
// bytes. The checks are made on the open descriptor, so the file cannot
// be swapped for a FIFO between them and the read, and the open itself
// does not wait for a FIFO's writer (O_NONBLOCK; it does not affect
// reads of a regular file). kind names the files in errors.
func openRegular(path string, limit int64, kind string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > limit {
		f.Close()
		return nil, 0, fmt.Errorf("%s is %d bytes, more than the %d MiB limit for %s", path, fi.Size(), limit>>20, kind)
	}
	return f, fi.Size(), nil
}

// Parse decodes and validates data and reads the set files it names
// (relative paths are resolved against name's directory); name is used
// in error messages.
func Parse(name string, data []byte) (*Config, error) { return ParseWith(name, data, nil) }

// ParseWith is Parse with the set files read through c (nil: no cache).
func ParseWith(name string, data []byte, c *SetCache) (*Config, error) {
	cfg, rep := decode(name, data)
	if cfg != nil {
		readSetFiles(cfg, rep, c)
		readPasswordFiles(cfg, rep)
	}
	if err := rep.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Decode decodes and validates data without reading anything: set files
// are named (AddrSet.File) but not read, see ReadSetFiles. A returned
// error is an Errors value.
func Decode(name string, data []byte) (*Config, error) {
	cfg, rep := decode(name, data)
	if err := rep.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ReadSetFiles reads the set files of a decoded configuration into its
// sets. A returned error is an Errors value, one per unreadable file.
func ReadSetFiles(cfg *Config) error {
	rep := &report{file: cfg.File}
	readSetFiles(cfg, rep, nil)
	return rep.result()
}

// decode returns the validated configuration, or nil when the file could
// not be decoded at all, and the report of every problem found. Unknown
// keys do not stop validation: every problem is reported in one pass.
func decode(name string, data []byte) (*Config, *report) {
	fail := func(e *Error) (*Config, *report) {
		rep := &report{file: name}
		rep.add(e)
		return nil, rep
	}
	if len(data) > MaxFileBytes {
		return fail(&Error{File: name, Msg: fmt.Sprintf("%d bytes, more than the %d MiB limit for config files", len(data), MaxFileBytes>>20)})
	}
	pos, serr := scanPositions(data)
	if serr != nil {
		return fail(&Error{File: name, Line: serr.line, Col: serr.col, Key: serr.key, Msg: serr.msg})
	}
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		return fail(decodeError(name, data, err))
	}
	r := newReporter(name, pos)
	var raw rawFile
	unify(r, tree, reflect.ValueOf(&raw).Elem())
	cfg := validate(r, &raw)
	cfg.File = name
	return cfg, r.rep
}

var reTomlLine = regexp.MustCompile(`^toml: (?:line (\d+) )?(?:\(last key "([^"]*)"\): )?(.*)$`)

func decodeError(name string, data []byte, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e := &Error{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Key: pe.LastKey, Msg: pe.Message}
		placeParseError(e, data)
		return e
	}
	if m := reTomlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Key: m[2], Msg: m[3]}
	}
	return &Error{File: name, Msg: err.Error()}
}

// placeParseError corrects the decoder's position for a line that ends
// too early (the decoder reports it on the next line, under the key
// before it): the problem is at the end of that line, and in a table
// header the key is the header's.
func placeParseError(e *Error, data []byte) {
	if !strings.Contains(e.Msg, `got '\n'`) || e.Line < 2 {
		return
	}
	start := 0 // of line e.Line-1
	for n := 1; n < e.Line-1; n++ {
		i := bytes.IndexByte(data[start:], '\n')
		if i < 0 {
			return
		}
		start += i + 1
	}
	line, _, _ := bytes.Cut(data[start:], []byte("\n"))
	prev := strings.TrimSuffix(string(line), "\r")
	e.Line, e.Col = e.Line-1, len(prev)+1
	e.Msg = strings.Replace(e.Msg, `got '\n' instead`, "got the end of the line", 1)
	if h := strings.TrimSpace(prev); strings.HasPrefix(h, "[") {
		s := &scanner{data: []byte(strings.TrimLeft(h, "[")), arrays: map[string]int{}}
		e.Key = strings.Join(s.key(), ".")
	}
}
