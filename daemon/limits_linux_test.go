package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestLimitDescriptors(t *testing.T) {
	if os.Getenv("FWD_TEST_LIMIT_DESCRIPTORS") == "1" {
		if err := LimitDescriptors(); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		var rl syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
		fmt.Printf("soft=%d\n", rl.Cur)
		os.Exit(0)
	}
	// In a child: the test binary itself keeps the limit Go gave it.
	cmd := exec.Command(os.Args[0], "-test.run=^TestLimitDescriptors$")
	cmd.Env = append(os.Environ(), "FWD_TEST_LIMIT_DESCRIPTORS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("soft=%d\n", min(rl.Max, descriptorLimit))
	if !strings.Contains(string(out), want) {
		t.Fatalf("child says %q, want %q", out, want)
	}
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitConns(inner, 2)
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	first := <-accepted
	<-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two are open")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	first.Close() // twice: releases one slot only
	select {
	case c := <-accepted:
		clients = append(clients, c) // the slots are full again
	case <-time.After(2 * time.Second):
		t.Fatal("closing a connection did not free its slot")
	}
	// Close wakes an Accept waiting for a slot.
	l.Close()
	select {
	case _, ok := <-accepted:
		if ok {
			t.Fatal("accepted after Close")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept still waits after Close")
	}
}

// emfileListener fails its first n Accepts as accept(2) does when the
// process is out of descriptors.
type emfileListener struct {
	net.Listener
	n atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestServeSurvivesEMFILE: running out of descriptors delays the
// listener, it does not stop it.
func TestServeSurvivesEMFILE(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	el := &emfileListener{Listener: inner}
	el.n.Store(5)
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	serverTimeouts(s)
	done := make(chan error, 1)
	go func() { done <- s.Serve(limitConns(el, 4)) }()
	defer s.Close()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + inner.Addr().String() + "/")
	if err != nil {
		t.Fatalf("after EMFILE: %v", err)
	}
	resp.Body.Close()
	select {
	case err := <-done:
		t.Fatalf("Serve returned: %v", err)
	default:
	}
}

// TestTCPAPIToken: the daemon refuses to start a TCP listener whose
// token another user could read, or that is short.
func TestTCPAPIToken(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	for _, tc := range []struct {
		text string
		mode os.FileMode
		want string
	}{
		{strings.Repeat("a", 64) + "\n", 0o644, "has mode 0644: group and others must have no access"},
		{strings.Repeat("a", 64), 0o640, "has mode 0640"},
		{"s3cret\n", 0o600, "the token is 6 bytes, fewer than 32"},
		{"\n", 0o600, "the token is 0 bytes"},
		{strings.Repeat("a", 32) + "\n", 0o600, ""},
	} {
		if err := os.WriteFile(token, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(token, tc.mode); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "fwd.toml")
		writeFile(t, cfg, "[mgmt]\napi_listen = \"127.0.0.1:0\"\napi_token_file = \""+token+"\"\n"+cfgA)
		d, err := New(Options{ConfigPath: cfg, RevisionDir: filepath.Join(dir, "revs"), Applier: &fakeApplier{},
			Socket: filepath.Join(dir, "api.sock"), MetricsListen: "off", Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		stop, err := d.serve()
		if tc.want == "" {
			if err != nil {
				t.Fatalf("good token: %v", err)
			}
			stop()
			continue
		}
		if err == nil {
			stop()
			t.Errorf("%q mode %04o: listener started", tc.text, tc.mode)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q mode %04o: %v, want %q", tc.text, tc.mode, err, tc.want)
		}
		// A refused start leaves no socket serving.
		if c, err := net.Dial("unix", filepath.Join(dir, "api.sock")); err == nil {
			c.Close()
			t.Errorf("%q: the Unix socket still answers after a refused start", tc.text)
		}
	}
}

// TestUnixSocketRootOnly: the API socket is created 0600 whatever the
// umask.
func TestUnixSocketRootOnly(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "api.sock")
	l, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", st.Mode(), err)
	}
}
