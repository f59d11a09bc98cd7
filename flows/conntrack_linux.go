package flows

import (
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func dial(h netns.NsHandle) (*conntrack.Conn, error) {
	c, err := conntrack.Dial(&netlink.Config{NetNS: int(h)})
	if err != nil {
		return nil, fmt.Errorf("ctnetlink: %w", err)
	}
	// A busy tenant's table is large: room for the dump.
	_ = c.SetReadBuffer(8 << 20)
	return c, nil
}

// List returns the flows in namespace h that f selects.
func List(h netns.NsHandle, f Filter) ([]Flow, error) {
	c, err := dial(h)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	raw, err := c.Dump(nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack dump: %w", err)
	}
	now := time.Now()
	out := make([]Flow, 0, len(raw))
	for _, r := range raw {
		fl := fromKernel(r, now)
		if f.Match(fl) {
			out = append(out, fl)
		}
	}
	return out, nil
}

// Delete removes the given flows from namespace h. Entries that are
// already gone (closed meanwhile) are not errors; it returns how many it
// removed.
func Delete(h netns.NsHandle, fls []Flow) (int, error) {
	deleted, err := DeleteEach(h, fls)
	n := 0
	for _, ok := range deleted {
		if ok {
			n++
		}
	}
	return n, err
}

// DeleteEach is Delete reporting, per flow, whether it was deleted, over
// one ctnetlink socket.
func DeleteEach(h netns.NsHandle, fls []Flow) ([]bool, error) {
	deleted := make([]bool, len(fls))
	if len(fls) == 0 {
		return deleted, nil
	}
	c, err := dial(h)
	if err != nil {
		return deleted, err
	}
	defer c.Close()
	var errs []error
	for i, fl := range fls {
		err := c.Delete(toKernel(fl))
		switch {
		case err == nil:
			deleted[i] = true
		case errors.Is(err, unix.ENOENT):
		default:
			errs = append(errs, fmt.Errorf("delete flow %s %s:%d -> %s:%d: %w", fl.Proto, fl.Orig.Src, fl.Orig.SPort, fl.Orig.Dst, fl.Orig.DPort, err))
		}
	}
	return deleted, errors.Join(errs...)
}

func fromKernel(r conntrack.Flow, now time.Time) Flow {
	o, p := r.TupleOrig, r.TupleReply
	fl := Flow{
		ID:        r.ID,
		Proto:     protoName(o.Proto.Protocol),
		Orig:      Tuple{Src: o.IP.SourceAddress, Dst: o.IP.DestinationAddress, SPort: o.Proto.SourcePort, DPort: o.Proto.DestinationPort},
		Reply:     Tuple{Src: p.IP.SourceAddress, Dst: p.IP.DestinationAddress, SPort: p.Proto.SourcePort, DPort: p.Proto.DestinationPort},
		SNAT:      r.Status.SrcNAT(),
		DNAT:      r.Status.DstNAT(),
		Assured:   r.Status.Assured(),
		SeenReply: r.Status.SeenReply(),
		Timeout:   time.Duration(r.Timeout) * time.Second,
		Packets:   r.CountersOrig.Packets + r.CountersReply.Packets,
		Bytes:     r.CountersOrig.Bytes + r.CountersReply.Bytes,
		Mark:      r.Mark,
		key: key{proto: o.Proto.Protocol, icmpID: o.Proto.ICMPID, icmpType: o.Proto.ICMPType,
			icmpCo: o.Proto.ICMPCode, zone: r.Zone},
	}
	if r.ProtoInfo.TCP != nil {
		fl.State = tcpState(r.ProtoInfo.TCP.State)
	}
	if !r.Timestamp.Start.IsZero() {
		fl.Age = now.Sub(r.Timestamp.Start)
	}
	return fl
}

func toKernel(fl Flow) conntrack.Flow {
	var r conntrack.Flow
	r.Zone = fl.key.zone
	r.TupleOrig = conntrack.Tuple{
		IP: conntrack.IPTuple{SourceAddress: fl.Orig.Src, DestinationAddress: fl.Orig.Dst},
		Proto: conntrack.ProtoTuple{Protocol: fl.key.proto, SourcePort: fl.Orig.SPort, DestinationPort: fl.Orig.DPort,
			ICMPv4: fl.key.proto == 1, ICMPv6: fl.key.proto == 58,
			ICMPID: fl.key.icmpID, ICMPType: fl.key.icmpType, ICMPCode: fl.key.icmpCo},
		Zone: fl.key.zone,
	}
	return r
}
