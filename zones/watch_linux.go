package zones

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netns"
)

// WatchOptions configure a Watch.
type WatchOptions struct {
	// ReceiveBuffer is asked, at each (re)subscription, for the receive
	// buffer of the watch's socket, in bytes (0: the kernel default). The
	// daemon sizes it for its number of tenants: one apply makes a few
	// events per tenant.
	ReceiveBuffer func() int
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
// namespace over one socket (rtnl.LinkSubscription with all namespaces:
// the kernel tags each event with the id the default namespace knows its
// namespace by; the Watch gives every tenant namespace an id and maps it
// back). One descriptor whatever the number of tenants, which matters
// under the daemon's 1024-descriptor limit, and no socket inside a tenant
// that would keep a deleted namespace alive. Its reader never blocks on
// the consumer: events queue (bounded) until Take. When the kernel drops
// events (ENOBUFS: the receive buffer overflowed) or the subscription
// fails (it is then opened again, with backoff), Take reports that events
// were lost (resync): the consumer re-scans everything. No failure ends a
// Watch; only Close does.
type Watch struct {
	opts      WatchOptions
	log       *slog.Logger
	defaultNS netns.NsHandle
	ids       *rtnl.Conn // namespace ids, in the default namespace; guarded by mu

	mu     sync.Mutex
	queue  []LinkEvent
	resync bool
	sub    *rtnl.LinkSubscription
	selfID int            // the default namespace's id for itself, -1 if none
	names  map[int]string // namespace id → tenant
	closed bool
	done   chan struct{} // closed when the reader has returned
	kick   chan struct{}
}

// Watch starts a watch of the default namespace and of every fwd
// namespace that exists. The Manager keeps it up to date: a namespace it
// creates is watched at once.
func (m *Manager) Watch(opts WatchOptions) (*Watch, error) {
	w := &Watch{opts: opts, log: opts.Log, defaultNS: m.defaultNS, names: map[int]string{},
		done: make(chan struct{}), kick: make(chan struct{}, 1)}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if w.ids, err = rtnl.Open(m.defaultNS); err != nil {
		return nil, fmt.Errorf("link watch: %w", err)
	}
	if w.selfID, err = w.ids.LookupNamespaceID(m.defaultNS); err != nil {
		w.ids.Close()
		return nil, fmt.Errorf("link watch: %w", err)
	}
	if w.sub, err = w.open(); err != nil {
		w.ids.Close()
		return nil, fmt.Errorf("link watch: %w", err)
	}
	go w.read()
	if err := w.Sync(); err != nil {
		w.Close()
		return nil, err
	}
	m.mu.Lock()
	m.watch = w
	m.mu.Unlock()
	return w, nil
}

func (w *Watch) open() (*rtnl.LinkSubscription, error) {
	rcvbuf := 0
	if w.opts.ReceiveBuffer != nil {
		rcvbuf = w.opts.ReceiveBuffer()
	}
	return rtnl.SubscribeLinks(w.defaultNS, rcvbuf, true)
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

// Sync watches every fwd namespace pinned now and forgets the ones gone.
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
	for id, n := range w.names {
		if !want[n] {
			delete(w.names, id)
		}
	}
	w.mu.Unlock()
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
	nh, err := rtnl.LinkHandle(h)
	if err != nil {
		return false
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	return err == nil && lo.Attrs().Alias == NamespaceMark
}

// add watches a tenant namespace: it gets an id in the default namespace
// (if it has none) so that its events reach the subscription.
func (w *Watch) add(name string) error {
	h, err := ns.Open(name)
	if err != nil {
		return err
	}
	defer h.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	id, err := w.ids.NamespaceID(h)
	if err != nil {
		return err
	}
	for old, n := range w.names {
		if n == name && old != id {
			delete(w.names, old)
		}
	}
	w.names[id] = name
	return nil
}

// remove stops reporting a tenant namespace's events (it is deleted).
func (w *Watch) remove(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, n := range w.names {
		if n == name {
			delete(w.names, id)
		}
	}
}

// Close ends the subscription and waits for its reader.
func (w *Watch) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.sub.Close()
	w.mu.Unlock()
	<-w.done
	w.ids.Close()
}

func (w *Watch) current() (*rtnl.LinkSubscription, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sub, w.closed
}

// read queues events until Close. An overflow (ENOBUFS: the kernel
// dropped events; the socket stays usable) flags a resync; any other
// failure closes the socket and subscribes again (backoff up to 5 s),
// then flags a resync for what was lost meanwhile.
func (w *Watch) read() {
	defer close(w.done)
	for {
		sub, closed := w.current()
		if closed {
			return
		}
		evs, err := sub.Read()
		switch {
		case err == nil:
			for _, ev := range evs {
				w.deliver(ev)
			}
			continue
		case errors.Is(err, rtnl.ErrOverflow):
			w.log.Warn("link watch lost events (receive buffer overflow); re-scanning")
		default:
			if _, closed := w.current(); closed {
				return
			}
			w.log.Warn("link watch: subscription failed; subscribing again", "error", err)
			sub.Close()
			if !w.resubscribe() {
				return
			}
			w.log.Warn("link watch lost events and subscribed again; re-scanning")
		}
		w.mu.Lock()
		w.resync = true
		w.mu.Unlock()
		w.signal()
	}
}

// resubscribe opens a new subscription with backoff; false once closed.
func (w *Watch) resubscribe() bool {
	backoff := 50 * time.Millisecond
	for {
		time.Sleep(backoff)
		sub, err := w.open()
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			if err == nil {
				sub.Close()
			}
			return false
		}
		if err == nil {
			w.sub = sub
			w.mu.Unlock()
			return true
		}
		w.mu.Unlock()
		backoff = min(2*backoff, 5*time.Second)
		w.log.Warn("link watch: cannot subscribe again; retrying", "retry_in", backoff.String(), "error", err)
	}
}

// deliver queues an event of the default namespace or of a watched
// tenant's; the others (namespaces fwd does not own) are dropped.
func (w *Watch) deliver(ev rtnl.LinkEvent) {
	e := LinkEvent{Gone: ev.Deleted, Name: ev.Name, Index: ev.Index, Kind: ev.Kind, MAC: ev.MAC, Alias: ev.Alias}
	w.mu.Lock()
	if ev.NSID >= 0 && ev.NSID != w.selfID {
		name, ok := w.names[ev.NSID]
		if !ok {
			w.mu.Unlock()
			return
		}
		e.Namespace = name
	}
	w.mu.Unlock()
	w.push(e)
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
