package zones

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// WatchOptions configure a Watch.
type WatchOptions struct {
	// ReceiveBuffer is asked, at each (re)subscription, for the receive
	// buffer of the default namespace's socket, in bytes (0: the kernel
	// default). The daemon sizes it for its number of tenants: one apply
	// makes a few events per tenant there.
	ReceiveBuffer func() int
	// TenantReceiveBuffer is the receive buffer of each tenant
	// namespace's socket (0: the kernel default).
	TenantReceiveBuffer int
	// Log receives the watch's own troubles; nil discards them.
	Log *slog.Logger
	// OnEvent, if set, is called by a reader before it queues each
	// event (tests block it to let a socket overflow).
	OnEvent func(LinkEvent)
}

// maxQueued bounds the events kept between two Takes; past it they are
// dropped and the next Take asks for a re-scan, as after an overflow.
const maxQueued = 4096

// Watch reports link events of the default namespace and of every tenant
// namespace. Its reader goroutines never block on the consumer: events
// queue (bounded) until Take. When the kernel drops events (ENOBUFS: the
// receive buffer overflowed) or a subscription fails (it is then opened
// again, with backoff), Take reports that events were lost (resync): the
// consumer re-scans everything. No failure ends a Watch; only Close does.
// Each namespace costs one socket and one waiting goroutine
// (rtnl.LinkSubscription).
type Watch struct {
	opts      WatchOptions
	log       *slog.Logger
	defaultNS netns.NsHandle

	mu     sync.Mutex
	queue  []LinkEvent
	resync bool
	subs   map[string]chan struct{} // namespace ("" default) → closed to stop
	closed bool
	wg     sync.WaitGroup
	kick   chan struct{}
}

// Watch starts a watch of the default namespace and of every fwd
// namespace that exists. The Manager keeps it up to date: a namespace it
// creates is watched at once, one it deletes is no longer watched before
// it is deleted (a socket inside a namespace keeps it alive).
func (m *Manager) Watch(opts WatchOptions) (*Watch, error) {
	w := &Watch{opts: opts, log: opts.Log, defaultNS: m.defaultNS, subs: map[string]chan struct{}{}, kick: make(chan struct{}, 1)}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if err := w.subscribe(""); err != nil {
		return nil, err
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return nil, err
	}
	m.mu.Lock()
	m.watch = w
	m.mu.Unlock()
	return w, nil
}

// Kick receives a value when events (or a resync) are waiting for Take.
func (w *Watch) Kick() <-chan struct{} { return w.kick }

// Take returns the events queued since the last Take, and whether some
// were lost (overflow, resubscription) so that everything must be
// re-scanned.
func (w *Watch) Take() (events []LinkEvent, resync bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	events, resync = w.queue, w.resync
	w.queue, w.resync = nil, false
	return events, resync
}

// Sync watches every fwd namespace pinned now and stops watching the
// ones gone.
func (w *Watch) Sync() error {
	names, err := ns.List()
	if err != nil {
		return fmt.Errorf("link watch: %w", err)
	}
	want := map[string]bool{}
	for _, n := range names {
		if owned(n) {
			want[n] = true
		}
	}
	w.mu.Lock()
	var gone []string
	for n := range w.subs {
		if n != "" && !want[n] {
			gone = append(gone, n)
		}
	}
	w.mu.Unlock()
	for _, n := range gone {
		w.remove(n)
	}
	for n := range want {
		if err := w.add(n); err != nil {
			w.log.Warn("link watch: cannot watch a tenant namespace", "namespace", n, "error", err)
		}
	}
	return nil
}

// owned reports whether the pinned namespace is fwd's (its lo is marked).
func owned(name string) bool {
	h, err := ns.Open(name)
	if err != nil {
		return false
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return false
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	return err == nil && lo.Attrs().Alias == NamespaceMark
}

// add watches a tenant namespace (no-op if watched).
func (w *Watch) add(name string) error {
	w.mu.Lock()
	_, ok := w.subs[name]
	closed := w.closed
	w.mu.Unlock()
	if ok || closed {
		return nil
	}
	return w.subscribe(name)
}

// remove stops watching a tenant namespace and waits until its socket is
// closed.
func (w *Watch) remove(name string) {
	w.mu.Lock()
	stop, ok := w.subs[name]
	delete(w.subs, name)
	w.mu.Unlock()
	if ok {
		stop <- struct{}{} // taken by the closer goroutine: it closes the socket
		<-stop             // closed by the reader once it has returned
	}
}

// Close ends every subscription.
func (w *Watch) Close() {
	w.mu.Lock()
	w.closed = true
	var names []string
	for n := range w.subs {
		names = append(names, n)
	}
	w.mu.Unlock()
	for _, n := range names {
		w.remove(n)
	}
	w.wg.Wait()
}

// open subscribes to link events in a namespace: the socket is created
// inside it (rtnl goes through the one netns door), then read from
// anywhere.
func (w *Watch) open(name string) (*rtnl.LinkSubscription, error) {
	rcvbuf := w.opts.TenantReceiveBuffer
	if name == "" {
		if w.opts.ReceiveBuffer != nil {
			rcvbuf = w.opts.ReceiveBuffer()
		}
		return rtnl.SubscribeLinks(w.defaultNS, rcvbuf)
	}
	h, err := ns.Open(name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return rtnl.SubscribeLinks(h, rcvbuf)
}

func nsLabel(name string) string {
	if name == "" {
		return "default"
	}
	return name
}

// subscribe opens the first subscription of a namespace (its error is
// the caller's) and starts the reader that keeps it open.
func (w *Watch) subscribe(name string) error {
	sub, err := w.open(name)
	if err != nil {
		return fmt.Errorf("watch links in namespace %s: %w", nsLabel(name), err)
	}
	stop := make(chan struct{})
	w.mu.Lock()
	w.subs[name] = stop
	w.wg.Add(1)
	w.mu.Unlock()
	cur := &current{sub: sub}
	go func() { // Close of the socket is what ends a blocked Read
		<-stop
		cur.close()
	}()
	go w.read(name, cur, stop)
	return nil
}

// current is the live subscription of a reader, replaced when it fails.
type current struct {
	mu     sync.Mutex
	sub    *rtnl.LinkSubscription
	closed bool
}

func (c *current) get() *rtnl.LinkSubscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sub
}

// set installs a new subscription; false (and it is closed) once stopped.
func (c *current) set(s *rtnl.LinkSubscription) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		s.Close()
		return false
	}
	c.sub = s
	return true
}

func (c *current) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.sub != nil {
		c.sub.Close()
	}
}

func (c *current) stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// read queues the events of one namespace until stopped. An overflow
// (ENOBUFS: the kernel dropped events; the socket stays usable) flags a
// resync; any other failure closes the socket and subscribes again
// (backoff up to 5 s), then flags a resync for what was lost meanwhile.
func (w *Watch) read(name string, cur *current, stop chan struct{}) {
	defer w.wg.Done()
	defer close(stop) // tells remove the socket is closed
	for {
		evs, err := cur.get().Read()
		switch {
		case err == nil:
			for _, ev := range evs {
				w.push(LinkEvent{Namespace: name, Gone: ev.Deleted, Name: ev.Name, Index: ev.Index, Kind: ev.Kind, MAC: ev.MAC, Alias: ev.Alias})
			}
			continue
		case cur.stopped():
			return
		case errors.Is(err, rtnl.ErrOverflow):
			w.log.Warn("link watch lost events (receive buffer overflow); re-scanning", "namespace", nsLabel(name))
		default:
			w.log.Warn("link watch: subscription failed; subscribing again", "namespace", nsLabel(name), "error", err)
			cur.get().Close()
			if !w.resubscribe(name, cur) {
				return
			}
			w.log.Warn("link watch lost events and subscribed again; re-scanning", "namespace", nsLabel(name))
		}
		w.mu.Lock()
		w.resync = true
		w.mu.Unlock()
		w.signal()
	}
}

// resubscribe opens a new subscription with backoff; false once stopped.
func (w *Watch) resubscribe(name string, cur *current) bool {
	backoff := 50 * time.Millisecond
	for {
		time.Sleep(backoff)
		if cur.stopped() {
			return false
		}
		sub, err := w.open(name)
		if err == nil {
			return cur.set(sub)
		}
		backoff = min(2*backoff, 5*time.Second)
		w.log.Warn("link watch: cannot subscribe again; retrying", "namespace", nsLabel(name), "retry_in", backoff.String(), "error", err)
	}
}

func (w *Watch) push(ev LinkEvent) {
	if w.opts.OnEvent != nil {
		w.opts.OnEvent(ev)
	}
	w.mu.Lock()
	if len(w.queue) < maxQueued {
		w.queue = append(w.queue, ev)
	} else {
		w.resync = true
	}
	w.mu.Unlock()
	w.signal()
}

func (w *Watch) signal() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}
