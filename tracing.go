package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
)

// traceContext is a W3C Trace Context (https://www.w3.org/TR/trace-context/)
// position: the trace, the caller's span (parent) and our own span.
type traceContext struct {
	TraceID  [16]byte
	ParentID [8]byte // zero when we started the trace
	SpanID   [8]byte
	Flags    byte
	State    string // tracestate, passed on unchanged when valid
}

// parseTraceparent parses a traceparent header value. It accepts version
// 00 exactly and, for forward compatibility, higher versions (not ff) with
// at least the version-00 fields. It rejects all-zero ids and upper-case hex.
func parseTraceparent(v string) (tc traceContext, ok bool) {
	v = strings.TrimSpace(v)
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return tc, false
	}
	ver, ok1 := lowerHexByte(v[0:2])
	if !ok1 || ver == 0xff || (ver == 0 && len(v) != 55) || (ver > 0 && len(v) > 55 && v[55] != '-') {
		return tc, false
	}
	if !lowerHex(v[3:35]) || !lowerHex(v[36:52]) {
		return tc, false
	}
	hex.Decode(tc.TraceID[:], []byte(v[3:35]))
	hex.Decode(tc.ParentID[:], []byte(v[36:52]))
	flags, ok2 := lowerHexByte(v[53:55])
	if !ok2 || tc.TraceID == ([16]byte{}) || tc.ParentID == ([8]byte{}) {
		return traceContext{}, false
	}
	tc.Flags = flags
	return tc, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func lowerHexByte(s string) (byte, bool) {
	if len(s) != 2 || !lowerHex(s) {
		return 0, false
	}
	var b [1]byte
	hex.Decode(b[:], []byte(s))
	return b[0], true
}

// validTracestate applies the W3C limits loosely: at most 32 list members,
// 512 bytes, printable ASCII. Invalid values are dropped, never an error.
func validTracestate(v string) bool {
	if len(v) > 512 || strings.Count(v, ",") >= 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// randomID fills b with random bytes, never all zero.
func randomID(b []byte) {
	for {
		rand.Read(b)
		for _, c := range b {
			if c != 0 {
				return
			}
		}
	}
}

// TraceIDString is the 32-hex trace id.
func (tc traceContext) TraceIDString() string { return hex.EncodeToString(tc.TraceID[:]) }

// SpanIDString is the 16-hex id of our span.
func (tc traceContext) SpanIDString() string { return hex.EncodeToString(tc.SpanID[:]) }

// Traceparent renders the header naming our span as the parent.
func (tc traceContext) Traceparent() string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], tc.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], tc.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{tc.Flags})
	return string(b[:])
}

// Sampled reports the sampled flag.
func (tc traceContext) Sampled() bool { return tc.Flags&0x01 != 0 }

// RequestID names the request in logs and audit: our span id, prefixed.
func (tc traceContext) RequestID() string { return "req_" + tc.SpanIDString() }

// traceHandler adds trace_id and span_id to every record logged with a
// request's context, so each line written while serving it can be joined
// to its trace: span_id is the current span's (the model call, the tool)
// when one is recorded, else the request's own span id.
type traceHandler struct{ slog.Handler }

func newTraceHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if s := spanFrom(ctx); s != nil {
		r.AddAttrs(slog.String("trace_id", s.TraceID()), slog.String("span_id", s.SpanID()))
	} else if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		r.AddAttrs(slog.String("trace_id", ri.traceID()), slog.String("span_id", ri.spanID()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
