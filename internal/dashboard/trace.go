package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/trace"
)

// The trace page: a leaked copy uploaded, streamed part by part into
// internal/trace's readers (what `warden trace` runs), never held whole.
const (
	// DefaultTraceMaxBytes bounds an upload (the whole multipart body):
	// large enough for a dump of a few million profiles, gzip'd or not.
	// The config's dashboard.trace_max_bytes, whose default it is.
	DefaultTraceMaxBytes = config.DefaultTraceMaxBytes
	// DefaultTraceTimeout bounds reading an upload and replaying the
	// ledger; the admin listener's own read and write timeouts (seconds)
	// are lifted for this one request once its form is checked.
	DefaultTraceTimeout = config.DefaultTraceTimeout
	maxTraceField       = 1 << 10 // csrf, false-accusation
)

// tracePage is what the trace template gets.
type tracePage struct {
	MaxBytes string
	Canaries string // "" when the key is there; else why there is no canary evidence
	Ledger   bool
	FA       string
	Report   *trace.Report
	Files    int
	Bytes    int64
	Took     string
}

// canaries builds the canary key set from the config in force, as
// `warden trace --config` does; nil with the reason when there is none.
func (d *Dashboard) canaries() (*canary.Canaries, string) {
	cfg := d.config()
	if cfg == nil || !cfg.Canary.Enabled() {
		return nil, "the config has no canary section: the trace can show coverage only"
	}
	c, err := canary.New(cfg.Canary, d.opts.LookupEnv)
	if err != nil {
		return nil, "no canary evidence: " + err.Error()
	}
	return c, ""
}

func (d *Dashboard) newTracePage() tracePage {
	_, why := d.canaries()
	return tracePage{MaxBytes: bytesText(d.opts.TraceMaxBytes), Canaries: why, Ledger: d.opts.LedgerDir != "" || d.opts.Fleet != nil,
		FA: strconv.FormatFloat(trace.DefaultFalseAccusation, 'g', -1, 64)}
}

func (d *Dashboard) tracePage(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, http.StatusOK, "trace", view{Title: "Trace a leaked copy", Nav: "trace", Data: d.newTracePage()})
}

// traceUpload reads a multipart form whose first part is the session's
// CSRF token (a browser sends fields in the form's order), then any
// false-accusation field and one or more copies (field copy), each
// streamed to the tracer as it arrives; then replays the ledger. Nothing
// of the copy is read before the token matched. One trace runs at a time.
func (d *Dashboard) traceUpload(w http.ResponseWriter, r *http.Request) {
	s := d.session(r)
	if s == nil {
		http.Error(w, "no session: sign in at /login", http.StatusForbidden)
		return
	}
	body := &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, d.opts.TraceMaxBytes)}
	r.Body = body
	mr, err := r.MultipartReader()
	if !d.sameOrigin(r) || err != nil {
		http.Error(w, "form refused: not a multipart form from this origin", http.StatusForbidden)
		return
	}
	p, err := mr.NextPart()
	if err != nil || p.FormName() != "csrf" || !equal(fieldText(p), s.csrf) {
		http.Error(w, "form refused: missing or wrong CSRF token (it must be the form's first field)", http.StatusForbidden)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
	select {
	case d.tracing <- struct{}{}:
		defer func() { <-d.tracing }()
	default:
		d.traceFailed(w, r, http.StatusServiceUnavailable, "A trace is already running; try again when it ends.")
		return
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(d.opts.TraceTimeout)
	_ = rc.SetReadDeadline(deadline) // not every ResponseWriter can; the admin listener's can
	_ = rc.SetWriteDeadline(deadline)

	begin := time.Now()
	c, why := d.canaries()
	tr := trace.New(c, runtime.GOMAXPROCS(0))
	pg := d.newTracePage()
	pg.Canaries = why
	eps := trace.DefaultFalseAccusation
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			d.traceFailed(w, r, body.status(), "upload: "+body.text(err, d.opts.TraceMaxBytes))
			return
		}
		switch p.FormName() {
		case "false-accusation":
			v, err := strconv.ParseFloat(strings.TrimSpace(fieldText(p)), 64)
			if err != nil || !(v > 0 && v < 1) {
				d.traceFailed(w, r, http.StatusBadRequest, "false-accusation: a probability between 0 and 1, exclusive")
				return
			}
			eps, pg.FA = v, strconv.FormatFloat(v, 'g', -1, 64)
		case "copy":
			if p.FileName() == "" { // the file input left empty
				_, _ = io.Copy(io.Discard, p)
				continue
			}
			var n int64
			_, err := tr.Read(p, func(k int) { n += int64(k) })
			pg.Bytes += n
			if err != nil {
				d.traceFailed(w, r, body.status(), fmt.Sprintf("copy %d: %s", pg.Files+1, body.text(err, d.opts.TraceMaxBytes)))
				return
			}
			pg.Files++
		default:
			_, _ = io.Copy(io.Discard, p)
		}
	}
	if pg.Files == 0 {
		d.traceFailed(w, r, http.StatusBadRequest, "Choose a copy to upload.")
		return
	}
	if f := d.opts.Fleet; f != nil {
		// The fleet's Accesses, every gateway's, as `warden trace
		// --clickhouse` replays them, within what is left of the timeout.
		ctx, cancel := context.WithDeadline(r.Context(), deadline)
		defer cancel()
		led := trace.NewReplay(ctx, f.Ledger)
		pg.Report = tr.ReportEntries(led, eps)
		if err := led.Err(); err != nil {
			d.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: trace", slog.String("ledger", f.Ledger.String()), slog.String("error", err.Error()))
			d.traceFailed(w, r, http.StatusBadGateway, "The fleet's ledger could not be replayed (see the gateway's log): no report from part of it.")
			return
		}
	} else {
		var led *ledger.Reader
		if d.opts.LedgerDir != "" {
			if led, err = d.openLedger(r.Context(), ledger.Window{}); err != nil {
				d.traceFailed(w, r, http.StatusInternalServerError, "ledger: "+err.Error())
				return
			}
			defer led.Close()
		}
		pg.Report = tr.Report(led, eps)
		if led != nil && led.Err() != nil {
			d.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: trace", slog.String("ledger", d.opts.LedgerDir), slog.String("error", led.Err().Error()))
			d.traceFailed(w, r, http.StatusInternalServerError, "ledger: "+led.Err().Error())
			return
		}
	}
	pg.Took = time.Since(begin).Round(time.Millisecond).String()
	d.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "dashboard: trace", slog.Int("copies", pg.Files),
		slog.Int64("bytes", pg.Bytes), slog.Int("accused", len(pg.Report.Accused)), slog.String("took", pg.Took))
	d.render(w, r, http.StatusOK, "trace", view{Title: "Trace a leaked copy", Nav: "trace", Data: pg, Elapsed: pg.Took})
}

func (d *Dashboard) traceFailed(w http.ResponseWriter, r *http.Request, code int, msg string) {
	d.render(w, r, code, "trace", view{Title: "Trace a leaked copy", Nav: "trace", Error: msg, Data: d.newTracePage()})
}

// fieldText reads a small form field (at most maxTraceField bytes).
func fieldText(p *multipart.Part) string {
	b, _ := io.ReadAll(io.LimitReader(p, maxTraceField))
	return string(b)
}

// limitedBody notes whether the upload ran into its bound, whatever a
// reader above it made of the error.
type limitedBody struct {
	io.ReadCloser
	over bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		b.over = true
	}
	return n, err
}

func (b *limitedBody) status() int {
	if b.over {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func (b *limitedBody) text(err error, limit int64) string {
	if b.over {
		return "the upload is larger than the dashboard takes (" + bytesText(limit) +
			"); trace it with `warden trace PATH` on the gateway's host"
	}
	return err.Error()
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
