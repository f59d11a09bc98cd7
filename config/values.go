package config

// Parsers for the value syntaxes shared by several tables: addresses,
// ranges, ports, protocols, rates, prefix matches.

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var reRate = regexp.MustCompile(`^(\d+)\s*/\s*(second|minute|hour|day)$`)

func parseAction(s string) (Action, bool) {
	switch Action(s) {
	case Accept, Drop, Reject:
		return Action(s), true
	}
	return "", false
}

func parseRate(r reporter, s string) (*Rate, bool) {
	m := reRate.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		r.errorf("invalid rate %q: want N/second, N/minute, N/hour or N/day", s)
		return nil, false
	}
	n, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil || n == 0 {
		r.errorf("invalid rate %q: count must be 1-4294967295", s)
		return nil, false
	}
	return &Rate{Count: n, Unit: m[2]}, true
}

// stringList accepts a string or an array of strings.
func stringList(r reporter, v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				r.at(i).errorf("want a string, got %v", e)
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	r.errorf("want a string or an array of strings, got %v", v)
	return nil, false
}

// stringListOrInts accepts strings, integers, or an array of both.
func stringListOrInts(r reporter, v any) ([]string, bool) {
	one := func(e any) (string, bool) {
		switch x := e.(type) {
		case string:
			return x, true
		case int64:
			return strconv.FormatInt(x, 10), true
		}
		return "", false
	}
	if s, ok := one(v); ok {
		return []string{s}, true
	}
	if list, ok := v.([]any); ok {
		var out []string
		for i, e := range list {
			s, ok := one(e)
			if !ok {
				r.at(i).errorf("want a string or a number, got %v", e)
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	r.errorf("want a string, a number or an array of them, got %v", v)
	return nil, false
}

func protoList(r reporter, v any) ([]uint8, bool) {
	if v == nil {
		return nil, true
	}
	names, ok := stringListOrInts(r, v)
	if !ok {
		return nil, false
	}
	var out []uint8
	seen := map[uint8]bool{}
	for _, n := range names {
		p, known := Protocols[strings.ToLower(n)]
		if !known {
			num, err := strconv.Atoi(n)
			if err != nil || num < 0 || num > 255 {
				r.errorf("unknown protocol %q", n)
				return nil, false
			}
			p = uint8(num)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, true
}

// portList accepts a port, "a-b", or an array of them.
func portList(r reporter, v any) ([]PortRange, bool) {
	if v == nil {
		return nil, true
	}
	items, ok := stringListOrInts(r, v)
	if !ok {
		return nil, false
	}
	var out []PortRange
	for i, s := range items {
		pr, err := ParsePortRange(s)
		if err != nil {
			elem(r, v, i).errorf("%v", err)
			return nil, false
		}
		out = append(out, pr)
	}
	return out, true
}

// hasPorts reports whether every protocol of a non-empty list has ports.
func hasPorts(protos []uint8) bool {
	if len(protos) == 0 {
		return false
	}
	for _, p := range protos {
		switch p {
		case 6, 17, 132, 136:
		default:
			return false
		}
	}
	return true
}

// ParsePortRange parses "80" or "8000-8080".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil || a < 1 || a > 65535 || b < 1 || b > 65535 {
		return PortRange{}, fmt.Errorf("invalid port %q: want 1-65535 or a range like 8000-8080", s)
	}
	if b < a {
		return PortRange{}, fmt.Errorf("invalid port range %q: start is after end", s)
	}
	return PortRange{uint16(a), uint16(b)}, nil
}

// ParseAddrRange parses an address, a CIDR prefix or "a-b".
func ParseAddrRange(s string) (AddrRange, error) {
	s = strings.TrimSpace(s)
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
		b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a.Zone() != "" || b.Zone() != "" || a.Is4In6() || b.Is4In6() {
			return AddrRange{}, fmt.Errorf("invalid address range %q", s)
		}
		if a.Is4() != b.Is4() {
			return AddrRange{}, fmt.Errorf("invalid address range %q: mixes IPv4 and IPv6", s)
		}
		if b.Less(a) {
			return AddrRange{}, fmt.Errorf("invalid address range %q: start is after end", s)
		}
		return AddrRange{a, b}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return AddrRange{}, fmt.Errorf("invalid CIDR %q", s)
		}
		if p != p.Masked() {
			return AddrRange{}, fmt.Errorf("invalid CIDR %q: host bits are set (did you mean %s?)", s, p.Masked())
		}
		return AddrRange{p.Addr(), PrefixLast(p)}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return AddrRange{}, fmt.Errorf("invalid address %q", s)
	}
	return AddrRange{a, a}, nil
}

func parseAddrPort(s string) (netip.Addr, uint16, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" && !a.Is4In6() {
		return a, 0, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return netip.Addr{}, 0, fmt.Errorf("invalid target %q: want address or address:port ([v6]:port)", s)
	}
	return ap.Addr(), ap.Port(), nil
}

// ParsePrefixMatch parses "PREFIX [ge N] [le M]".
func ParsePrefixMatch(s string) (PrefixMatch, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return PrefixMatch{}, fmt.Errorf("empty prefix")
	}
	p, err := netip.ParsePrefix(f[0])
	if err != nil || p.Addr().Zone() != "" {
		return PrefixMatch{}, fmt.Errorf("invalid prefix %q", f[0])
	}
	if p != p.Masked() {
		return PrefixMatch{}, fmt.Errorf("%s has host bits set (did you mean %s?)", p, p.Masked())
	}
	m := PrefixMatch{Prefix: p, GE: -1, LE: -1}
	max := p.Addr().BitLen()
	rest := f[1:]
	for len(rest) > 0 {
		if len(rest) < 2 || (rest[0] != "ge" && rest[0] != "le") {
			return PrefixMatch{}, fmt.Errorf("%q: want PREFIX [ge N] [le N]", s)
		}
		n, err := strconv.Atoi(rest[1])
		if err != nil || n < 0 || n > max {
			return PrefixMatch{}, fmt.Errorf("%q: %s %s is not a prefix length 0-%d", s, rest[0], rest[1], max)
		}
		if rest[0] == "ge" {
			if m.GE >= 0 {
				return PrefixMatch{}, fmt.Errorf("%q: ge given twice", s)
			}
			m.GE = n
		} else {
			if m.LE >= 0 {
				return PrefixMatch{}, fmt.Errorf("%q: le given twice", s)
			}
			m.LE = n
		}
		rest = rest[2:]
	}
	switch {
	case m.GE < 0 && m.LE < 0:
		m.GE, m.LE = p.Bits(), p.Bits()
	case m.GE < 0:
		m.GE = p.Bits()
	case m.LE < 0:
		m.LE = max
	}
	if m.GE < p.Bits() || m.LE < m.GE {
		return PrefixMatch{}, fmt.Errorf("%q: need %d <= ge <= le", s, p.Bits())
	}
	return m, nil
}

// validASN reports why an AS number may not be used by a speaker, or "".
func validASN(v int64) string {
	switch {
	case v <= 0 || v > 4294967295:
		return fmt.Sprintf("AS number %d out of range 1-4294967294", v)
	case v == 23456:
		return "AS 23456 is AS_TRANS (RFC 6793), not a real AS"
	case v == 65535 || v == 4294967295:
		return fmt.Sprintf("AS %d is reserved (RFC 7300)", v)
	}
	return ""
}

// MaxSetTimeout bounds a dynamic set's element timeout. The kernel takes
// far longer ones (since Linux 4.19 its limit is a u64 of nanoseconds,
// centuries); a timeout over a year is almost certainly a unit typo, and
// an element that should never expire takes no timeout at all.
const MaxSetTimeout = 365 * 24 * time.Hour

// ParseSetTimeout parses an element timeout: Go duration syntax
// ("90s", "1h30m", "1.5h") or nft's, which adds days ("1d", "2d12h").
// It must be positive, a whole number of milliseconds (the kernel's
// unit) and at most MaxSetTimeout.
func ParseSetTimeout(s string) (time.Duration, error) {
	var d time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		days, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("invalid timeout %q: want a duration such as \"1h30m\" or \"2d\"", s)
		}
		d, rest = time.Duration(days)*24*time.Hour, s[i+1:]
	}
	if rest != "" {
		x, err := time.ParseDuration(rest)
		if err != nil || (d > 0 && x < 0) {
			return 0, fmt.Errorf("invalid timeout %q: want a duration such as \"1h30m\" or \"2d\"", s)
		}
		d += x
	}
	switch {
	case d <= 0:
		return 0, fmt.Errorf("invalid timeout %q: must be positive", s)
	case d%time.Millisecond != 0:
		return 0, fmt.Errorf("invalid timeout %q: the kernel counts whole milliseconds", s)
	case d > MaxSetTimeout:
		return 0, fmt.Errorf("invalid timeout %q: at most 365d (leave timeout out for elements that never expire)", s)
	}
	return d, nil
}
