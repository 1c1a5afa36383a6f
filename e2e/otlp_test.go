package e2e

// Tracing conformance: the spans the binary exports decode strictly with
// the official OTLP protobuf definitions, form the promised tree with
// OpenTelemetry's GenAI attributes, and a caller's trace id survives end
// to end (body, header, logs, audit, outbound model request, spans).

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// otelCollector is a fake OTLP/HTTP collector: it decodes every POST
// /v1/traces strictly into ExportTraceServiceRequest and keeps it.
type otelCollector struct {
	mu       sync.Mutex
	requests []*coltracepb.ExportTraceServiceRequest
	problems []string // anything a real collector would reject
}

func (c *otelCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		c.problems = append(c.problems, "request "+r.Method+" "+r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		c.problems = append(c.problems, "Content-Type "+ct)
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(body, req); err != nil {
		c.problems = append(c.problems, "protojson: "+err.Error()+": "+string(body))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.requests = append(c.requests, req)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, "{}")
}

// otelSpan is a decoded span with its ids as the hex strings of the wire.
type otelSpan struct {
	Span                    *tracepb.Span
	Resource                map[string]string
	TraceID, SpanID, Parent string
	Name                    string
	Kind                    tracepb.Span_SpanKind
	StatusCode              tracepb.Status_StatusCode
	StatusMessage           string
}

// otelHexID undoes protojson's reading of an OTLP JSON id: OTLP/JSON
// writes ids as hex, protojson decodes bytes fields as base64, so a
// 32-hex-digit trace id arrives as 24 bytes whose base64 is the hex text.
func otelHexID(t *testing.T, b []byte, size int) string {
	t.Helper()
	if len(b) == 0 {
		return ""
	}
	s := base64.StdEncoding.EncodeToString(b)
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != size || strings.ToLower(s) != s {
		t.Errorf("id %q (read as %d bytes) is not %d bytes of lower-case hex as OTLP/JSON requires", s, len(b), size)
	}
	return s
}

func otelAttr(attrs []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			return kv.GetValue()
		}
	}
	return nil
}

// spans returns every span received so far.
func (c *otelCollector) spans(t *testing.T) []otelSpan {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.problems {
		t.Errorf("collector: %s", p)
	}
	c.problems = nil
	var out []otelSpan
	for _, req := range c.requests {
		for _, rs := range req.GetResourceSpans() {
			res := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				res[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					out = append(out, otelSpan{
						Span: s, Resource: res,
						TraceID: otelHexID(t, s.GetTraceId(), 16), SpanID: otelHexID(t, s.GetSpanId(), 8),
						Parent: otelHexID(t, s.GetParentSpanId(), 8), Name: s.GetName(), Kind: s.GetKind(),
						StatusCode: s.GetStatus().GetCode(), StatusMessage: s.GetStatus().GetMessage(),
					})
				}
			}
		}
	}
	return out
}

// otelUpstream is an OpenAI-compatible model: it asks for the calculator
// until a tool result is in the conversation, then answers; a message
// containing "please fail" gets a 400. It keeps the trace headers of
// every call.
type otelUpstream struct {
	mu      sync.Mutex
	headers []http.Header
}

func (u *otelUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []struct {
			Role    string `json:"role"`
			Content any    `json:"content"`
		} `json:"messages"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	u.mu.Lock()
	u.headers = append(u.headers, r.Header.Clone())
	u.mu.Unlock()
	hasTool, fail := false, false
	for _, m := range req.Messages {
		hasTool = hasTool || m.Role == "tool"
		if s, ok := m.Content.(string); ok && strings.Contains(s, "please fail") {
			fail = true
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case fail:
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"message":"bad request","type":"invalid_request_error","code":null}}`)
	case !hasTool:
		io.WriteString(w, `{"id":"chatcmpl-tool","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,`+
			`"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",`+
			`"function":{"name":"calculator","arguments":"{\"expression\":\"2+3\"}"}}]},"finish_reason":"tool_calls"}],`+
			`"usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27}}`)
	default:
		io.WriteString(w, `{"id":"chatcmpl-text","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,`+
			`"message":{"role":"assistant","content":"It is 5."},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":30,"completion_tokens":4,"total_tokens":34}}`)
	}
}

func (u *otelUpstream) calls() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.headers)
}

// otelStart runs the agent against a fake upstream and a fake collector.
func otelStart(t *testing.T, extra ...string) (*agentProc, *otelCollector, *otelUpstream) {
	t.Helper()
	col := &otelCollector{}
	colSrv := httptest.NewServer(col)
	t.Cleanup(colSrv.Close)
	up := &otelUpstream{}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	args := append([]string{"-set", "llm.provider=openai", "-set", "llm.base_url=" + upSrv.URL + "/v1",
		"-set", "observability.opentelemetry_endpoint=" + colSrv.URL}, extra...)
	p := startAgent(t, map[string]string{"OPENAI_API_KEY": "x"}, args...)
	return p, col, up
}

// otelChat posts a message with header and returns the status, the
// body's trace_id and the traceparent response header.
func otelChat(t *testing.T, api string, header http.Header, session, message string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", api+"/chat",
		strings.NewReader(`{"user_id":"otel-user","session_id":"`+session+`","message":"`+message+`"}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST /chat: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		TraceID string `json:"trace_id"`
		Error   struct {
			TraceID string `json:"trace_id"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("POST /chat answer is not JSON: %s", b)
	}
	if body.TraceID == "" {
		body.TraceID = body.Error.TraceID
	}
	return resp.StatusCode, body.TraceID, resp.Header.Get("traceparent")
}

// otelStop sends SIGTERM and waits for exit 0 (spans are flushed on the way).
func otelStop(t *testing.T, p *agentProc) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if code, err := p.Wait(); code != 0 || err != nil {
		t.Fatalf("exit %d, %v; want 0", code, err)
	}
}

const (
	otelTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	otelCaller  = "00f067aa0ba902b7"
)

func TestOtelTraceKeptEndToEnd(t *testing.T) {
	p, col, up := otelStart(t)
	hdr := http.Header{"Traceparent": {"00-" + otelTraceID + "-" + otelCaller + "-01"}, "Tracestate": {"vendor=abc"}}
	status, bodyTrace, respTP := otelChat(t, p.API, hdr, "otel-s1", "what is 2+3?")
	if status != 200 {
		t.Fatalf("POST /chat: %d", status)
	}
	if bodyTrace != otelTraceID {
		t.Errorf("body trace_id %s; want the caller's %s", bodyTrace, otelTraceID)
	}
	parts := strings.Split(respTP, "-")
	if len(parts) != 4 || parts[0] != "00" || parts[1] != otelTraceID || parts[3] != "01" || parts[2] == otelCaller || len(parts[2]) != 16 {
		t.Fatalf("traceparent response header %q; want 00-%s-<our span>-01", respTP, otelTraceID)
	}
	serverSpanID := parts[2]

	// Audit records of the request carry the trace id.
	var audit struct {
		Events []struct {
			Action    string `json:"action"`
			TraceID   string `json:"trace_id"`
			SessionID string `json:"session_id"`
		} `json:"events"`
	}
	st, b := doJSON(t, "GET", p.Admin+"/audit?session_id=otel-s1&limit=100", nil, nil)
	if st != 200 || json.Unmarshal(b, &audit) != nil || len(audit.Events) == 0 {
		t.Fatalf("GET /audit: %d %s", st, b)
	}
	for _, ev := range audit.Events {
		if ev.TraceID != otelTraceID {
			t.Errorf("audit %s trace_id %q; want %s", ev.Action, ev.TraceID, otelTraceID)
		}
	}

	// Error path: the model answers 400, the request 502.
	errHdr := http.Header{"Traceparent": {"00-" + strings.Repeat("ab", 16) + "-" + otelCaller + "-01"}}
	if status, tr, _ := otelChat(t, p.API, errHdr, "otel-s2", "please fail"); status != 502 || tr != strings.Repeat("ab", 16) {
		t.Errorf("failing chat: %d trace %s; want 502 and the caller's trace", status, tr)
	}
	otelStop(t, p)

	// Every log line about the request carries the trace and a span id.
	lines := 0
	for _, l := range p.Logs() {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil || rec["trace_id"] != otelTraceID {
			continue
		}
		lines++
		if id, _ := rec["span_id"].(string); len(id) != 16 {
			t.Errorf("log line without a span_id: %s", l)
		}
		if rec["msg"] == "request" && rec["span_id"] != serverSpanID {
			t.Errorf("access log span_id %v; want the server span %s", rec["span_id"], serverSpanID)
		}
	}
	if lines == 0 {
		t.Errorf("no log line carries trace_id %s", otelTraceID)
	}

	spans := col.spans(t)
	byID := map[string]otelSpan{}
	var trace []otelSpan
	for _, s := range spans {
		byID[s.SpanID] = s
		if s.TraceID == otelTraceID {
			trace = append(trace, s)
		}
	}
	names := map[string]int{}
	for _, s := range trace {
		names[s.Name]++
	}
	if names["POST /chat"] != 1 || names["agent.turn"] != 1 || names["llm.call"] != 2 || names["tool.execute"] != 1 || len(trace) != 5 {
		t.Fatalf("spans of the trace: %v; want POST /chat, agent.turn, 2 llm.call, tool.execute", names)
	}
	for _, s := range trace {
		if s.Resource["service.name"] != "production-agent" || s.Resource["service.version"] != agentVersion {
			t.Errorf("resource %v; want service.name production-agent, service.version %s", s.Resource, agentVersion)
		}
		if s.Span.GetStartTimeUnixNano() == 0 || s.Span.GetEndTimeUnixNano() < s.Span.GetStartTimeUnixNano() {
			t.Errorf("%s times %d..%d", s.Name, s.Span.GetStartTimeUnixNano(), s.Span.GetEndTimeUnixNano())
		}
		if s.StatusCode != tracepb.Status_STATUS_CODE_UNSET {
			t.Errorf("%s status %v; want unset on success", s.Name, s.StatusCode)
		}
		if s.Span.GetTraceState() != "vendor=abc" {
			t.Errorf("%s tracestate %q; want vendor=abc", s.Name, s.Span.GetTraceState())
		}
		parent := byID[s.Parent]
		want := map[string]struct {
			kind   tracepb.Span_SpanKind
			parent string
		}{
			"POST /chat":   {tracepb.Span_SPAN_KIND_SERVER, ""},
			"agent.turn":   {tracepb.Span_SPAN_KIND_INTERNAL, "POST /chat"},
			"llm.call":     {tracepb.Span_SPAN_KIND_CLIENT, "agent.turn"},
			"tool.execute": {tracepb.Span_SPAN_KIND_INTERNAL, "agent.turn"},
		}[s.Name]
		if s.Kind != want.kind || parent.Name != want.parent {
			t.Errorf("%s: kind %v, parent %q; want %v, %q", s.Name, s.Kind, parent.Name, want.kind, want.parent)
		}
		attrs := s.Span.GetAttributes()
		switch s.Name {
		case "POST /chat":
			if s.SpanID != serverSpanID || s.Parent != otelCaller {
				t.Errorf("server span %s parent %s; want %s (the response header) child of the caller %s", s.SpanID, s.Parent, serverSpanID, otelCaller)
			}
			if otelAttr(attrs, "http.route").GetStringValue() != "/chat" || otelAttr(attrs, "http.response.status_code").GetIntValue() != 200 ||
				otelAttr(attrs, "http.request.method").GetStringValue() != "POST" {
				t.Errorf("server span attributes %v", attrs)
			}
		case "llm.call":
			if otelAttr(attrs, "gen_ai.system").GetStringValue() != "openai" || otelAttr(attrs, "gen_ai.request.model").GetStringValue() != "gpt-4o-mini" ||
				otelAttr(attrs, "gen_ai.operation.name").GetStringValue() != "chat" {
				t.Errorf("llm.call attributes %v", attrs)
			}
			in, out := otelAttr(attrs, "gen_ai.usage.input_tokens").GetIntValue(), otelAttr(attrs, "gen_ai.usage.output_tokens").GetIntValue()
			var reasons []string
			for _, v := range otelAttr(attrs, "gen_ai.response.finish_reasons").GetArrayValue().GetValues() {
				reasons = append(reasons, v.GetStringValue())
			}
			ok := (in == 20 && out == 7 && slices.Equal(reasons, []string{"tool_use"})) ||
				(in == 30 && out == 4 && slices.Equal(reasons, []string{"end_turn"}))
			if !ok {
				t.Errorf("llm.call usage %d/%d finish_reasons %v; want 20/7 [tool_use] or 30/4 [end_turn]", in, out, reasons)
			}
		case "tool.execute":
			if otelAttr(attrs, "gen_ai.tool.name").GetStringValue() != "calculator" || otelAttr(attrs, "gen_ai.tool.call.id").GetStringValue() != "call_1" {
				t.Errorf("tool.execute attributes %v", attrs)
			}
		}
		for _, kv := range attrs {
			if strings.Contains(kv.GetValue().GetStringValue(), "2+3") || kv.GetValue().GetStringValue() == "otel-user" {
				t.Errorf("span %s attribute %s holds user input or a user id", s.Name, kv.GetKey())
			}
		}
	}

	// The outbound model requests carried the trace, each naming its own
	// llm.call span as the parent.
	calls := up.calls()
	seen := map[string]bool{}
	traced := 0
	for _, h := range calls {
		tp := strings.Split(h.Get("traceparent"), "-")
		if len(tp) != 4 || tp[1] != otelTraceID {
			continue
		}
		traced++
		if s := byID[tp[2]]; s.Name != "llm.call" || s.TraceID != otelTraceID || tp[3] != "01" {
			t.Errorf("outbound traceparent %q names span %q; want an llm.call of the trace, sampled", h.Get("traceparent"), s.Name)
		}
		if seen[tp[2]] {
			t.Errorf("two model requests name the same span %s", tp[2])
		}
		seen[tp[2]] = true
		if h.Get("tracestate") != "vendor=abc" {
			t.Errorf("outbound tracestate %q; want vendor=abc", h.Get("tracestate"))
		}
	}
	if traced != 2 {
		t.Errorf("%d model requests carried trace %s; want 2", traced, otelTraceID)
	}

	// The failed request: the model call and the request are errors.
	var failed []otelSpan
	for _, s := range spans {
		if s.TraceID == strings.Repeat("ab", 16) {
			failed = append(failed, s)
		}
	}
	for _, s := range failed {
		switch s.Name {
		case "llm.call":
			if s.StatusCode != tracepb.Status_STATUS_CODE_ERROR || otelAttr(s.Span.GetAttributes(), "error.type").GetStringValue() == "" {
				t.Errorf("failed llm.call: status %v, attributes %v; want ERROR with error.type", s.StatusCode, s.Span.GetAttributes())
			}
		case "POST /chat", "agent.turn":
			if s.StatusCode != tracepb.Status_STATUS_CODE_ERROR {
				t.Errorf("failed %s: status %v; want ERROR", s.Name, s.StatusCode)
			}
		}
	}
	if len(failed) < 3 {
		t.Errorf("the failed request exported %d spans; want server, turn and llm.call", len(failed))
	}
}

func TestOtelMalformedAndUnsampledTraceparent(t *testing.T) {
	p, col, up := otelStart(t)
	tests := []struct {
		name, traceparent string
		keep              bool // the caller's trace id is kept
		sampled           bool
	}{
		{"malformed", "00-" + strings.ToUpper(otelTraceID) + "-" + otelCaller + "-01", false, true},
		{"version ff", "ff-" + otelTraceID + "-" + otelCaller + "-01", false, true},
		{"garbage", "not a traceparent", false, true},
		{"not sampled", "00-" + strings.Repeat("cd", 16) + "-" + otelCaller + "-00", true, false},
	}
	traces := map[string]bool{} // trace id → sampled
	for i, tt := range tests {
		before := len(up.calls())
		status, tr, respTP := otelChat(t, p.API, http.Header{"Traceparent": {tt.traceparent}, "Tracestate": {"vendor=x"}},
			"otel-m"+string(rune('a'+i)), "hello")
		if status != 200 {
			t.Errorf("%s: status %d; want 200 (a bad traceparent is never an error)", tt.name, status)
			continue
		}
		parts := strings.Split(respTP, "-")
		if len(parts) != 4 || parts[1] != tr || len(tr) != 32 {
			t.Errorf("%s: body trace %s, header %s", tt.name, tr, respTP)
			continue
		}
		if kept := strings.EqualFold(tr, otelTraceID) || tr == strings.Repeat("cd", 16); kept != tt.keep {
			t.Errorf("%s: trace id %s kept=%v; want %v", tt.name, tr, kept, tt.keep)
		}
		if wantFlag := map[bool]string{true: "01", false: "00"}[tt.sampled]; parts[3] != wantFlag {
			t.Errorf("%s: response flags %s; want %s", tt.name, parts[3], wantFlag)
		}
		for _, h := range up.calls()[before:] {
			if got := h.Get("traceparent"); !strings.Contains(got, tr) || !strings.HasSuffix(got, "-"+parts[3]) {
				t.Errorf("%s: outbound traceparent %q; want trace %s flags %s", tt.name, got, tr, parts[3])
			}
			if ts := h.Get("tracestate"); ts != "" && !tt.keep {
				t.Errorf("%s: tracestate %q forwarded with a rejected traceparent", tt.name, ts)
			}
		}
		traces[tr] = tt.sampled
	}
	otelStop(t, p)
	exported := map[string]bool{}
	for _, s := range col.spans(t) {
		exported[s.TraceID] = true
	}
	for tr, sampled := range traces {
		if exported[tr] != sampled {
			t.Errorf("trace %s exported=%v; want %v (parent-based sampling)", tr, exported[tr], sampled)
		}
	}
}

func TestOtelSampleRatioZeroAndTracingOff(t *testing.T) {
	for _, set := range []string{"observability.tracing_sample_ratio=0", "observability.tracing_enabled=false"} {
		t.Run(set, func(t *testing.T) {
			p, col, up := otelStart(t, "-set", set)
			status, tr, respTP := otelChat(t, p.API, nil, "otel-z", "what is 2+3?")
			if status != 200 || len(tr) != 32 || !strings.HasSuffix(respTP, "-00") {
				t.Errorf("status %d trace %q traceparent %q; want 200, a trace id, flags 00", status, tr, respTP)
			}
			for _, h := range up.calls() {
				if tp := h.Get("traceparent"); !strings.Contains(tp, tr) || !strings.HasSuffix(tp, "-00") {
					t.Errorf("outbound traceparent %q; want trace %s, not sampled", tp, tr)
				}
			}
			otelStop(t, p)
			if n := len(col.spans(t)); n != 0 {
				t.Errorf("%d spans exported; want none", n)
			}
		})
	}
}

// otelWaitSpans polls the collector (spans leave in batches every 5 s).
func otelWaitSpans(t *testing.T, col *otelCollector, want int) []otelSpan {
	t.Helper()
	var spans []otelSpan
	pollUntil(t.Context(), 30*time.Second, func() bool {
		spans = col.spans(t)
		return len(spans) >= want
	})
	return spans
}

func TestOtelExportsWhileRunning(t *testing.T) {
	p, col, _ := otelStart(t)
	if status, _, _ := otelChat(t, p.API, nil, "otel-r", "what is 2+3?"); status != 200 {
		t.Fatalf("POST /chat: %d", status)
	}
	// No shutdown: the batch interval sends them.
	if spans := otelWaitSpans(t, col, 5); len(spans) < 5 {
		t.Errorf("%d spans arrived within 30 s while running; want 5", len(spans))
	}
}
