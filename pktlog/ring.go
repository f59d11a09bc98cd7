package pktlog

import "sync"

// Ring keeps the most recent entries (bounded) and lets followers wait
// for new ones: it backs `fwd log` and `fwd log -f`.
type Ring struct {
	mu   sync.Mutex
	buf  []Entry
	next uint64 // sequence number of the next entry
	size int
	wake chan struct{}
}

// NewRing returns a ring holding at most size entries.
func NewRing(size int) *Ring {
	return &Ring{buf: make([]Entry, 0, size), size: size, wake: make(chan struct{})}
}

// Add appends e, dropping the oldest entry when full.
func (r *Ring) Add(e Entry) {
	r.mu.Lock()
	if len(r.buf) < r.size {
		r.buf = append(r.buf, e)
	} else {
		r.buf[r.next%uint64(r.size)] = e
	}
	r.next++
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

// Since returns the entries with sequence ≥ seq (oldest first, optionally
// only those of one tenant), the sequence to ask for next, and a channel
// closed when a newer entry arrives. An entry already overwritten is
// skipped; missed counts them.
func (r *Ring) Since(seq uint64, tenant string) (out []Entry, next uint64, missed uint64, wake <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldest := r.next - uint64(len(r.buf))
	if seq < oldest {
		missed = oldest - seq
		seq = oldest
	}
	for s := seq; s < r.next; s++ {
		e := r.buf[s%uint64(r.size)] // below size, s%size == s
		if tenant == "" || e.Tenant == tenant {
			out = append(out, e)
		}
	}
	return out, r.next, missed, r.wake
}
