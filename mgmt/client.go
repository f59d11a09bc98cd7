package mgmt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Client talks to a daemon's API.
type Client struct {
	http  *http.Client
	base  string
	token string
}

// Dial returns a client for the Unix socket at path. It does not connect
// until the first call.
func Dial(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	// Applies can take long (many tenants, big rulesets): no overall timeout.
	return &Client{http: &http.Client{Transport: tr}, base: "http://fwd"}
}

// DialTCP returns a client for the TCP listener at addr with a token.
func DialTCP(addr, token string) *Client {
	return &Client{http: &http.Client{Timeout: 10 * time.Minute}, base: "http://" + addr, token: token}
}

// APIError is a non-2xx answer without a Result.
type APIError struct {
	Code int
	Msg  string
}

func (e *APIError) Error() string { return e.Msg }

func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil || method != http.MethodGet {
		// The API refuses a change without it (a CSRF guard), body or not.
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			// Results come with 422/500 and have no "error" field.
			return resp.StatusCode, &APIError{resp.StatusCode, e.Error}
		}
		if _, isResult := out.(*Result); !isResult {
			return resp.StatusCode, &APIError{resp.StatusCode, fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
		}
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if s, ok := out.(*[]byte); ok {
		*s = b
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: bad answer: %w", method, path, err)
	}
	return resp.StatusCode, nil
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	_, err := c.do(ctx, "GET", "/v1/status", nil, &s)
	return &s, err
}

// Reload asks the daemon to reload its configuration file.
func (c *Client) Reload(ctx context.Context, req ReloadRequest) (*Result, error) {
	var r Result
	_, err := c.do(ctx, "POST", "/v1/reload", req, &r)
	return &r, err
}

// Rollback applies a stored revision.
func (c *Client) Rollback(ctx context.Context, req RollbackRequest) (*Result, error) {
	var r Result
	_, err := c.do(ctx, "POST", "/v1/rollback", req, &r)
	return &r, err
}

// Confirm confirms the pending change.
func (c *Client) Confirm(ctx context.Context) (*Pending, error) {
	var p Pending
	_, err := c.do(ctx, "POST", "/v1/confirm", nil, &p)
	return &p, err
}

// Revisions lists the stored revisions, oldest first.
func (c *Client) Revisions(ctx context.Context) ([]Revision, error) {
	var revs []Revision
	_, err := c.do(ctx, "GET", "/v1/revisions", nil, &revs)
	return revs, err
}

// RevisionFile returns a stored configuration file.
func (c *Client) RevisionFile(ctx context.Context, n int) ([]byte, error) {
	var b []byte
	_, err := c.do(ctx, "GET", "/v1/revisions/"+strconv.Itoa(n), nil, &b)
	return b, err
}

// Show returns the tenants' namespaces as the daemon reads them from the
// kernel.
func (c *Client) Show(ctx context.Context) ([]Namespace, error) {
	var list []Namespace
	_, err := c.do(ctx, "GET", "/v1/show", nil, &list)
	return list, err
}
