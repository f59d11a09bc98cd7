package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/pktlog"
)

// `fwd log [-f] [-j] [-n N] [TENANT]`: the packets fwd's `log = true`
// rules logged, as the daemon read them from NFLOG (GET /v1/log on the
// API socket). With -f it keeps printing new ones until interrupted.
func init() {
	c := &command{name: "log", args: "[-f] [-j] [-n N] [--socket PATH] [TENANT]",
		summary: "show the packets logged by rules with log = true (all tenants, or one); -f follows"}
	c.run = func(args []string) int { return runLog(c, args, os.Stdout) }
	register(c)
}

func runLog(c *command, args []string, stdout io.Writer) int {
	fs := flags(c, nil)
	socket := socketFlag(fs)
	follow := fs.Bool("f", false, "keep printing packets as they are logged")
	asJSON := fs.Bool("j", false, "JSON output: one packet per line")
	n := fs.Int("n", 100, "how many of the last logged packets to print first")
	pos, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 1 || *n < 0 {
		fs.Usage()
		return exitUsage
	}
	q := url.Values{"n": {strconv.Itoa(*n)}}
	if len(pos) == 1 {
		q.Set("tenant", pos[0])
	}
	if *follow {
		q.Set("follow", "1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", *socket)
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://fwd/v1/log?"+q.Encode(), nil)
	if err != nil {
		return fail("%v", err)
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fail("no running daemon: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fail("%s", strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	for sc.Scan() {
		if *asJSON {
			_, _ = out.Write(sc.Bytes())
			_ = out.WriteByte('\n')
		} else {
			var e pktlog.Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return fail("bad answer from the daemon: %v", err)
			}
			fmt.Fprintln(out, logLine(&e))
		}
		if *follow {
			out.Flush()
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fail("%v", err)
	}
	return exitOK
}

// logLine is one packet in the style of the kernel's log lines, led by
// the tenant and the rule.
func logLine(e *pktlog.Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s rule=%s", e.Time.Local().Format(time.DateTime), e.Tenant, e.Rule)
	if e.Prefix != "" {
		fmt.Fprintf(&b, " prefix=%q", e.Prefix)
	}
	fmt.Fprintf(&b, " IN=%s OUT=%s %s", e.In, e.Out, e.Proto)
	if e.SPort != 0 || e.DPort != 0 {
		fmt.Fprintf(&b, " %s:%d > %s:%d", e.Src, e.SPort, e.Dst, e.DPort)
	} else {
		fmt.Fprintf(&b, " %s > %s", e.Src, e.Dst)
	}
	if e.ICMPType != nil {
		fmt.Fprintf(&b, " type=%d code=%d", *e.ICMPType, *e.ICMPCode)
	}
	fmt.Fprintf(&b, " len=%d", e.Length)
	return b.String()
}
