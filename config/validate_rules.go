package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	reRuleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	ctStates   = map[string]bool{"new": true, "established": true, "related": true, "invalid": true, "untracked": true}
)

// validateRule validates one [[tenant.T.rule]]; it returns nil when the
// rule has a problem. ids maps the rule ids taken so far to their keys.
func validateRule(r reporter, index int, rr *rawRule, refs *policyRefs, ids map[string]string) *Rule {
	start := r.problems()
	ru := &Rule{Index: index, Line: r.line(), Name: rr.Name, Comment: rr.Comment}
	ru.From = refs.zoneList(r.in("from"), rr.From)
	ru.To = refs.zoneList(r.in("to"), rr.To)
	if len(ru.From) == 1 && len(ru.To) == 1 && ru.From[0] == ZoneSelf && ru.To[0] == ZoneSelf {
		r.errorf("from and to are both %q (loopback traffic is always accepted)", ZoneSelf)
	}
	ru.Saddr = refs.addrs(r.in("saddr"), rr.Saddr)
	ru.Daddr = refs.addrs(r.in("daddr"), rr.Daddr)
	ru.Protos, _ = protoList(r.in("proto"), rr.Proto)
	if (rr.Sport != nil || rr.Dport != nil) && !hasPorts(ru.Protos) {
		k := "dport"
		if rr.Dport == nil {
			k = "sport"
		}
		r.in(k).errorf("ports need proto tcp, udp, sctp or udplite")
	}
	ru.Sport, _ = portList(r.in("sport"), rr.Sport)
	ru.Dport, _ = portList(r.in("dport"), rr.Dport)
	// An ICMP-only rule matches one family.
	v4, v6 := true, true
	if len(ru.Protos) > 0 {
		icmp4, icmp6 := true, true
		for _, pr := range ru.Protos {
			icmp4 = icmp4 && pr == 1
			icmp6 = icmp6 && pr == 58
		}
		v4, v6 = !icmp6, !icmp4
	}
	if rr.ICMPType != nil {
		ru.ICMP = icmpTypes(r.in("icmp_type"), rr.ICMPType, ru.Protos)
	}
	if rr.CtState != nil {
		cr := r.in("ct_state")
		list, _ := stringList(cr, rr.CtState)
		for _, s := range list {
			if !ctStates[s] {
				cr.errorf("unknown ct state %q: want new, established, related, invalid or untracked", s)
			}
		}
		ru.CtState = list
	}
	act, good := parseAction(rr.Action)
	switch {
	case good:
		ru.Action = act
	case rr.Action == "":
		r.in("action").errorf("is required (accept, drop or reject)")
	default:
		r.in("action").errorf("invalid action %q: want accept, drop or reject", rr.Action)
	}
	validateRuleLog(r, rr, ru)
	// Address family: the rule matches only families every condition
	// allows. A v4 saddr with a v6 daddr can never match.
	s4, s6 := ru.Saddr.Families()
	d4, d6 := ru.Daddr.Families()
	ru.V4, ru.V6 = v4 && s4 && d4, v6 && s6 && d6
	if r.problems() == start && !ru.V4 && !ru.V6 {
		r.errorf("address family conflict: %s", familyConflict(v4, v6, s4, s6, d4, d6))
	}
	ru.ID = ruleID(r, rr, ids)
	if r.problems() != start {
		return nil
	}
	return ru
}

// icmpTypes checks icmp_type against the one ICMP protocol of the rule.
func icmpTypes(r reporter, v any, protos []uint8) []uint8 {
	names, ok := stringListOrInts(r, v)
	table := ICMPTypes
	switch {
	case len(protos) == 1 && protos[0] == 1:
	case len(protos) == 1 && protos[0] == 58:
		table = ICMPv6Types
	default:
		r.errorf("icmp_type needs proto icmp or icmpv6")
		return nil
	}
	if !ok {
		return nil
	}
	var out []uint8
	for _, n := range names {
		if v, known := table[n]; known {
			out = append(out, v)
		} else if num, err := strconv.Atoi(n); err == nil && num >= 0 && num <= 255 {
			out = append(out, uint8(num))
		} else {
			r.errorf("unknown %s type %q", ProtoName(protos[0]), n)
			return out
		}
	}
	return out
}

// validateRuleLog checks log, log_limit, limit and limit_burst.
func validateRuleLog(r reporter, rr *rawRule, ru *Rule) {
	switch l := rr.Log.(type) {
	case nil:
	case bool:
		ru.Log = l
	case string:
		ru.Log, ru.LogPfx = true, l
		if len(l) > 127 {
			r.in("log").errorf("log prefix is longer than 127 bytes")
		}
	default:
		r.in("log").errorf("want true/false or a prefix string")
	}
	if rr.LogLimit != "" {
		lr := r.in("log_limit")
		if !ru.Log {
			lr.errorf("log_limit needs log")
		}
		ru.LogLimit, _ = parseRate(lr, rr.LogLimit)
	}
	switch {
	case rr.Limit != "":
		var ok bool
		if ru.Limit, ok = parseRate(r.in("limit"), rr.Limit); !ok {
			break
		}
		if rr.LimitBurst < 0 {
			r.in("limit_burst").errorf("must not be negative")
		} else {
			ru.Limit.Burst = uint32(rr.LimitBurst)
		}
	case rr.LimitBurst != 0:
		r.in("limit_burst").errorf("limit_burst needs limit")
	}
}

// ruleID returns the rule's stable identity: its name, or a hash of its
// content made unique with a suffix.
func ruleID(r reporter, rr *rawRule, ids map[string]string) string {
	id := rr.Name
	if id != "" {
		if !reRuleName.MatchString(rr.Name) {
			r.in("name").errorf("invalid rule name %q: use letters, digits, '_', '-' or '.', at most 63", rr.Name)
		}
	} else {
		id = ruleHash(rr)
	}
	if prev, dup := ids[id]; dup {
		if rr.Name != "" {
			r.in("name").errorf("rule name %q is already used by %s", rr.Name, prev)
		} else {
			for n := 2; ; n++ {
				if _, dup := ids[fmt.Sprintf("%s-%d", id, n)]; !dup {
					id = fmt.Sprintf("%s-%d", id, n)
					break
				}
			}
		}
	}
	ids[id] = r.key
	return id
}

func familyConflict(p4, p6, s4, s6, d4, d6 bool) string {
	name := func(v4, v6 bool) string {
		switch {
		case v4 && !v6:
			return "IPv4 only"
		case v6 && !v4:
			return "IPv6 only"
		}
		return "both families"
	}
	parts := []string{}
	if !p4 || !p6 {
		parts = append(parts, "proto is "+name(p4, p6))
	}
	if !s4 || !s6 {
		parts = append(parts, "saddr is "+name(s4, s6))
	}
	if !d4 || !d6 {
		parts = append(parts, "daddr is "+name(d4, d6))
	}
	return strings.Join(parts, ", ")
}

func ruleHash(rr *rawRule) string {
	h := sha256.New()
	fmt.Fprintf(h, "%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%v|%d",
		rr.From, rr.To, rr.Saddr, rr.Daddr, rr.Proto, rr.Sport, rr.Dport, rr.ICMPType,
		rr.CtState, rr.Action, rr.Log, rr.LogLimit, rr.Limit, rr.Comment, rr.LimitBurst)
	return "r" + hex.EncodeToString(h.Sum(nil))[:10]
}
