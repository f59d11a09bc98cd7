package daemon

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/mgmt"
)

// TestSdNotify checks the messages systemd gets around a reload, with a
// fake NOTIFY_SOCKET.
func TestSdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d, _, path := newTest(t, cfgA)
	t.Setenv("NOTIFY_SOCKET", sock)
	writeFile(t, path, cfgB)
	d.Reload(context.Background(), mgmt.ReloadRequest{})
	var msgs []string
	buf := make([]byte, 4096)
	for len(msgs) < 3 {
		if err := conn.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", msgs, err)
		}
		msgs = append(msgs, string(buf[:n]))
	}
	if !strings.HasPrefix(msgs[0], "RELOADING=1\nMONOTONIC_USEC=") ||
		msgs[1] != "STATUS=2 tenants, 2 changes on reload" || msgs[2] != "READY=1" {
		t.Fatalf("notify messages: %q", msgs)
	}
}
