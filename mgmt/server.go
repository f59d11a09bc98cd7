package mgmt

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fwdproject/fwd/config"
)

// The commit-confirm window a reload or rollback may ask for. Below a
// second the rollback would race the answer; beyond an hour a forgotten
// change would roll back long after anyone remembers it (and a huge value
// would overflow a time.Duration).
const (
	MinConfirmSeconds = 1
	MaxConfirmSeconds = 3600
)

// Handler serves the API for c behind the checks of a (see Guard).
func Handler(c Controller, a Access) http.Handler { return Guard(Routes(c), a) }

// Routes returns the API's routes, unguarded: serve them through Guard
// (the daemon adds the status page to them first).
//
//	GET  /v1/status
//	POST /v1/reload          {"confirm_seconds": N}
//	POST /v1/confirm
//	POST /v1/rollback        {"revision": N, "confirm_seconds": N}
//	GET  /v1/revisions
//	GET  /v1/revisions/{n}   the stored file (text/plain), secrets redacted
//	GET  /v1/show            tenants' namespaces and interfaces from the kernel
func Routes(c Controller) *http.ServeMux {
	mux := http.NewServeMux()
	registerSets(mux, c) // sets.go: /v1/sets/...
	registerHA(mux, c)   // ha.go: POST /v1/ha/{tenant}/failover|resume
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Status(r.Context()))
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		var req ReloadRequest
		if !readJSON(w, r, &req) {
			return
		}
		if !confirmOK(w, req.ConfirmSeconds) {
			return
		}
		applyDeadlines(w)
		res := c.Reload(r.Context(), req)
		writeJSON(w, resultStatus(res), res)
	})
	mux.HandleFunc("POST /v1/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req RollbackRequest
		if !readJSON(w, r, &req) || !confirmOK(w, req.ConfirmSeconds) {
			return
		}
		applyDeadlines(w)
		res, err := c.Rollback(r.Context(), req)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, resultStatus(res), res)
	})
	mux.HandleFunc("POST /v1/confirm", func(w http.ResponseWriter, r *http.Request) {
		p, err := c.Confirm(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("GET /v1/revisions", func(w http.ResponseWriter, r *http.Request) {
		revs, err := c.Revisions()
		if err != nil {
			writeErr(w, err)
			return
		}
		if revs == nil {
			revs = []Revision{}
		}
		writeJSON(w, http.StatusOK, revs)
	})
	mux.HandleFunc("GET /v1/revisions/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "revision must be a number")
			return
		}
		rev, data, err := c.Revision(n)
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Fwd-Revision-Sha256", rev.SHA256)
		// The store keeps the file as applied (a rollback needs the
		// secrets); what leaves the daemon never holds them.
		_, _ = w.Write(config.Redact(data)) // the client hung up: nothing to tell it
	})
	mux.HandleFunc("GET /v1/show", func(w http.ResponseWriter, r *http.Request) {
		list, err := c.Show(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		if list == nil {
			list = []Namespace{}
		}
		writeJSON(w, http.StatusOK, list)
	})
	return mux
}

// applyDeadlines lifts the server's read and write timeouts for a request
// that applies a configuration: an apply of many tenants outlasts them,
// and a read deadline that passes while the handler runs cancels the
// request's context, which would abort the apply half-way. The request
// has passed the Guard (and its body is read): it comes from someone
// allowed to change the configuration.
func applyDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})  // unsupported (a test recorder): no deadline to lift
	_ = rc.SetWriteDeadline(time.Time{}) // idem
}

// confirmOK checks a requested commit-confirm window (0: none).
func confirmOK(w http.ResponseWriter, n int) bool {
	if n != 0 && (n < MinConfirmSeconds || n > MaxConfirmSeconds) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("confirm_seconds %d is out of range %d-%d (0: no confirmation)", n, MinConfirmSeconds, MaxConfirmSeconds))
		return false
	}
	return true
}

func resultStatus(r *Result) int {
	switch r.Result {
	case ResultRejected:
		return http.StatusUnprocessableEntity
	case ResultFailed:
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

type apiError struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrNotPending):
		code = http.StatusConflict
	}
	writeError(w, code, err.Error())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // only fails when the client hung up
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength == 0 {
		return true
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}
