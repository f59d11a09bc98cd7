package config

import (
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
		b.WriteString(e.Key)
		b.WriteString(": ")
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

// report collects the problems of one file. Every validator writes to it
// through a reporter, which knows the key path of what it validates.
type report struct {
	file  string
	lines lineIndex
	errs  Errors
	count int // problems reported
}

// lineIndex finds the line that defines a key path.
type lineIndex interface {
	line(key string) int
}

func (rep *report) add(e *Error) {
	rep.count++
	rep.errs = append(rep.errs, e)
}

// result returns the problems in file order, or nil.
func (rep *report) result() error {
	if len(rep.errs) == 0 {
		return nil
	}
	return rep.errs.sorted()
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
	r.rep.add(&Error{File: r.rep.file, Line: r.line(), Key: r.key, Msg: fmt.Sprintf(format, args...)})
}

// line returns the line that defines the reporter's key.
func (r reporter) line() int { return r.rep.lines.line(r.key) }

// problems returns how many problems have been reported so far in the
// whole file: a validator compares it before and after checking a value
// to know whether that value is sound.
func (r reporter) problems() int { return r.rep.count }
