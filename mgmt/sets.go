package mgmt

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// Live address sets through the API (`fwd set`): a dynamic set's
// elements change without a reload; static sets are read-only (409).
//
//	GET  /v1/sets/{tenant}/{set}          the elements and their time left
//	POST /v1/sets/{tenant}/{set}/add      {"elements": [...], "timeout": "10m"}
//	POST /v1/sets/{tenant}/{set}/del      {"elements": [...]}
//	POST /v1/sets/{tenant}/{set}/flush

// Errors a SetController returns, besides ErrNotFound (no such tenant or
// set).
var (
	// ErrStaticSet: the set comes from the configuration and cannot be
	// changed through the API (HTTP 409).
	ErrStaticSet = errors.New("set is static (from the configuration); only dynamic sets can be changed")
	// ErrBadElement: an element is not an address, prefix or range, or
	// a timeout is not a positive duration (HTTP 400).
	ErrBadElement = errors.New("bad element")
)

// SetRequest changes the elements of a dynamic set.
type SetRequest struct {
	// Elements are addresses, prefixes or ranges (a-b).
	Elements []string `json:"elements,omitempty"`
	// Timeout ("10m", Go duration syntax) makes added elements expire;
	// "" uses the set's default timeout.
	Timeout string `json:"timeout,omitempty"`
}

// SetElement is one element of a live set.
type SetElement struct {
	Element string `json:"element"`
	// Expires is the time the element has left (0: it never expires).
	Expires time.Duration `json:"expires_ns,omitempty"`
}

// SetView is a live set's content.
type SetView struct {
	Tenant   string       `json:"tenant"`
	Set      string       `json:"set"`
	Elements []SetElement `json:"elements"`
}

// SetResult reports one change of a live set.
type SetResult struct {
	Tenant   string        `json:"tenant"`
	Set      string        `json:"set"`
	Op       string        `json:"op"` // add, del, flush
	Elements int           `json:"elements"`
	Duration time.Duration `json:"duration_ns"` // until the kernel committed it
}

// SetController is what the set endpoints drive: the daemon.
type SetController interface {
	SetList(ctx context.Context, tenant, set string) (*SetView, error)
	SetChange(ctx context.Context, tenant, set, op string, req SetRequest) (*SetResult, error)
}

// setOps are the changes POST /v1/sets/{tenant}/{set}/{op} accepts.
var setOps = map[string]bool{"add": true, "del": true, "flush": true}

// registerSets adds the set endpoints to mux when c implements
// SetController.
func registerSets(mux *http.ServeMux, c Controller) {
	sc, ok := c.(SetController)
	if !ok {
		return
	}
	mux.HandleFunc("GET /v1/sets/{tenant}/{set}", func(w http.ResponseWriter, r *http.Request) {
		v, err := sc.SetList(r.Context(), r.PathValue("tenant"), r.PathValue("set"))
		if err != nil {
			writeSetErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("POST /v1/sets/{tenant}/{set}/{op}", func(w http.ResponseWriter, r *http.Request) {
		op := r.PathValue("op")
		if !setOps[op] {
			writeError(w, http.StatusNotFound, "unknown set operation "+op+": want add, del or flush")
			return
		}
		var req SetRequest
		if !readJSON(w, r, &req) {
			return
		}
		if (op == "add" || op == "del") && len(req.Elements) == 0 {
			writeError(w, http.StatusBadRequest, op+" needs elements")
			return
		}
		res, err := sc.SetChange(r.Context(), r.PathValue("tenant"), r.PathValue("set"), op, req)
		if err != nil {
			writeSetErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func writeSetErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrStaticSet):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrBadElement):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeErr(w, err)
	}
}

func setPath(tenant, set string) string {
	return "/v1/sets/" + url.PathEscape(tenant) + "/" + url.PathEscape(set)
}

// SetList returns a live set's elements.
func (c *Client) SetList(ctx context.Context, tenant, set string) (*SetView, error) {
	var v SetView
	_, err := c.do(ctx, "GET", setPath(tenant, set), nil, &v)
	return &v, err
}

// SetChange adds (op "add"), deletes ("del") or flushes ("flush") the
// elements of a dynamic set.
func (c *Client) SetChange(ctx context.Context, tenant, set, op string, req SetRequest) (*SetResult, error) {
	var res SetResult
	_, err := c.do(ctx, "POST", setPath(tenant, set)+"/"+url.PathEscape(op), req, &res)
	return &res, err
}
