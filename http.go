package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// apiError is an error with its HTTP answer. Message is safe for clients;
// Err, if any, is the cause and goes to the log only.
type apiError struct {
	Status     int
	Type       string
	Message    string
	RetryAfter time.Duration // > 0 adds Retry-After (whole seconds, at least 1)
	Allow      string        // for 405
	Err        error
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return e.Type + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Type + ": " + e.Message
}

func (e *apiError) Unwrap() error { return e.Err }

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request", Message: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON shape of every error answer (DESIGN §4).
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	TraceID string `json:"trace_id"`
}

// statusClientClosed is logged (never seen by anyone) when the client went
// away before its answer, as nginx does.
const statusClientClosed = 499

// classify maps any error to its HTTP answer (DESIGN §4 table).
func classify(err error) *apiError {
	var ae *apiError
	var oe *OpenError
	var fe *FullError
	var pe *ProviderError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &oe):
		return &apiError{Status: 503, Type: "circuit_open", Message: "the language model is unavailable (circuit breaker open); retry later",
			RetryAfter: oe.Remaining, Err: err}
	case errors.As(err, &fe), errors.Is(err, ErrOverloaded), errors.Is(err, ErrTooManyRequests):
		return &apiError{Status: 503, Type: "overloaded", Message: "the service is overloaded; retry later", RetryAfter: time.Second, Err: err}
	case errors.Is(err, ErrSessionsFull):
		return &apiError{Status: 503, Type: "overloaded", Message: "too many active sessions; retry later", RetryAfter: time.Second, Err: err}
	case errors.Is(err, ErrSessionNotFound):
		return &apiError{Status: 404, Type: "not_found", Message: "session not found"}
	case errors.Is(err, ErrSessionBusy):
		return &apiError{Status: 409, Type: "session_busy", Message: "a turn is already running for this session", RetryAfter: time.Second}
	case errors.Is(err, ErrSessionOwner):
		return &apiError{Status: 403, Type: "forbidden", Message: "this session belongs to another user"}
	case errors.Is(err, ErrAuditClosed):
		return &apiError{Status: 503, Type: "shutting_down", Message: "the service is shutting down; retry on another instance", RetryAfter: time.Second, Err: err}
	case errors.Is(err, ErrAuditUnavailable):
		return &apiError{Status: 503, Type: "audit_unavailable", Message: "audit records cannot be written; retry later", RetryAfter: 5 * time.Second, Err: err}
	case errors.Is(err, context.Canceled):
		return &apiError{Status: statusClientClosed, Type: "client_closed", Message: "the request was cancelled", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: 504, Type: "upstream_timeout", Message: "the language model or a tool did not answer in time", Err: err}
	case errors.As(err, &pe), errors.Is(err, ErrUpstreamInvalid):
		return &apiError{Status: 502, Type: "upstream_error", Message: "the language model returned an error", Err: err}
	default:
		return &apiError{Status: 500, Type: "internal", Message: "internal error", Err: err}
	}
}

// writeError answers with the JSON error for err and logs the cause.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	ae := classify(err)
	ri := requestInfoFrom(r.Context())
	ri.errType = ae.Type
	if ae.Status >= 500 {
		logger.ErrorContext(r.Context(), "request failed", "status", ae.Status, "error_type", ae.Type, "error", err.Error())
	} else if ae.Err != nil {
		logger.InfoContext(r.Context(), "request rejected", "status", ae.Status, "error_type", ae.Type, "error", ae.Err.Error())
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(ae.RetryAfter), 10))
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="production-agent"`)
	}
	if ae.Allow != "" {
		w.Header().Set("Allow", ae.Allow)
	}
	encode(w, ae.Status, errorBody{Error: errorDetail{Type: ae.Type, Message: ae.Message, TraceID: ri.traceID()}})
}

// retryAfterSeconds rounds up to whole seconds, at least 1 (RFC 9110 §10.2.3).
func retryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// jsonHeaderKeys are the headers of every JSON answer, in canonical form.
var jsonHeaderKeys = [...]string{"Content-Type", "Content-Length", "X-Content-Type-Options"}

// encode writes v as JSON with status. The header is set before WriteHeader.
func encode(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = 500, []byte(`{"error":{"type":"internal","message":"internal error","trace_id":""}}`)
	}
	body = append(body, '\n')
	setHeaders(w.Header(), jsonHeaderKeys[:], "application/json; charset=utf-8", strconv.Itoa(len(body)), "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}

// requestInfo is per-request state shared by the middleware layers, stored
// once in the context by the outermost one.
type requestInfo struct {
	start     time.Time // read once when the request arrived
	trace     traceContext
	route     string // mux pattern, "unmatched" when none
	clientIP  string // the connection's peer, or the client named by trusted proxies
	viaProxy  bool   // the peer is a trusted proxy
	userAgent string
	errType   string
	user      string    // principal or body user_id, for the access log
	principal Principal // set once authenticated
	sessionID string

	// The trace context as text, rendered once when the request arrives
	// (and read-only after, so any goroutine of the request may read it).
	tp, reqID string

	// Audit events of this request, appended together (one fsync) before
	// the answer is sent.
	mu     sync.Mutex
	events []AuditEvent
}

// traceparent is the W3C header naming the request's span as the parent.
func (ri *requestInfo) traceparent() string {
	if ri.tp != "" {
		return ri.tp
	}
	return ri.trace.Traceparent()
}

// traceID is the request's 32-hex trace id (a slice of its traceparent).
func (ri *requestInfo) traceID() string { return ri.traceparent()[3:35] }

// spanID is the request's 16-hex span id (a slice of its traceparent).
func (ri *requestInfo) spanID() string { return ri.traceparent()[36:52] }

// requestID names the request in logs and audit records.
func (ri *requestInfo) requestID() string {
	if ri.reqID != "" {
		return ri.reqID
	}
	return ri.trace.RequestID()
}

type requestInfoKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// responseRecorder captures status and size for the access log and keeps
// http.ResponseController working (Flush for SSE) through Unwrap.
type responseRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rr *responseRecorder) WriteHeader(code int) {
	if rr.status == 0 {
		rr.status = code
	}
	rr.ResponseWriter.WriteHeader(code)
}

func (rr *responseRecorder) Write(b []byte) (int, error) {
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	n, err := rr.ResponseWriter.Write(b)
	rr.bytes += int64(n)
	return n, err
}

func (rr *responseRecorder) Flush() {
	if f, ok := rr.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rr *responseRecorder) Unwrap() http.ResponseWriter { return rr.ResponseWriter }

// withRequestInfo is the outermost layer: it recovers panics (logged with
// the stack, answered 500), reads or starts the trace context, records the
// request's server span (tracer may be nil: no spans), and writes one
// access-log line per request.
func withRequestInfo(logger *slog.Logger, metrics *Metrics, tracer *Tracer, now func() time.Time, trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		ri := &requestInfo{trace: tracer.NewTraceContext(r.Header.Get("traceparent"), r.Header.Get("tracestate")), route: "unmatched", start: start}
		ri.tp = ri.trace.Traceparent()
		ri.reqID = ri.trace.RequestID()
		if ip, via := clientIP(r, trusted); ip.IsValid() {
			ri.clientIP, ri.viaProxy = ip.String(), via
		} else {
			ri.clientIP = "unknown"
		}
		ri.userAgent = r.UserAgent()
		ctx := context.WithValue(r.Context(), requestInfoKey{}, ri)
		ctx, span := tracer.StartServer(ctx, ri.trace, r.Method)
		span.SetAttr("http.request.method", r.Method)
		span.SetAttr("url.path", r.URL.Path)
		span.SetAttr("client.address", ri.clientIP)
		if ri.userAgent != "" {
			span.SetAttr("user_agent.original", ri.userAgent)
		}
		r = r.WithContext(ctx)
		rec := &responseRecorder{ResponseWriter: w}
		rec.Header()["Traceparent"] = []string{ri.tp}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeError(rec, r, logger, errors.New("panic"))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			d := now().Sub(start)
			if metrics != nil {
				metrics.requestDuration.WithLabelValues(ri.route).Observe(d.Seconds())
				metrics.observeResponse(ri.route, status)
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method), slog.String("route", ri.route), slog.Int("status", status),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.Int64("bytes", rec.bytes),
				slog.String("client_ip", ri.clientIP), slog.String("request_id", ri.requestID()),
			}
			if ri.errType != "" {
				attrs = append(attrs, slog.String("error_type", ri.errType))
			}
			if ri.user != "" {
				attrs = append(attrs, slog.String("user_id", ri.user))
			}
			logger.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
			endServerSpan(span, ri, status)
		}()
		next.ServeHTTP(rec, r)
	})
}

// endServerSpan names the request's span after its route pattern
// ("POST /chat", as OpenTelemetry's HTTP conventions ask), records the
// answer, and ends it. Health probes are not exported: orchestrators send
// them every few seconds and they would drown the traces worth reading.
func endServerSpan(span *Span, ri *requestInfo, status int) {
	if span == nil {
		return
	}
	if ri.route != "unmatched" {
		span.SetName(ri.route)
		if _, p, ok := strings.Cut(ri.route, " "); ok {
			span.SetAttr("http.route", p)
		}
	}
	span.SetAttr("http.response.status_code", status)
	if status >= 500 && status != statusClientClosed {
		errType := ri.errType
		if errType == "" {
			errType = strconv.Itoa(status)
		}
		span.SetAttr("error.type", errType)
		span.SetStatus(spanStatusError, http.StatusText(status))
	}
	if strings.HasPrefix(ri.route, "GET /health") {
		span.drop()
	}
	span.End()
}

// router dispatches through mux and answers unknown routes (404) and wrong
// methods (405 with Allow) with JSON instead of the mux's plain text, and
// non-canonical paths ("//chat", "/a/../chat") with 404 rather than a
// redirect that would turn a POST into a GET.
func router(mux *http.ServeMux, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !canonicalPath(r.URL.Path) {
			writeError(w, r, logger, &apiError{Status: 404, Type: "not_found", Message: "no such route"})
			return
		}
		h, pattern := mux.Handler(r)
		if pattern != "" {
			requestInfoFrom(r.Context()).route = pattern
			mux.ServeHTTP(w, r)
			return
		}
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			writeError(w, r, logger, &apiError{Status: 405, Type: "method_not_allowed",
				Message: "method " + r.Method + " is not allowed on this route", Allow: probe.header.Get("Allow")})
			return
		}
		writeError(w, r, logger, &apiError{Status: 404, Type: "not_found", Message: "no such route"})
	})
}

// canonicalPath reports whether p is already clean ("/a/b", not "//a",
// "/a/./b" or "/a/../b"); a trailing slash is allowed.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// headerProbe records what the mux's own 404/405 handlers would answer.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }
