//go:build kernel

package ha

// Traffic through the pair, from the LAN host to the WAN host: a ping that
// records which sequence numbers were lost, and a long TCP stream that
// records the longest silence and whether it survived.

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
)

const pingInterval = 50 * time.Millisecond

type pinger struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

func startPing(t *testing.T) *pinger {
	t.Helper()
	p := &pinger{}
	p.cmd = exec.Command("ip", "netns", "exec", "lanhost", "ping", "-D", "-n", "-i", fmt.Sprint(pingInterval.Seconds()), "-W", "1", wanHost)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

var seqRe = regexp.MustCompile(`\[(\d+\.\d+)\].*icmp_seq=(\d+)`)

// stop ends the ping and returns the runs of lost echoes, as durations,
// in order, the totals, and the longest time between two replies (an
// echo queued while the neighbour was unresolved arrives late, not lost).
func (p *pinger) stop() (gaps []time.Duration, sent, lost int, silence time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
	got := map[int]bool{}
	maxSeq := 0
	var last float64
	for _, m := range seqRe.FindAllStringSubmatch(p.out.String(), -1) {
		n, _ := strconv.Atoi(m[2])
		got[n] = true
		at, _ := strconv.ParseFloat(m[1], 64)
		if last > 0 && at > last {
			silence = max(silence, time.Duration((at-last)*float64(time.Second)))
		}
		last = at
		maxSeq = n
	}
	run := 0
	for i := 1; i <= maxSeq; i++ {
		if !got[i] {
			run++
			lost++
			continue
		}
		if run > 0 {
			gaps = append(gaps, time.Duration(run)*pingInterval)
			run = 0
		}
	}
	return gaps, maxSeq, lost, silence
}

// stream is a TCP connection LAN host → WAN host carrying 256 bytes every
// 10 ms; the server side records the longest time without data.
type stream struct {
	l        net.Listener
	conn     net.Conn
	mu       sync.Mutex
	received int
	sent     int
	maxGap   time.Duration
	writeErr error
	readErr  error
	stopCh   chan struct{}
	done     sync.WaitGroup
}

func startStream(t *testing.T) *stream {
	t.Helper()
	s := &stream{stopCh: make(chan struct{})}
	err := ns.DoNamed("wanhost", func() (err error) {
		s.l, err = net.Listen("tcp", wanHost+":5001")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := s.l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	err = ns.DoNamed("lanhost", func() (err error) {
		s.conn, err = net.DialTimeout("tcp", wanHost+":5001", 3*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	s.done.Add(2)
	go func() { // server: read and time the silences
		defer s.done.Done()
		buf := make([]byte, 4096)
		last := time.Now()
		for {
			n, err := srv.Read(buf)
			now := time.Now()
			s.mu.Lock()
			if n > 0 {
				s.received += n
				if g := now.Sub(last); g > s.maxGap {
					s.maxGap = g
				}
				last = now
			}
			if err != nil {
				s.readErr = err
				s.mu.Unlock()
				srv.Close()
				return
			}
			s.mu.Unlock()
		}
	}()
	go func() { // client: write until stopped
		defer s.done.Done()
		chunk := bytes.Repeat([]byte("x"), 256)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stopCh:
				_ = s.conn.(*net.TCPConn).CloseWrite()
				return
			case <-tick.C:
			}
			_ = s.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
			n, err := s.conn.Write(chunk)
			s.mu.Lock()
			s.sent += n
			s.writeErr = err
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { s.l.Close(); s.conn.Close() })
	return s
}

// stop closes the client side and waits for the server to read it all:
// the stream survived when every byte arrived and the server saw EOF.
func (s *stream) stop(t *testing.T) (maxGap time.Duration, survived bool, detail string) {
	close(s.stopCh)
	waited := make(chan struct{})
	go func() { s.done.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(15 * time.Second):
		s.conn.Close()
		<-waited
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	detail = fmt.Sprintf("sent %d received %d write error %v read end %v", s.sent, s.received, s.writeErr, s.readErr)
	return s.maxGap, s.writeErr == nil && s.sent == s.received && s.sent > 0, detail
}

func sortedDurations(d []time.Duration) []time.Duration {
	c := append([]time.Duration(nil), d...)
	sort.Slice(c, func(i, j int) bool { return c[i] > c[j] })
	return c
}
