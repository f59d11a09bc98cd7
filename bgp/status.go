package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// DefaultRunDir is where speakers keep their sockets: RUNDIR/TENANT/.
const DefaultRunDir = "/run/fwd"

// SocketPath is the gRPC API socket of a tenant's speaker.
func SocketPath(runDir, tenant string) string {
	return filepath.Join(runDir, tenant, "gobgp.sock")
}

// FIBStatus is what a speaker reports about the routes it holds in its
// kernel table, in DIR/fib.json next to its socket (FIBStatusPath),
// rewritten at most once a second while it changes. Reading it costs the
// same whatever the size of the table: status and metrics use it instead
// of dumping a full BGP table.
type FIBStatus struct {
	PID int `json:"pid"` // the speaker that wrote it
	// Routes is how many routes the speaker holds in the kernel under
	// Protocol (244): the best paths it installed plus the stale routes
	// of a previous speaker it has not removed yet.
	Routes int `json:"routes"`
	// Stale is how many of them a previous speaker left and no neighbour
	// has re-sent yet.
	Stale int `json:"stale"`
	// Failures counts the route writes the kernel refused since the
	// speaker started (e.g. a static route holds the key).
	Failures int `json:"failures"`
}

// FIBStatusPath is the FIB status file of the speaker whose socket and
// pid file live in dir.
func FIBStatusPath(dir string) string { return filepath.Join(dir, "fib.json") }

// ReadFIBStatus reads the FIB status file in dir.
func ReadFIBStatus(dir string) (FIBStatus, error) {
	var st FIBStatus
	b, err := os.ReadFile(FIBStatusPath(dir))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", FIBStatusPath(dir), err)
	}
	return st, nil
}

func writeFIBStatus(path string, st FIBStatus) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Neighbor is a neighbour's state as `fwd bgp show` and the metrics see it.
type Neighbor struct {
	Tenant      string    `json:"tenant"`
	Address     string    `json:"address"`
	ASN         uint32    `json:"asn"`
	Description string    `json:"description,omitempty"`
	State       string    `json:"state"` // idle, connect, active, opensent, openconfirm, established
	Since       time.Time `json:"since,omitempty"`
	Uptime      float64   `json:"uptime_seconds"` // 0 unless established
	RouterID    string    `json:"router_id,omitempty"`
	Received    uint64    `json:"prefixes_received"`
	Accepted    uint64    `json:"prefixes_accepted"`
	Advertised  uint64    `json:"prefixes_advertised"`
}

// Route is one path in a speaker's table.
type Route struct {
	Prefix   string   `json:"prefix"`
	NextHop  string   `json:"next_hop"`
	ASPath   []uint32 `json:"as_path"`
	Neighbor string   `json:"neighbor,omitempty"` // "" for routes this tenant originates
	Best     bool     `json:"best"`
	Age      float64  `json:"age_seconds"`
}

// Client talks to one speaker's gRPC API.
type Client struct {
	conn *grpc.ClientConn
	api  api.GobgpApiClient
}

// Dial connects to the speaker socket at path. It does not block: the
// first call fails if nothing listens there.
func Dial(path string) (*Client, error) {
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, api: api.NewGobgpApiClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// API returns the raw gobgp client.
func (c *Client) API() api.GobgpApiClient { return c.api }

func stateName(s api.PeerState_SessionState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SESSION_STATE_"))
}

// Neighbors lists the speaker's neighbours, sorted by address.
func (c *Client) Neighbors(ctx context.Context, tenant string) ([]Neighbor, error) {
	stream, err := c.api.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true})
	if err != nil {
		return nil, err
	}
	var out []Neighbor
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		p := r.Peer
		n := Neighbor{Tenant: tenant, Address: p.GetConf().GetNeighborAddress(), ASN: p.GetConf().GetPeerAsn(), Description: p.GetConf().GetDescription()}
		if st := p.GetState(); st != nil {
			n.State = stateName(st.SessionState)
			n.RouterID = st.RouterId
		}
		if ts := p.GetTimers().GetState(); ts != nil {
			if n.State == "established" && ts.Uptime != nil {
				n.Since = ts.Uptime.AsTime()
				n.Uptime = time.Since(n.Since).Round(time.Second).Seconds()
			} else if ts.Downtime != nil && ts.Downtime.AsTime().Unix() > 0 {
				n.Since = ts.Downtime.AsTime()
			}
		}
		for _, as := range p.AfiSafis {
			if s := as.GetState(); s != nil {
				n.Received += s.Received
				n.Advertised += s.Advertised
				accepted := s.Accepted
				// gobgp's count ignores the global import policy, which is
				// where fwd's import filters live: count what passes them,
				// unless that means streaming a huge table.
				if s.Received > 0 && s.Received <= exactAcceptedLimit {
					if a, err := c.acceptedPaths(ctx, n.Address, s.Family); err == nil {
						accepted = a
					}
				}
				n.Accepted += accepted
			}
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return addrLess(out[i].Address, out[j].Address) })
	return out, nil
}

// exactAcceptedLimit is the largest Adj-RIB-In for which Neighbors counts
// accepted prefixes exactly; above it the figure is gobgp's, before import
// filters.
const exactAcceptedLimit = 100000

func (c *Client) acceptedPaths(ctx context.Context, addr string, fam *api.Family) (uint64, error) {
	stream, err := c.api.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_ADJ_IN, Name: addr, Family: fam, EnableFiltered: true})
	if err != nil {
		return 0, err
	}
	var n uint64
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		for _, p := range r.Destination.Paths {
			if !p.Filtered {
				n++
			}
		}
	}
}

func addrLess(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil {
		return a < b
	}
	return x.Less(y)
}

// Routes lists the speaker's RIB (best and other paths), optionally only
// for one prefix (exact or longest match of an address). limit > 0 stops
// after that many destinations.
func (c *Client) Routes(ctx context.Context, prefix string, limit int) ([]Route, error) {
	var out []Route
	fams := []*api.Family{familyV4, familyV6}
	var lookup []*api.TableLookupPrefix
	if prefix != "" {
		if p, err := netip.ParsePrefix(prefix); err == nil {
			fams = []*api.Family{familyOf(famName(p.Addr()))}
			lookup = []*api.TableLookupPrefix{{Prefix: p.String(), Type: api.TableLookupPrefix_EXACT}}
		} else if a, err := netip.ParseAddr(prefix); err == nil {
			fams = []*api.Family{familyOf(famName(a))}
			// gobgp resolves a bare address by longest match.
			lookup = []*api.TableLookupPrefix{{Prefix: a.String(), Type: api.TableLookupPrefix_EXACT}}
		} else {
			return nil, fmt.Errorf("invalid prefix %q", prefix)
		}
	}
	dests := 0
	for _, f := range fams {
		stream, err := c.api.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: f, Prefixes: lookup, SortType: api.ListPathRequest_PREFIX})
		if err != nil {
			return nil, err
		}
		for {
			r, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			d := r.Destination
			for _, p := range d.Paths {
				rt := Route{Prefix: d.Prefix, Best: p.Best, Neighbor: p.NeighborIp}
				if !p.IsFromExternal && (p.NeighborIp == "" || p.NeighborIp == "<nil>") {
					rt.Neighbor = ""
				}
				if p.Age != nil {
					rt.Age = time.Since(p.Age.AsTime()).Round(time.Second).Seconds()
				}
				_, nh, _ := decodePath(p)
				if nh.IsValid() {
					rt.NextHop = nh.String()
				}
				rt.ASPath = asPath(p)
				out = append(out, rt)
			}
			dests++
			if limit > 0 && dests >= limit {
				return out, nil
			}
		}
	}
	return out, nil
}

func famName(a netip.Addr) string {
	if a.Is6() {
		return "ipv6-unicast"
	}
	return "ipv4-unicast"
}

func asPath(p *api.Path) []uint32 {
	out := []uint32{}
	for _, at := range p.Pattrs {
		if !strings.HasSuffix(at.TypeUrl, ".AsPathAttribute") {
			continue
		}
		var v api.AsPathAttribute
		if at.UnmarshalTo(&v) != nil {
			continue
		}
		for _, seg := range v.Segments {
			out = append(out, seg.Numbers...)
		}
	}
	return out
}
