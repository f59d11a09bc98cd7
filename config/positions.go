package config

import (
	"fmt"
	"strconv"
	"strings"
)

// The TOML decoder keeps positions private, so fwd scans the file once
// itself to know the line of every key path, array indexes included
// (tenant.edge.bgp.neighbor[0].import.allow[2]): table headers, arrays
// of tables, key assignments, inline tables and array elements at any
// depth. The scan is linear in the file size and bounds nesting; it never
// decides whether the file is valid TOML (the decoder does), so on input
// the decoder refuses it only has to terminate.

// Limits on what a config file may hold. fwd's deepest key is about six
// levels; the bounds are far above any real file and far below what
// would cost memory or stack.
const (
	MaxFileBytes = 64 << 20 // a config file, like a set file, is bounded
	maxNesting   = 32       // arrays and inline tables inside each other, plus key depth
)

// positions maps key paths to the line that defines them.
type positions struct {
	keys  map[string]int32   // key path -> line of its definition
	first map[string]int32   // key path -> first line of anything under it
	elems map[string][]int32 // array key path -> line of each element
}

func (p *positions) line(key string) int {
	if l, ok := p.keys[key]; ok {
		return int(l)
	}
	for k := key; k != ""; k = parentPath(k) {
		if l, ok := p.keys[k]; ok {
			return int(l)
		}
		if arr, i, ok := splitIndex(k); ok {
			if ls := p.elems[arr]; i < len(ls) {
				return int(ls[i])
			}
		}
		if l, ok := p.first[k]; ok {
			return int(l)
		}
	}
	return 0
}

// parentPath strips the last component (".x" or "[n]") of a key path.
func parentPath(k string) string {
	if i := strings.LastIndexAny(k, ".["); i >= 0 {
		return k[:i]
	}
	return ""
}

// splitIndex splits "a.b[3]" into "a.b" and 3.
func splitIndex(k string) (string, int, bool) {
	if !strings.HasSuffix(k, "]") {
		return "", 0, false
	}
	i := strings.LastIndexByte(k, '[')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(k[i+1 : len(k)-1])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return k[:i], n, true
}

// scanError is a structural problem the scan itself refuses (nesting).
type scanError struct {
	line, col int
	key, msg  string
}

type scanner struct {
	data   []byte
	i      int
	line   int32
	lineAt int // offset of the current line's first byte
	table  string
	arrays map[string]int // array of tables path -> count
	pos    *positions
	err    *scanError
}

func scanPositions(data []byte) (*positions, *scanError) {
	s := &scanner{data: data, line: 1, arrays: map[string]int{},
		pos: &positions{keys: map[string]int32{}, first: map[string]int32{}, elems: map[string][]int32{}}}
	for s.err == nil && s.i < len(s.data) {
		s.skipSpace(true)
		if s.i >= len(s.data) {
			break
		}
		switch s.data[s.i] {
		case '[':
			s.header()
		default:
			start := s.i
			s.keyValue(s.table, 0)
			if s.i == start {
				s.i++ // garbage the decoder will refuse: keep moving
			}
		}
		s.skipLine()
	}
	return s.pos, s.err
}

func (s *scanner) peek(off int) byte {
	if s.i+off < len(s.data) {
		return s.data[s.i+off]
	}
	return 0
}

func (s *scanner) newline() {
	s.line++
	s.lineAt = s.i + 1
}

// skipSpace skips blanks, and with lines also newlines and comments.
func (s *scanner) skipSpace(lines bool) {
	for s.i < len(s.data) {
		switch c := s.data[s.i]; {
		case c == ' ' || c == '\t' || c == '\r':
		case c == '\n' && lines:
			s.newline()
		case c == '#' && lines:
			for s.i < len(s.data) && s.data[s.i] != '\n' {
				s.i++
			}
			continue
		default:
			return
		}
		s.i++
	}
}

// skipLine skips the rest of the line (a comment or garbage).
func (s *scanner) skipLine() {
	for s.i < len(s.data) && s.data[s.i] != '\n' {
		s.i++
	}
}

func (s *scanner) fail(key, format string, args ...any) {
	if s.err == nil {
		s.err = &scanError{line: int(s.line), col: s.i - s.lineAt + 1, key: key, msg: fmt.Sprintf(format, args...)}
	}
}

func (s *scanner) record(key string) {
	if _, ok := s.pos.keys[key]; !ok {
		s.pos.keys[key] = s.line
	}
	for k := parentPath(key); k != ""; k = parentPath(k) {
		if _, ok := s.pos.first[k]; ok {
			break // its ancestors were recorded with it
		}
		s.pos.first[k] = s.line
	}
}

// header scans [a.b] or [[a.b]].
func (s *scanner) header() {
	s.i++
	array := s.peek(0) == '['
	if array {
		s.i++
	}
	parts := s.key()
	if len(parts) > maxNesting {
		s.fail(strings.Join(parts, "."), "key nested deeper than %d levels", maxNesting)
		return
	}
	path := ""
	for n, part := range parts {
		path = joinKey(path, part)
		if array && n == len(parts)-1 {
			idx := s.arrays[path]
			s.arrays[path] = idx + 1
			s.pos.elems[path] = append(s.pos.elems[path], s.line)
			path += "[" + strconv.Itoa(idx) + "]"
		} else if c, ok := s.arrays[path]; ok {
			path += "[" + strconv.Itoa(c-1) + "]"
		}
	}
	s.table = path
	s.record(path)
}

func joinKey(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// key scans a dotted key and returns its parts.
func (s *scanner) key() []string {
	var parts []string
	for {
		s.skipSpace(false)
		start := s.i
		var part string
		switch s.peek(0) {
		case '"':
			part = s.basicString()
		case '\'':
			part = s.literalString()
		default:
			for s.i < len(s.data) && isBareKey(s.data[s.i]) {
				s.i++
			}
			part = string(s.data[start:s.i])
		}
		if s.i == start {
			return parts
		}
		parts = append(parts, part)
		s.skipSpace(false)
		if s.peek(0) != '.' {
			return parts
		}
		s.i++
	}
}

func isBareKey(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// keyValue scans `key = value` under the table path.
func (s *scanner) keyValue(table string, depth int) {
	parts := s.key()
	if len(parts) == 0 {
		return
	}
	if depth+len(parts) > maxNesting {
		s.fail(joinKey(table, strings.Join(parts, ".")), "key nested deeper than %d levels", maxNesting)
		return
	}
	path := table
	for _, p := range parts {
		path = joinKey(path, p)
	}
	s.record(path)
	s.skipSpace(false)
	if s.peek(0) != '=' {
		return
	}
	s.i++
	s.skipSpace(false)
	s.value(path, depth+len(parts))
}

// value scans one value of the key path.
func (s *scanner) value(path string, depth int) {
	switch s.peek(0) {
	case '"':
		s.basicString()
	case '\'':
		s.literalString()
	case '[':
		if depth >= maxNesting {
			s.fail(path, "value nested deeper than %d levels", maxNesting)
			return
		}
		s.i++
		for n := 0; s.err == nil; n++ {
			s.skipSpace(true)
			if c := s.peek(0); c == ']' || c == 0 {
				s.i++
				return
			}
			start := s.i
			s.pos.elems[path] = append(s.pos.elems[path], s.line)
			s.value(path+"["+strconv.Itoa(n)+"]", depth+1)
			s.skipSpace(true)
			switch s.peek(0) {
			case ',':
				s.i++
			case ']':
				s.i++
				return
			default:
				if s.i == start {
					return // garbage: the decoder will say what
				}
			}
		}
	case '{':
		if depth >= maxNesting {
			s.fail(path, "value nested deeper than %d levels", maxNesting)
			return
		}
		s.i++
		for s.err == nil {
			s.skipSpace(true)
			if c := s.peek(0); c == '}' || c == 0 {
				s.i++
				return
			}
			start := s.i
			s.keyValue(path, depth+1)
			s.skipSpace(true)
			switch s.peek(0) {
			case ',':
				s.i++
			case '}':
				s.i++
				return
			default:
				if s.i == start {
					return
				}
			}
		}
	default: // number, boolean, date-time
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', ']', '}', '\n', '#':
				return
			}
			s.i++
		}
	}
}

// basicString scans "..." or """...""" and returns its content (escapes
// other than \" and \\ are kept as written: keys rarely use them).
func (s *scanner) basicString() string {
	if s.peek(1) == '"' && s.peek(2) == '"' {
		s.i += 3
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case '\\':
				if s.peek(1) == '\n' {
					s.i++
					s.newline()
				}
				s.i++
			case '\n':
				s.newline()
			case '"':
				if s.peek(1) == '"' && s.peek(2) == '"' {
					s.i += 3
					for s.peek(0) == '"' { // up to two quotes end the content
						s.i++
					}
					return ""
				}
			}
			s.i++
		}
		return ""
	}
	s.i++
	var b strings.Builder
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch c {
		case '"':
			s.i++
			return b.String()
		case '\n':
			return b.String() // unterminated: the decoder reports it
		case '\\':
			if n := s.peek(1); n == '"' || n == '\\' {
				c = n
				s.i++
			}
		}
		b.WriteByte(c)
		s.i++
	}
	return b.String()
}

// literalString scans '...' or ”'...”'.
func (s *scanner) literalString() string {
	if s.peek(1) == '\'' && s.peek(2) == '\'' {
		s.i += 3
		for s.i < len(s.data) {
			if s.data[s.i] == '\n' {
				s.newline()
			} else if s.data[s.i] == '\'' && s.peek(1) == '\'' && s.peek(2) == '\'' {
				s.i += 3
				for s.peek(0) == '\'' {
					s.i++
				}
				return ""
			}
			s.i++
		}
		return ""
	}
	s.i++
	start := s.i
	for s.i < len(s.data) && s.data[s.i] != '\'' && s.data[s.i] != '\n' {
		s.i++
	}
	str := string(s.data[start:s.i])
	if s.peek(0) == '\'' {
		s.i++
	}
	return str
}
