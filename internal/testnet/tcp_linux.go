package testnet

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
)

// ServeTCP listens on addr inside namespace nsName and answers every
// connection with reply followed by the client's remote address as the
// server saw it (so NAT can be checked from the client). The socket
// belongs to the namespace for its whole life, whichever thread accepts.
func ServeTCP(nsName, addr, reply string) (io.Closer, error) {
	var l net.Listener
	err := ns.DoNamed(nsName, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s in %s: %w", addr, nsName, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", reply, c.RemoteAddr())
			c.Close()
		}
	}()
	return l, nil
}

// DialTCP connects from namespace nsName to addr and returns what the
// server sent.
func DialTCP(nsName, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	err := ns.DoNamed(nsName, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}
