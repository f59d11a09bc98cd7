package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash"
	"net/netip"
	"time"

	"github.com/fwdproject/fwd/config"
)

// A fingerprint is the SHA-256 of everything Compile reads from a tenant:
// its policy and its interfaces' names and addresses (NAT hairpin reads
// them). Two tenants with the same fingerprint compile to the same
// ruleset, so CompileFrom returns the previous ruleset unchanged instead
// of compiling again. It is written field by field, without reflection
// (reflect.DeepEqual of 10k rules costs about as much as compiling them);
// TestFingerprintCoversConfig fails when config gains a field that is not
// written here.
//
// An address set is written as its set file's SHA-256 when its ranges
// are exactly that file's (config computes it while reading the file),
// else as the hash of its ranges: a 100k-line set costs nothing to
// fingerprint.
type fingerprint [sha256.Size]byte

// fpWriter writes values in a self-delimiting encoding (lengths before
// strings and lists), so two different configs cannot write the same
// bytes.
type fpWriter struct {
	h   hash.Hash
	buf []byte
}

func (w *fpWriter) json(v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for config values; never reuse then
		b = []byte(err.Error() + time.Now().String())
	}
	w.int(len(b))
	w.buf = append(w.buf, b...)
}

func (w *fpWriter) flush() {
	w.h.Write(w.buf)
	w.buf = w.buf[:0]
}

func (w *fpWriter) grow() {
	if len(w.buf) > 32<<10 {
		w.flush()
	}
}

func (w *fpWriter) u64(v uint64) { w.grow(); w.buf = binary.AppendUvarint(w.buf, v) }
func (w *fpWriter) int(v int)    { w.u64(uint64(v)) }
func (w *fpWriter) bool(b bool) {
	if b {
		w.u64(1)
	} else {
		w.u64(0)
	}
}
func (w *fpWriter) str(s string) { w.int(len(s)); w.buf = append(w.buf, s...) }
func (w *fpWriter) strs(l []string) {
	w.int(len(l))
	for _, s := range l {
		w.str(s)
	}
}
func (w *fpWriter) bytes(b []byte) { w.int(len(b)); w.buf = append(w.buf, b...) }

// addr writes a family byte (0 for the zero Addr) and the address.
func (w *fpWriter) addr(a netip.Addr) {
	w.grow()
	switch {
	case !a.IsValid():
		w.buf = append(w.buf, 0)
	case a.Is4():
		w.buf = append(w.buf, 4)
	default:
		w.buf = append(w.buf, 6)
	}
	w.buf = appendAddr(w.buf, a)
}

// appendAddr appends a's 4 or 16 bytes (nothing for the zero Addr), as
// netip.Addr.AsSlice would, without allocating.
func appendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case !a.IsValid():
		return b
	case a.Is4():
		v := a.As4()
		return append(b, v[:]...)
	default:
		v := a.As16()
		return append(b, v[:]...)
	}
}

func (w *fpWriter) ranges(rs []config.AddrRange) {
	w.int(len(rs))
	for _, r := range rs {
		w.addr(r.From)
		w.addr(r.To)
	}
}

func (w *fpWriter) ports(ps []config.PortRange) {
	w.int(len(ps))
	for _, p := range ps {
		w.u64(uint64(p.From)<<16 | uint64(p.To))
	}
}

func (w *fpWriter) match(m config.AddrMatch) {
	w.str(m.Set)
	w.ranges(m.Ranges)
}

func (w *fpWriter) rate(r *config.Rate) {
	w.bool(r != nil)
	if r != nil {
		w.u64(r.Count)
		w.str(r.Unit)
		w.u64(uint64(r.Burst))
	}
}

func (w *fpWriter) duration(d time.Duration) { w.u64(uint64(d)) }

func (w *fpWriter) prefix(p netip.Prefix) {
	w.addr(p.Addr())
	w.int(p.Bits() + 1)
}

// tenantFingerprint fingerprints t and returns, per config set name, the
// fingerprint of that set's content (file sum or ranges, and options).
func tenantFingerprint(t *config.Tenant) (fingerprint, map[string]fingerprint) {
	w := &fpWriter{h: sha256.New(), buf: make([]byte, 0, 64<<10)}
	w.int(len(t.Interfaces))
	for _, i := range t.Interfaces {
		w.str(i.Name)
		w.int(len(i.Addresses))
		for _, a := range i.Addresses {
			w.prefix(a)
		}
		w.int(len(i.VIPs))
		for _, a := range i.VIPs {
			w.prefix(a)
		}
	}
	// The quota and the rules admitting HA and service traffic
	// (quota.go, services.go). HA and Services are small: JSON is their
	// canonical form (map keys sorted).
	w.int(t.ConntrackLimit)
	w.json(t.HA)
	w.json(&t.Services)
	p := &t.Policy
	w.bool(p.Enabled)
	w.int(len(p.Zones))
	for _, z := range p.Zones {
		w.str(z.Name)
		w.strs(z.Interfaces)
	}
	w.int(len(p.Defaults))
	for _, d := range p.Defaults {
		w.str(d.From)
		w.str(d.To)
		w.str(string(d.Action))
		w.str(d.Key)
		w.int(d.Line)
	}
	w.int(len(p.Rules))
	for _, r := range p.Rules {
		w.int(r.Index)
		w.int(r.Line)
		w.str(r.ID)
		w.str(r.Name)
		w.str(r.Comment)
		w.strs(r.From)
		w.strs(r.To)
		w.match(r.Saddr)
		w.match(r.Daddr)
		w.bytes(r.Protos)
		w.ports(r.Sport)
		w.ports(r.Dport)
		w.bytes(r.ICMP)
		w.strs(r.CtState)
		w.str(string(r.Action))
		w.bool(r.Log)
		w.str(r.LogPfx)
		w.rate(r.LogLimit)
		w.rate(r.Limit)
		w.bool(r.V4)
		w.bool(r.V6)
	}
	sets := make(map[string]fingerprint, len(p.Sets))
	w.int(len(p.Sets))
	for _, s := range p.Sets {
		k := setFingerprint(s)
		sets[s.Name] = k
		w.str(s.Name)
		w.buf = append(w.buf, k[:]...)
	}
	w.int(len(p.NAT))
	for _, n := range p.NAT {
		w.int(n.Index)
		w.int(n.Line)
		w.str(n.ID)
		w.str(n.Type)
		w.str(n.In)
		w.str(n.Out)
		w.match(n.Saddr)
		w.match(n.Daddr)
		w.bytes(n.Protos)
		w.ports(n.Dport)
		w.addr(n.ToAddr)
		w.addr(n.ToEnd)
		w.u64(uint64(n.ToPort))
		w.prefix(n.Prefix)
		w.prefix(n.ToPrefix)
		w.bool(n.Hairpin)
		w.int(n.Family)
		w.str(n.TargetZone)
		w.int(len(n.Public))
		for _, a := range n.Public {
			w.addr(a)
		}
	}
	w.flush()
	var fp fingerprint
	w.h.Sum(fp[:0])
	return fp, sets
}

// setFingerprint is the fingerprint of one config set: its options and
// its content (File is written only as a name: the content is the sum).
func setFingerprint(s *config.AddrSet) fingerprint {
	w := &fpWriter{h: sha256.New()}
	w.str(s.Name)
	w.str(s.File)
	w.bool(s.Dynamic)
	w.duration(s.Timeout)
	if sum, ok := s.FileSum(); ok {
		w.str("file")
		w.buf = append(w.buf, sum[:]...)
	} else {
		w.str("ranges")
		w.ranges(s.V4)
		w.ranges(s.V6)
	}
	w.flush()
	var fp fingerprint
	w.h.Sum(fp[:0])
	return fp
}
