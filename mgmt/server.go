package mgmt

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Handler serves the API for c. A non-empty token is required as
// "Authorization: Bearer TOKEN" (the TCP listener); the Unix socket relies
// on its file mode instead and passes "".
//
//	GET  /v1/status
//	POST /v1/reload          {"confirm_seconds": N}
//	POST /v1/confirm
//	POST /v1/rollback        {"revision": N, "confirm_seconds": N}
//	GET  /v1/revisions
//	GET  /v1/revisions/{n}   the stored file (text/plain)
//	GET  /v1/show            tenants' namespaces and interfaces from the kernel
func Handler(c Controller, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Status(r.Context()))
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		var req ReloadRequest
		if !readJSON(w, r, &req) {
			return
		}
		if req.ConfirmSeconds < 0 {
			writeError(w, http.StatusBadRequest, "confirm_seconds must not be negative")
			return
		}
		res := c.Reload(r.Context(), req)
		writeJSON(w, resultStatus(res), res)
	})
	mux.HandleFunc("POST /v1/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req RollbackRequest
		if !readJSON(w, r, &req) {
			return
		}
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
		_, _ = w.Write(data) // the client hung up: nothing to tell it
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
	registerHA(mux, c) // ha.go: POST /v1/ha/{tenant}/failover|resume
	if token == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fwd"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		mux.ServeHTTP(w, r)
	})
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
