package config

import (
	"container/heap"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a config file, with its position and key path.
type Error struct {
	File string
	Line int // 0 when unknown
	Col  int // 0 when unknown
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		if strings.ContainsFunc(e.Key, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			fmt.Fprintf(&b, "%q: ", e.Key) // a control byte must not garble the line
		} else {
			b.WriteString(e.Key)
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in file order. Validation
// does not stop at the first problem: an operator fixes them all at once.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Key < es[j].Key
	})
	return es
}

// maxErrors bounds the problems kept (the first ones in file order): a
// file of a million mistakes costs a count, not a million messages.
const maxErrors = 100

// report collects the problems of one file. Every validator writes to it
// through a reporter, which knows the key path of what it validates.
type report struct {
	file  string
	lines lineIndex
	kept  errHeap // the first maxErrors problems in file order
	count int     // problems reported, kept or not
	extra int     // problems not kept
	// broken holds the tables a value of which had the wrong type: the
	// semantic checks of what is under them would only report
	// consequences (a missing device after `device = 5`), so they are
	// counted but not shown.
	broken map[string]bool
}

// lineIndex finds the line that defines a key path.
type lineIndex interface {
	line(key string) int
}

func (rep *report) add(e *Error) {
	scrubSecret(e)
	rep.count++
	if len(rep.kept) < maxErrors {
		heap.Push(&rep.kept, e)
		return
	}
	if !less(e.Line, e.Key, rep.kept[0]) {
		rep.extra++
		return
	}
	rep.kept[0] = e
	heap.Fix(&rep.kept, 0)
	rep.extra++
}

// place reports a problem at key unless it would not be kept, so that
// millions of problems cost no message formatting.
func (rep *report) place(key string, semantic bool, format string, args ...any) {
	if semantic && rep.suppressed(key) {
		rep.count++
		return
	}
	line := 0
	if rep.lines != nil {
		line = rep.lines.line(key)
	}
	if len(rep.kept) >= maxErrors && !less(line, key, rep.kept[0]) {
		rep.count++
		rep.extra++
		return
	}
	rep.add(&Error{File: rep.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (rep *report) suppressed(key string) bool {
	if len(rep.broken) == 0 {
		return false
	}
	for k := key; k != ""; k = parentPath(k) {
		if rep.broken[k] {
			return true
		}
	}
	return false
}

// result returns the problems in file order, or nil. Beyond maxErrors,
// a last line says how many more there are.
func (rep *report) result() error {
	if len(rep.kept) == 0 {
		return nil
	}
	es := append(Errors(nil), rep.kept...).sorted()
	if rep.extra > 0 {
		es = append(es, &Error{File: rep.file, Msg: fmt.Sprintf("%d more errors not shown", rep.extra)})
	}
	return es
}

func less(line int, key string, e *Error) bool {
	if line != e.Line {
		return line < e.Line
	}
	return key < e.Key
}

// errHeap is a max-heap: the last kept problem in file order on top.
type errHeap []*Error

func (h errHeap) Len() int           { return len(h) }
func (h errHeap) Less(i, j int) bool { return less(h[j].Line, h[j].Key, h[i]) }
func (h errHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *errHeap) Push(x any)        { *h = append(*h, x.(*Error)) }
func (h *errHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// reporter reports problems under one key path: the validator of a
// config type receives a reporter scoped to that value and derives
// scopes for its fields, so no call site spells a key path or looks up a
// line.
type reporter struct {
	rep *report
	key string
}

func newReporter(file string, lines lineIndex) reporter {
	return reporter{rep: &report{file: file, lines: lines}}
}

// in scopes the reporter to a child key (which may be dotted), with
// optional array indexes: r.in("rule", 3) is KEY.rule[3].
func (r reporter) in(name string, index ...int) reporter {
	k := name
	if r.key != "" {
		k = r.key + "." + name
	}
	for _, i := range index {
		k += "[" + strconv.Itoa(i) + "]"
	}
	return reporter{rep: r.rep, key: k}
}

// at scopes the reporter to element i of the array at its key.
func (r reporter) at(i int) reporter {
	return reporter{rep: r.rep, key: r.key + "[" + strconv.Itoa(i) + "]"}
}

// errorf reports a problem at the reporter's key.
func (r reporter) errorf(format string, args ...any) {
	r.rep.place(r.key, true, format, args...)
}

// unknown reports a key fwd does not know. It hides no other problem.
func (r reporter) unknown() {
	r.rep.place(r.key, false, "unknown key")
}

// typeError reports a value of the wrong type and marks the table that
// holds it as broken.
func (r reporter) typeError(want string, got any) {
	r.rep.place(r.key, false, "incompatible types: want %s, got %s", want, describe(got))
	scope := r.key
	for {
		if arr, _, ok := splitIndex(scope); ok {
			scope = arr
			continue
		}
		break
	}
	if p := parentPath(scope); p != "" {
		scope = p
	}
	if r.rep.broken == nil {
		r.rep.broken = map[string]bool{}
	}
	r.rep.broken[scope] = true
}

// line returns the line that defines the reporter's key.
func (r reporter) line() int {
	if r.rep.lines == nil {
		return 0
	}
	return r.rep.lines.line(r.key)
}

// problems returns how many problems have been reported so far in the
// whole file: a validator compares it before and after checking a value
// to know whether that value is sound.
func (r reporter) problems() int { return r.rep.count }
