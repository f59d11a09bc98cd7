package ha

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// State is the pair's state as this box sees it.
type State string

// States. Master, backup and fault are keepalived's; stopped means
// keepalived is not running (or said STOP); unknown means it runs but has
// not reported a transition yet.
const (
	StateMaster  State = "master"
	StateBackup  State = "backup"
	StateFault   State = "fault"
	StateStopped State = "stopped"
	StateUnknown State = "unknown"
)

// Transition is the last state change the notify script recorded.
type Transition struct {
	State    State
	At       time.Time
	Priority int
}

// ParseStateFile reads the state file: "MASTER 1764612345.123456789 150".
func ParseStateFile(b []byte) (Transition, error) {
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return Transition{}, fmt.Errorf("state file %q: want STATE TIME PRIORITY", strings.TrimSpace(string(b)))
	}
	var tr Transition
	switch f[0] {
	case "MASTER":
		tr.State = StateMaster
	case "BACKUP":
		tr.State = StateBackup
	case "FAULT":
		tr.State = StateFault
	case "STOP", "DELETED":
		tr.State = StateStopped
	default:
		return Transition{}, fmt.Errorf("state file: unknown state %q", f[0])
	}
	secs, frac, _ := strings.Cut(f[1], ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return Transition{}, fmt.Errorf("state file: time %q: %w", f[1], err)
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return Transition{}, fmt.Errorf("state file: time %q: %w", f[1], err)
		}
	}
	tr.At = time.Unix(s, ns)
	if tr.Priority, err = strconv.Atoi(f[2]); err != nil {
		return Transition{}, fmt.Errorf("state file: priority %q: %w", f[2], err)
	}
	return tr, nil
}

// SyncStats are conntrackd's counters (`conntrackd -s`): the flows it
// holds and the sync traffic with the peer.
type SyncStats struct {
	InternalFlows uint64 `json:"internal_flows"` // this box's flows, sent to the peer
	ExternalFlows uint64 `json:"external_flows"` // the peer's flows, committed on takeover
	BytesSent     uint64 `json:"bytes_sent"`
	BytesRecv     uint64 `json:"bytes_recv"`
	MsgsSent      uint64 `json:"msgs_sent"`
	MsgsRecv      uint64 `json:"msgs_recv"`
	SendErrors    uint64 `json:"send_errors"`
	RecvErrors    uint64 `json:"recv_errors"`
	LostMsgs      uint64 `json:"lost_msgs"`
	MalformedMsgs uint64 `json:"malformed_msgs"`
}

var (
	countThenLabel = regexp.MustCompile(`(\d+)\s+([A-Za-z]+(?: [A-Za-z]+)*)`)
	labelThenCount = regexp.MustCompile(`([A-Za-z][A-Za-z ]*):\s+(\d+)`)
	parenthesised  = regexp.MustCompile(`\s*\(.*\)`)
)

// ParseConntrackdStats reads the output of `conntrackd -C conf -s`: sections
// ("cache internal:", "UDP traffic (active device=sync):") holding either
// "label: N" or "N label" pairs.
func ParseConntrackdStats(out []byte) (SyncStats, error) {
	kv := map[string]uint64{}
	section := ""
	for _, line := range strings.Split(string(out), "\n") {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		if strings.HasSuffix(t, ":") && !strings.ContainsAny(t, "0123456789") || strings.HasSuffix(t, "):") {
			section = strings.ToLower(parenthesised.ReplaceAllString(strings.TrimSuffix(t, ":"), ""))
			continue
		}
		pairs := labelThenCount.FindAllStringSubmatch(t, -1)
		for _, m := range pairs {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			kv[section+"/"+strings.ToLower(strings.TrimSpace(m[1]))] = n
		}
		if len(pairs) > 0 {
			continue
		}
		for _, m := range countThenLabel.FindAllStringSubmatch(t, -1) {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			kv[section+"/"+strings.ToLower(m[2])] = n
		}
	}
	if _, ok := kv["cache internal/current active connections"]; !ok {
		return SyncStats{}, fmt.Errorf("conntrackd statistics without an internal cache section: %q", firstLine(out))
	}
	return SyncStats{
		InternalFlows: kv["cache internal/current active connections"],
		ExternalFlows: kv["cache external/current active connections"],
		BytesSent:     kv["udp traffic/bytes sent"],
		BytesRecv:     kv["udp traffic/bytes recv"],
		MsgsSent:      kv["udp traffic/pckts sent"],
		MsgsRecv:      kv["udp traffic/pckts recv"],
		SendErrors:    kv["udp traffic/error send"],
		RecvErrors:    kv["udp traffic/error recv"],
		LostMsgs:      kv["message tracking/lost msgs"],
		MalformedMsgs: kv["message tracking/malformed msgs"],
	}, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
