package main

// Traffic through the pair, from the LAN host to the WAN host: a ping
// whose losses can be read at any moment, and a long TCP stream that
// records its longest silence and whether it survived.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
)

const pingInterval = 50 * time.Millisecond

// lockedBuffer is ping's output, written by exec's copier while the demo
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type pinger struct {
	cmd *exec.Cmd
	out lockedBuffer
}

func startPing() (*pinger, error) {
	p := &pinger{}
	p.cmd = exec.Command("ip", "netns", "exec", "lanhost", "ping", "-D", "-n", "-i", fmt.Sprint(pingInterval.Seconds()), "-W", "1", wanHost)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	// Should the demo be killed outright, ping goes with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

var seqRe = regexp.MustCompile(`\[(\d+\.\d+)\].*icmp_seq=(\d+)`)

// pingStats: echoes sent up to the last reply, lost among them, and the
// longest time between two replies.
type pingStats struct {
	sent, lost int
	silence    time.Duration
}

func (p *pinger) stats() pingStats {
	got := map[int]bool{}
	var st pingStats
	var last float64
	for _, m := range seqRe.FindAllStringSubmatch(p.out.String(), -1) {
		n, _ := strconv.Atoi(m[2])
		got[n] = true
		at, _ := strconv.ParseFloat(m[1], 64)
		if last > 0 && at > last {
			st.silence = max(st.silence, time.Duration((at-last)*float64(time.Second)))
		}
		last = at
		st.sent = max(st.sent, n)
	}
	for i := 1; i <= st.sent; i++ {
		if !got[i] {
			st.lost++
		}
	}
	return st
}

func (p *pinger) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT) // gone already is as good
	_ = p.cmd.Wait()                         // interrupted: the status says so
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
	stopCh   chan struct{}
	stopped  bool
	done     sync.WaitGroup
}

func startStream() (*stream, error) {
	s := &stream{stopCh: make(chan struct{})}
	err := ns.DoNamed("wanhost", func() (err error) {
		s.l, err = net.Listen("tcp", wanHost+":5001")
		return err
	})
	if err != nil {
		return nil, err
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		defer close(accepted)
		if c, err := s.l.Accept(); err == nil {
			accepted <- c
		}
	}()
	err = ns.DoNamed("lanhost", func() (err error) {
		s.conn, err = net.DialTimeout("tcp", wanHost+":5001", 3*time.Second)
		return err
	})
	if err != nil {
		s.l.Close()
		return nil, err
	}
	srv := <-accepted
	if srv == nil {
		s.l.Close()
		s.conn.Close()
		return nil, errors.New("stream: the WAN host accepted nothing")
	}
	s.done.Add(2)
	go func() { // server: read and time the silences
		defer s.done.Done()
		defer srv.Close()
		buf := make([]byte, 4096)
		last := time.Now()
		for {
			n, err := srv.Read(buf)
			now := time.Now()
			s.mu.Lock()
			if n > 0 {
				s.received += n
				s.maxGap = max(s.maxGap, now.Sub(last))
				last = now
			}
			s.mu.Unlock()
			if err != nil {
				return
			}
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
				_ = s.conn.(*net.TCPConn).CloseWrite() // the server sees EOF, or the read deadline
				return
			case <-tick.C:
			}
			_ = s.conn.SetWriteDeadline(time.Now().Add(20 * time.Second)) // a TCP socket always takes it
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
	return s, nil
}

// stop closes the client side and waits for the server to read it all:
// the stream survived when every byte arrived and no write failed.
func (s *stream) stop() (sent, received int, maxGap time.Duration, survived bool) {
	if !s.stopped {
		s.stopped = true
		close(s.stopCh)
		waited := make(chan struct{})
		go func() { s.done.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(15 * time.Second):
			s.conn.Close()
			<-waited
		}
		s.l.Close()
		s.conn.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.received, s.maxGap, s.writeErr == nil && s.sent == s.received && s.sent > 0
}
