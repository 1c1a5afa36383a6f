package main

import "testing"

// TestRequestInfoIDs: the ids a request renders once equal the trace
// context's own renderings, and a requestInfo without them (outside the
// middleware) renders them on demand.
func TestRequestInfoIDs(t *testing.T) {
	for i := range 50 {
		var tc traceContext
		for j := range tc.TraceID {
			tc.TraceID[j] = byte(i*31 + j*7)
		}
		for j := range tc.SpanID {
			tc.SpanID[j] = byte(i*17 + j*13 + 1)
		}
		tc.Flags = byte(i % 2)
		rendered := &requestInfo{trace: tc, tp: tc.Traceparent(), reqID: tc.RequestID()}
		for _, ri := range []*requestInfo{rendered, {trace: tc}} {
			if ri.traceparent() != tc.Traceparent() || ri.traceID() != tc.TraceIDString() ||
				ri.spanID() != tc.SpanIDString() || ri.requestID() != tc.RequestID() {
				t.Fatalf("ids %q %q %q %q; want %q %q %q %q", ri.traceparent(), ri.traceID(), ri.spanID(), ri.requestID(),
					tc.Traceparent(), tc.TraceIDString(), tc.SpanIDString(), tc.RequestID())
			}
		}
	}
}
