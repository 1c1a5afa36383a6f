package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"
)

// SpanKind is the OpenTelemetry span kind; the values are OTLP's enum.
type SpanKind int

const (
	SpanKindInternal SpanKind = 1
	SpanKindServer   SpanKind = 2
	SpanKindClient   SpanKind = 3
)

// Span status codes, OTLP's enum values.
const (
	spanStatusUnset = 0
	spanStatusOK    = 1
	spanStatusError = 2
)

// maxSpanAttrs bounds the attributes kept per span; later ones are
// dropped, so a span's memory and export size stay bounded.
const maxSpanAttrs = 32

// Span is one timed operation of a trace. Only sampled spans of an
// enabled tracer exist: every method is safe on a nil *Span and does
// nothing, so instrumented code never checks. Safe for concurrent use;
// after End the span is immutable and further calls are ignored.
type Span struct {
	tracer   *Tracer
	name     string
	kind     SpanKind
	traceID  [16]byte
	spanID   [8]byte
	parentID [8]byte // zero for a root span
	remote   bool    // the parent is in another process
	state    string  // tracestate
	start    time.Time

	mu      sync.Mutex
	end     time.Time
	ended   bool
	dropped bool // End exports nothing
	attrs   []spanAttr
	status  int
	message string
}

// spanAttr is one attribute; value is a string, int64, float64, bool or
// []string (the types OTLP's AnyValue encodes here).
type spanAttr struct {
	key   string
	value any
}

// SetAttr sets attribute key. Ints of any width become int64, float32
// becomes float64, []string stays an array, other types are formatted
// with fmt.Sprint. Setting a key again replaces its value.
func (s *Span) SetAttr(key string, value any) {
	if s == nil {
		return
	}
	switch v := value.(type) {
	case string, int64, float64, bool, []string:
	case int:
		value = int64(v)
	case int32:
		value = int64(v)
	case uint32:
		value = int64(v)
	case float32:
		value = float64(v)
	default:
		value = fmt.Sprint(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	for i := range s.attrs {
		if s.attrs[i].key == key {
			s.attrs[i].value = value
			return
		}
	}
	if len(s.attrs) < maxSpanAttrs {
		s.attrs = append(s.attrs, spanAttr{key, value})
	}
}

// SetName renames the span (the server span learns its route late).
func (s *Span) SetName(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.name = name
	}
}

// SetError marks the span failed: status ERROR with err's text, and the
// attribute error.type set to errType (a short low-cardinality word such
// as "timeout"). A nil err does nothing.
func (s *Span) SetError(err error, errType string) {
	if s == nil || err == nil {
		return
	}
	if errType != "" {
		s.SetAttr("error.type", errType)
	}
	s.SetStatus(spanStatusError, err.Error())
}

// SetStatus sets the OTLP status code (0 unset, 1 ok, 2 error) and, for
// errors, its description.
func (s *Span) SetStatus(code int, message string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.status = code
	s.message = ""
	if code == spanStatusError {
		s.message = message
	}
}

// End records the end time and hands the span to the exporter, if any.
// Only the first call counts.
func (s *Span) End() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.end = s.tracer.now()
	dropped := s.dropped
	s.mu.Unlock()
	if !dropped && s.tracer.exporter != nil {
		s.tracer.exporter.enqueue(s)
	}
}

// drop makes End export nothing (health probes are not worth a trace).
func (s *Span) drop() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.dropped = true
	s.mu.Unlock()
}

// TraceID is the span's 32-hex trace id ("" for a nil span).
func (s *Span) TraceID() string {
	if s == nil {
		return ""
	}
	return hex.EncodeToString(s.traceID[:])
}

// SpanID is the span's 16-hex id ("" for a nil span).
func (s *Span) SpanID() string {
	if s == nil {
		return ""
	}
	return hex.EncodeToString(s.spanID[:])
}

// Traceparent is the W3C header naming this span as the parent of an
// outbound call. Spans exist only when sampled, so the flags are 01.
func (s *Span) Traceparent() string {
	if s == nil {
		return ""
	}
	return traceContext{TraceID: s.traceID, SpanID: s.spanID, Flags: 0x01}.Traceparent()
}

type spanKey struct{}

// spanFrom returns the current span of ctx, or nil.
func spanFrom(ctx context.Context) *Span {
	s, _ := ctx.Value(spanKey{}).(*Span)
	return s
}

// startSpan starts a child of the current span of ctx and returns a
// context carrying it. Without a current span (tracing off, trace not
// sampled, or no request) it returns ctx and a nil span.
func startSpan(ctx context.Context, name string, kind SpanKind) (context.Context, *Span) {
	parent := spanFrom(ctx)
	if parent == nil {
		return ctx, nil
	}
	s := &Span{tracer: parent.tracer, name: name, kind: kind, traceID: parent.traceID,
		parentID: parent.spanID, state: parent.state, start: parent.tracer.now()}
	randomID(s.spanID[:])
	return context.WithValue(ctx, spanKey{}, s), s
}

// Tracer creates the spans of this service and, when an OTLP endpoint is
// configured, exports them. A nil *Tracer traces nothing (trace contexts
// are still created, so trace ids are still returned). Safe for
// concurrent use.
type Tracer struct {
	enabled  bool
	ratio    float64
	now      func() time.Time
	exporter *otlpExporter // nil: spans are recorded and discarded
}

// TracerSettings configure newTracer. Zero values: tracing off, no
// export, time.Now.
type TracerSettings struct {
	Enabled        bool
	SampleRatio    float64 // fraction of new traces sampled, 0..1
	ServiceName    string
	ServiceVersion string
	// Endpoint is the OTLP/HTTP base URL; spans go to Endpoint+"/v1/traces".
	// Empty: no export.
	Endpoint string
	Client   *http.Client // nil: a client with a 10 s timeout
	Logger   *slog.Logger // export failures; nil: discarded
	// OnDrop is called with the number of spans dropped and why:
	// "queue_full" or "export_failed". Called from any goroutine.
	OnDrop func(reason string, n int)
	Now    func() time.Time
	// Export tuning; zero means the default (2048, 512, 5 s).
	QueueSize     int
	BatchSize     int
	FlushInterval time.Duration
}

// newTracer builds the tracer and, with an endpoint, starts the exporter
// goroutine; Shutdown stops it.
func newTracer(s TracerSettings) *Tracer {
	t := &Tracer{enabled: s.Enabled, ratio: s.SampleRatio, now: s.Now}
	if t.now == nil {
		t.now = time.Now
	}
	if s.Enabled && s.Endpoint != "" {
		t.exporter = newOTLPExporter(s)
	}
	return t
}

// NewTraceContext reads the caller's traceparent and tracestate or starts
// a trace. A malformed header starts a new trace, never an error. The
// sampling is parent-based: a caller's sampled flag is kept; a new trace
// is sampled with the configured ratio (decided from its trace id), and
// never when tracing is off.
func (t *Tracer) NewTraceContext(traceparent, tracestate string) traceContext {
	tc, ok := parseTraceparent(traceparent)
	if ok {
		if tracestate != "" && validTracestate(tracestate) {
			tc.State = tracestate
		}
	} else {
		tc = traceContext{}
		randomID(tc.TraceID[:])
		if t != nil && t.enabled && sampleTraceID(tc.TraceID, t.ratio) {
			tc.Flags = 0x01
		}
	}
	randomID(tc.SpanID[:])
	return tc
}

// sampleTraceID is OpenTelemetry's TraceIdRatioBased decision: the low 63
// bits of the trace id's last 8 bytes below ratio·2^63. It is a function
// of the id, so every service with the same ratio agrees.
func sampleTraceID(id [16]byte, ratio float64) bool {
	if ratio >= 1 {
		return true
	}
	if ratio <= 0 || math.IsNaN(ratio) {
		return false
	}
	x := binary.BigEndian.Uint64(id[8:]) >> 1
	return x < uint64(ratio*(1<<63))
}

// StartServer starts the span of an incoming request: its ids are tc's
// (the span id our traceparent response header names, the caller's span as
// parent). It returns a nil span when tracing is off or the trace is not
// sampled.
func (t *Tracer) StartServer(ctx context.Context, tc traceContext, name string) (context.Context, *Span) {
	// Without an exporter nobody would ever see the spans: record none
	// (trace ids are still returned and propagated).
	if t == nil || !t.enabled || t.exporter == nil || !tc.Sampled() {
		return ctx, nil
	}
	s := &Span{tracer: t, name: name, kind: SpanKindServer, traceID: tc.TraceID, spanID: tc.SpanID,
		parentID: tc.ParentID, remote: tc.ParentID != [8]byte{}, state: tc.State, start: t.now()}
	return context.WithValue(ctx, spanKey{}, s), s
}

// Flush exports every queued span now; it returns when they are sent
// (or dropped) or ctx ends. Without an exporter it returns nil at once.
func (t *Tracer) Flush(ctx context.Context) error {
	if t == nil || t.exporter == nil {
		return nil
	}
	return t.exporter.flush(ctx)
}

// Shutdown exports what is queued within ctx and stops the exporter;
// spans ended afterwards are dropped (and counted). Safe to call twice.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil || t.exporter == nil {
		return nil
	}
	return t.exporter.shutdown(ctx)
}

// errExporterStopped is returned by Flush after Shutdown.
var errExporterStopped = errors.New("span exporter stopped")
