package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
)

// The TOML decoder turns the file into generic values (tables, arrays,
// scalars); unify then fills the raw structs from them by key path, so
// that every mismatch is reported where it is written, with its array
// indexes: a key fwd does not know, and a value of the wrong shape (a
// string or an array where a table belongs, which the TOML library would
// silently drop, or a table where an array of tables belongs).

// unify sets rv (settable) from v, reporting at r. It returns false when
// v itself has the wrong type (problems inside v do not count: a table
// with an unknown key is still a table).
func unify(r reporter, v any, rv reflect.Value) bool {
	switch rv.Kind() {
	case reflect.Pointer:
		e := reflect.New(rv.Type().Elem())
		if !unify(r, v, e.Elem()) {
			return false
		}
		rv.Set(e)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			r.typeError("a table", v)
			return false
		}
		fields := tomlFields(rv.Type())
		for _, k := range sortedKeys(m) {
			kr := r.in(k)
			idx, known := fields[k]
			if !known {
				unknownKey(kr, m[k])
				continue
			}
			unify(kr, m[k], rv.FieldByIndex(idx))
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			r.typeError("a table", v)
			return false
		}
		out := reflect.MakeMapWithSize(rv.Type(), len(m))
		for k, ev := range m {
			e := reflect.New(rv.Type().Elem()).Elem()
			unify(r.in(k), ev, e)
			out.SetMapIndex(reflect.ValueOf(k), e)
		}
		rv.Set(out)
	case reflect.Slice:
		elem := rv.Type().Elem()
		tables := elem.Kind() == reflect.Struct
		var list []any
		switch x := v.(type) {
		case []any:
			list = x
		case []map[string]any:
			list = make([]any, len(x))
			for i := range x {
				list[i] = x[i]
			}
		default:
			if tables {
				r.typeError("an array of tables ([["+r.key+"]])", v)
			} else {
				r.typeError("an array", v)
			}
			return false
		}
		out := reflect.MakeSlice(rv.Type(), len(list), len(list))
		for i, ev := range list {
			unify(r.at(i), ev, out.Index(i))
		}
		rv.Set(out)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			r.typeError("a string", v)
			return false
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			r.typeError("a boolean", v)
			return false
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			r.typeError("an integer", v)
			return false
		}
		rv.SetInt(n)
	case reflect.Interface:
		rv.Set(reflect.ValueOf(v))
	default:
		panic(fmt.Sprintf("config: unify: raw field of kind %s", rv.Kind()))
	}
	return true
}

// unknownKey reports a key fwd does not know. For a table reached
// through single sub-tables ([tenants.edge]) it names the table header.
func unknownKey(r reporter, v any) {
	for {
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			break
		}
		var k string
		for k = range m {
		}
		if _, sub := m[k].(map[string]any); !sub {
			break
		}
		r, v = r.in(k), m[k]
	}
	r.unknown()
}

var fieldCache sync.Map // reflect.Type -> map[string][]int

// tomlFields maps the toml tags of a struct, embedded structs included,
// to field indexes.
func tomlFields(t reflect.Type) map[string][]int {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string][]int)
	}
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k, idx := range tomlFields(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if tag := f.Tag.Get("toml"); tag != "" && tag != "-" {
			out[tag] = []int{i}
		}
	}
	fieldCache.Store(t, out)
	return out
}

// describe names a TOML value's type for messages, with the value when
// it is short.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			return "a string"
		}
		return fmt.Sprintf("a string (%q)", x)
	case int64:
		return fmt.Sprintf("an integer (%d)", x)
	case float64:
		return fmt.Sprintf("a float (%v)", x)
	case bool:
		return fmt.Sprintf("a boolean (%v)", x)
	case time.Time:
		return "a date-time"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	if reflect.TypeOf(v) != nil && strings.Contains(reflect.TypeOf(v).String(), "Local") {
		return "a date-time"
	}
	return fmt.Sprintf("%T", v)
}
