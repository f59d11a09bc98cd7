package config

import (
	"errors"
	"os"
	"regexp"
	"strconv"

	"github.com/BurntSushi/toml"
)

// The pipeline: Load reads the file, Decode turns bytes into a validated
// Config without touching the filesystem, ReadSetFiles is the loader step
// that reads the set files Decode named. Parse composes Decode and
// ReadSetFiles for callers that hold the bytes already.

// Load reads, decodes and validates a config file and reads its set
// files. A returned error is an Errors value listing every problem, or an
// I/O error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes and validates data and reads the set files it names
// (relative paths are resolved against name's directory); name is used
// in error messages.
func Parse(name string, data []byte) (*Config, error) {
	cfg, rep := decode(name, data)
	if cfg != nil {
		readSetFiles(cfg, rep)
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
	readSetFiles(cfg, rep)
	return rep.result()
}

// decode returns the validated configuration, or nil when the file could
// not be decoded at all, and the report of every problem found.
func decode(name string, data []byte) (*Config, *report) {
	var raw rawFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, &report{file: name, errs: Errors{decodeError(name, err)}, count: 1}
	}
	idx := buildKeyIndex(data)
	r := newReporter(name, idx)
	for _, k := range md.Undecoded() {
		for _, key := range idx.expand(k.String()) {
			reporter{rep: r.rep, key: key}.errorf("unknown key")
		}
	}
	if r.problems() > 0 {
		return nil, r.rep
	}
	cfg := validate(r, &raw)
	cfg.File = name
	return cfg, r.rep
}

var reTomlLine = regexp.MustCompile(`^toml: (?:line (\d+) )?(?:\(last key "([^"]*)"\): )?(.*)$`)

func decodeError(name string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Key: pe.LastKey, Msg: pe.Message}
	}
	if m := reTomlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Key: m[2], Msg: m[3]}
	}
	return &Error{File: name, Msg: err.Error()}
}
