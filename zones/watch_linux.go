package zones

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
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

// subscriptionQueue is the channel between the netlink library's reader
// and ours, which queues at once: a longer one would only delay an
// overflow's detection.
const subscriptionQueue = 64

// maxQueued bounds the events kept between two Takes; past it they are
// dropped and the next Take asks for a re-scan, as after an overflow.
const maxQueued = 4096

// Watch reports link events of the default namespace and of every tenant
// namespace. Its reader goroutines never block on the consumer: events
// queue (bounded) until Take. A subscription whose socket fails, the
// kernel's ENOBUFS when the receive buffer overflowed above all, is
// subscribed again with backoff, and Take then reports that events were
// lost (resync): the consumer re-scans everything. No failure ends a
// Watch; only Close does.
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
		stop <- struct{}{} // the reader closes the socket, then answers
		<-stop
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
// inside it (through the one netns door), then read from anywhere.
func (w *Watch) open(name string, updates chan netlink.LinkUpdate, done chan struct{}) error {
	rcvbuf := w.opts.TenantReceiveBuffer
	if name == "" && w.opts.ReceiveBuffer != nil {
		rcvbuf = w.opts.ReceiveBuffer()
	}
	o := netlink.LinkSubscribeOptions{
		ReceiveBufferSize:      rcvbuf,
		ReceiveBufferForceSize: rcvbuf > 0, // above net.core.rmem_max: the daemon has CAP_NET_ADMIN
		ErrorCallback: func(err error) {
			select {
			case <-done: // closed on purpose
			default:
				w.log.Warn("link watch: subscription failed; subscribing again", "namespace", nsLabel(name), "error", err)
			}
		},
	}
	sub := func() error { return netlink.LinkSubscribeWithOptions(updates, done, o) }
	var err error
	if name == "" {
		err = ns.Do(w.defaultNS, sub)
	} else {
		err = ns.DoNamed(name, sub)
	}
	return err
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
	updates, done := make(chan netlink.LinkUpdate, subscriptionQueue), make(chan struct{})
	if err := w.open(name, updates, done); err != nil {
		return fmt.Errorf("watch links in namespace %s: %w", nsLabel(name), err)
	}
	stop := make(chan struct{})
	w.mu.Lock()
	w.subs[name] = stop
	w.wg.Add(1)
	w.mu.Unlock()
	go w.read(name, updates, done, stop)
	return nil
}

// read queues the events of one namespace until stopped; when the socket
// fails it subscribes again (backoff up to 5 s) and flags a resync.
func (w *Watch) read(name string, updates chan netlink.LinkUpdate, done, stop chan struct{}) {
	defer w.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		for updates != nil {
			select {
			case u, ok := <-updates:
				if !ok {
					updates = nil
					break
				}
				w.push(toEvent(name, u))
			case <-stop:
				close(done)
				for range updates { // the library's reader ends once its socket is closed
				}
				close(stop)
				return
			}
		}
		// The library's reader stopped: the socket failed (ENOBUFS: the
		// kernel dropped events) and is closed. Subscribe again; events in
		// between are lost, hence the resync.
		close(done)
		for {
			select {
			case <-stop:
				close(stop)
				return
			case <-time.After(backoff):
			}
			updates, done = make(chan netlink.LinkUpdate, subscriptionQueue), make(chan struct{})
			err := w.open(name, updates, done)
			if err == nil {
				break
			}
			updates = nil
			backoff = min(2*backoff, 5*time.Second)
			w.log.Warn("link watch: cannot subscribe again; retrying", "namespace", nsLabel(name), "retry_in", backoff.String(), "error", err)
		}
		backoff = 50 * time.Millisecond
		w.log.Warn("link watch lost events and subscribed again; re-scanning", "namespace", nsLabel(name))
		w.mu.Lock()
		w.resync = true
		w.mu.Unlock()
		w.signal()
	}
}

func toEvent(name string, u netlink.LinkUpdate) LinkEvent {
	a := u.Link.Attrs()
	return LinkEvent{Namespace: name, Gone: u.Header.Type == unix.RTM_DELLINK, Name: a.Name, Index: a.Index,
		Kind: u.Link.Type(), MAC: a.HardwareAddr, Alias: a.Alias}
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
