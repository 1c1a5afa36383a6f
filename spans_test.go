package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseTraceparent(t *testing.T) {
	const (
		tid = "4bf92f3577b34da6a3ce929d0e0e4736"
		pid = "00f067aa0ba902b7"
	)
	tests := []struct {
		name, in string
		ok       bool
		flags    byte
	}{
		{"valid sampled", "00-" + tid + "-" + pid + "-01", true, 0x01},
		{"valid not sampled", "00-" + tid + "-" + pid + "-00", true, 0x00},
		{"surrounding spaces", "  00-" + tid + "-" + pid + "-01 ", true, 0x01},
		{"future version, extra fields", "cc-" + tid + "-" + pid + "-01-what-the-future-holds", true, 0x01},
		{"future version, exact length", "01-" + tid + "-" + pid + "-01", true, 0x01},
		{"future version, junk after flags", "01-" + tid + "-" + pid + "-01x", false, 0},
		{"version 00 with extra fields", "00-" + tid + "-" + pid + "-01-extra", false, 0},
		{"version ff", "ff-" + tid + "-" + pid + "-01", false, 0},
		{"upper-case trace id", "00-" + strings.ToUpper(tid) + "-" + pid + "-01", false, 0},
		{"upper-case version", "0A-" + tid + "-" + pid + "-01", false, 0},
		{"upper-case flags", "00-" + tid + "-" + pid + "-0A", false, 0},
		{"all-zero trace id", "00-" + strings.Repeat("0", 32) + "-" + pid + "-01", false, 0},
		{"all-zero parent id", "00-" + tid + "-" + strings.Repeat("0", 16) + "-01", false, 0},
		{"short trace id", "00-" + tid[:31] + "-" + pid + "-01", false, 0},
		{"long trace id", "00-" + tid + "0-" + pid + "-01", false, 0},
		{"short parent id", "00-" + tid + "-" + pid[:15] + "-01", false, 0},
		{"one-digit flags", "00-" + tid + "-" + pid + "-1", false, 0},
		{"non-hex", "00-" + strings.Repeat("g", 32) + "-" + pid + "-01", false, 0},
		{"wrong separators", "00_" + tid + "_" + pid + "_01", false, 0},
		{"empty", "", false, 0},
		{"garbage", "hello, world", false, 0},
		{"unicode", "00-" + tid[:30] + "é-" + pid + "-01", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, ok := parseTraceparent(tt.in)
			if ok != tt.ok {
				t.Fatalf("parseTraceparent(%q) ok = %v; want %v", tt.in, ok, tt.ok)
			}
			if !ok {
				return
			}
			if got := tc.TraceIDString(); got != tid {
				t.Errorf("trace id = %s; want %s", got, tid)
			}
			if got := hex.EncodeToString(tc.ParentID[:]); got != pid {
				t.Errorf("parent id = %s; want %s", got, pid)
			}
			if tc.Flags != tt.flags {
				t.Errorf("flags = %#x; want %#x", tc.Flags, tt.flags)
			}
		})
	}
}

func TestNewTraceContextMalformedStartsATrace(t *testing.T) {
	tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 1})
	for _, in := range []string{"", "garbage", "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		tc := tr.NewTraceContext(in, "vendor=value")
		if tc.TraceID == ([16]byte{}) || tc.SpanID == ([8]byte{}) {
			t.Errorf("NewTraceContext(%q) = %+v; want fresh non-zero ids", in, tc)
		}
		if tc.ParentID != ([8]byte{}) {
			t.Errorf("NewTraceContext(%q) parent = %x; want none (a new trace)", in, tc.ParentID)
		}
		if tc.State != "" {
			t.Errorf("NewTraceContext(%q) kept tracestate %q of a rejected traceparent", in, tc.State)
		}
		if !tc.Sampled() {
			t.Errorf("NewTraceContext(%q) not sampled with ratio 1", in)
		}
	}
	a, b := tr.NewTraceContext("", ""), tr.NewTraceContext("", "")
	if a.TraceID == b.TraceID || a.SpanID == b.SpanID {
		t.Errorf("two new traces share ids: %+v %+v", a, b)
	}
}

func TestNewTraceContextContinuesCaller(t *testing.T) {
	const in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name, state, wantState string
	}{
		{"valid tracestate kept", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
		{"no tracestate", "", ""},
		{"too long", "a=" + strings.Repeat("x", 511), ""},
		{"too many members", strings.Repeat("a=b,", 32) + "a=b", ""},
		{"control character", "a=b\x01", ""},
	}
	tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 0})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := tr.NewTraceContext(in, tt.state)
			if got := tc.TraceIDString(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("trace id = %s; want the caller's", got)
			}
			if got := hex.EncodeToString(tc.ParentID[:]); got != "00f067aa0ba902b7" {
				t.Errorf("parent = %s; want the caller's span", got)
			}
			if hex.EncodeToString(tc.SpanID[:]) == "00f067aa0ba902b7" || tc.SpanID == ([8]byte{}) {
				t.Errorf("span id %x; want a new one", tc.SpanID)
			}
			if tc.State != tt.wantState {
				t.Errorf("tracestate = %q; want %q", tc.State, tt.wantState)
			}
			if !tc.Sampled() {
				t.Error("the caller's sampled flag was not honoured (ratio 0 must not matter)")
			}
			if got, want := tc.Traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-"+tc.SpanIDString()+"-01"; got != want {
				t.Errorf("Traceparent() = %s; want %s", got, want)
			}
		})
	}
}

func TestSampling(t *testing.T) {
	const n = 200
	count := func(tr *Tracer, traceparent string) int {
		sampled := 0
		for range n {
			tc := tr.NewTraceContext(traceparent, "")
			if tc.Sampled() {
				sampled++
			}
			if _, s := tr.StartServer(context.Background(), tc, "GET"); (s != nil) != tc.Sampled() {
				t.Fatalf("StartServer span %v for sampled=%v", s, tc.Sampled())
			}
		}
		return sampled
	}
	const parentOn = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const parentOff = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	tests := []struct {
		name        string
		s           TracerSettings
		traceparent string
		want        int
	}{
		{"ratio 1", TracerSettings{Enabled: true, SampleRatio: 1}, "", n},
		{"ratio 0", TracerSettings{Enabled: true, SampleRatio: 0}, "", 0},
		{"ratio 0, sampled parent", TracerSettings{Enabled: true, SampleRatio: 0}, parentOn, n},
		{"ratio 1, unsampled parent", TracerSettings{Enabled: true, SampleRatio: 1}, parentOff, 0},
		{"tracing off", TracerSettings{Enabled: false, SampleRatio: 1}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Endpoint, tt.s.Client = "http://collector.invalid", spanTestDiscardClient()
			tr := newTracer(tt.s)
			defer tr.Shutdown(context.Background())
			if got := count(tr, tt.traceparent); got != tt.want {
				t.Errorf("%d of %d sampled; want %d", got, n, tt.want)
			}
		})
	}
	t.Run("tracing off keeps a caller's flag", func(t *testing.T) {
		tc := newTracer(TracerSettings{}).NewTraceContext(parentOn, "")
		if !tc.Sampled() {
			t.Error("flag dropped")
		}
		if _, s := newTracer(TracerSettings{}).StartServer(context.Background(), tc, "GET"); s != nil {
			t.Error("a disabled tracer made a span")
		}
	})
	t.Run("nil tracer", func(t *testing.T) {
		var tr *Tracer
		tc := tr.NewTraceContext("", "")
		if tc.TraceID == ([16]byte{}) || tc.Sampled() {
			t.Errorf("nil tracer context %+v; want a fresh unsampled trace", tc)
		}
		if _, s := tr.StartServer(context.Background(), tc, "GET"); s != nil {
			t.Error("nil tracer made a span")
		}
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

func TestSampleTraceIDRatio(t *testing.T) {
	id := func(low uint64) [16]byte {
		var b [16]byte
		for i := range 8 {
			b[15-i] = byte(low >> (8 * i))
		}
		return b
	}
	tests := []struct {
		low   uint64
		ratio float64
		want  bool
	}{
		{0, 0.5, true},
		{1<<63 - 1, 0.5, true}, // >>1 is 2^62-1, below 2^62
		{1 << 63, 0.5, false},  // >>1 is 2^62
		{^uint64(0), 0.5, false},
		{^uint64(0), 1, true},
		{0, 0, false},
		{1 << 62, 0.25, false},
		{1<<62 - 2, 0.25, true},
	}
	for _, tt := range tests {
		if got := sampleTraceID(id(tt.low), tt.ratio); got != tt.want {
			t.Errorf("sampleTraceID(low %#x, %v) = %v; want %v", tt.low, tt.ratio, got, tt.want)
		}
	}
	// Over many random ids the share is close to the ratio.
	tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 0.25})
	sampled := 0
	for range 4000 {
		if tr.NewTraceContext("", "").Sampled() {
			sampled++
		}
	}
	if sampled < 800 || sampled > 1200 {
		t.Errorf("ratio 0.25 sampled %d of 4000; want about 1000", sampled)
	}
}

func TestSpanTreeAndNilSafety(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 1, Now: func() time.Time { return clock },
		Endpoint: "http://collector.invalid", Client: spanTestDiscardClient()})
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	tc := tr.NewTraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v")
	ctx, server := tr.StartServer(context.Background(), tc, "POST")
	if server.SpanID() != tc.SpanIDString() || server.TraceID() != tc.TraceIDString() {
		t.Fatalf("server span %s/%s; want the request's ids %s/%s", server.TraceID(), server.SpanID(), tc.TraceIDString(), tc.SpanIDString())
	}
	if !server.remote || server.parentID != tc.ParentID {
		t.Errorf("server span parent %x remote=%v; want the caller's %x, remote", server.parentID, server.remote, tc.ParentID)
	}
	tctx, turn := startSpan(ctx, "agent.turn", SpanKindInternal)
	_, llm := startSpan(tctx, "llm.call", SpanKindClient)
	if turn.parentID != server.spanID || llm.parentID != turn.spanID {
		t.Errorf("parents: turn %x (want %x), llm %x (want %x)", turn.parentID, server.spanID, llm.parentID, turn.spanID)
	}
	if llm.TraceID() != tc.TraceIDString() || llm.state != "k=v" || llm.remote {
		t.Errorf("llm span trace %s state %q remote %v", llm.TraceID(), llm.state, llm.remote)
	}
	if got, want := llm.Traceparent(), "00-"+tc.TraceIDString()+"-"+llm.SpanID()+"-01"; got != want {
		t.Errorf("llm Traceparent() = %s; want %s", got, want)
	}
	llm.SetAttr("n", 3)
	llm.SetAttr("n", 4) // replaces
	llm.SetAttr("f", float32(0.5))
	llm.SetAttr("d", time.Second)
	llm.SetError(errors.New("boom"), "timeout")
	llm.End()
	llm.SetAttr("late", true) // ignored after End
	llm.SetName("renamed")
	llm.End()
	want := []spanAttr{{"n", int64(4)}, {"f", 0.5}, {"d", "1s"}, {"error.type", "timeout"}}
	if len(llm.attrs) != len(want) {
		t.Fatalf("attrs %v; want %v", llm.attrs, want)
	}
	for i := range want {
		if llm.attrs[i] != want[i] {
			t.Errorf("attr %d = %v; want %v", i, llm.attrs[i], want[i])
		}
	}
	if llm.status != spanStatusError || llm.message != "boom" || llm.name != "llm.call" {
		t.Errorf("status %d %q name %q; want error, boom, llm.call", llm.status, llm.message, llm.name)
	}
	for i := range maxSpanAttrs + 5 {
		turn.SetAttr(strings.Repeat("k", i+1), i)
	}
	if len(turn.attrs) != maxSpanAttrs {
		t.Errorf("%d attributes kept; want the cap %d", len(turn.attrs), maxSpanAttrs)
	}

	// No current span: children are nil and every method is a no-op.
	bctx, none := startSpan(context.Background(), "x", SpanKindInternal)
	if none != nil || bctx != context.Background() {
		t.Fatalf("startSpan without a parent = %v", none)
	}
	none.SetAttr("a", 1)
	none.SetError(errors.New("x"), "y")
	none.SetStatus(spanStatusOK, "")
	none.SetName("n")
	none.drop()
	none.End()
	if none.TraceID() != "" || none.SpanID() != "" || none.Traceparent() != "" {
		t.Error("nil span has ids")
	}
}

func TestTraceHandlerAddsIDs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(newTraceHandler(slog.NewJSONHandler(&buf, nil)))
	tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 1, Endpoint: "http://collector.invalid", Client: spanTestDiscardClient()})
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	tc := tr.NewTraceContext("", "")
	ri := &requestInfo{trace: tc}
	ctx := context.WithValue(context.Background(), requestInfoKey{}, ri)
	logger.InfoContext(ctx, "no span yet")
	ctx, _ = tr.StartServer(ctx, tc, "POST")
	ctx, child := startSpan(ctx, "llm.call", SpanKindClient)
	logger.With("component", "agent").WarnContext(ctx, "in the model call", "input", "</script>\"\n")
	logger.Info("outside any request")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines; want 3:\n%s", len(lines), buf.String())
	}
	var recs [3]map[string]any
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &recs[i]); err != nil {
			t.Fatalf("line %d is not JSON (input not escaped?): %v: %s", i, err, l)
		}
	}
	if recs[0]["trace_id"] != tc.TraceIDString() || recs[0]["span_id"] != tc.SpanIDString() {
		t.Errorf("request line ids %v/%v; want %s/%s", recs[0]["trace_id"], recs[0]["span_id"], tc.TraceIDString(), tc.SpanIDString())
	}
	if recs[1]["trace_id"] != tc.TraceIDString() || recs[1]["span_id"] != child.SpanID() {
		t.Errorf("span line ids %v/%v; want %s/%s", recs[1]["trace_id"], recs[1]["span_id"], tc.TraceIDString(), child.SpanID())
	}
	if recs[1]["input"] != "</script>\"\n" {
		t.Errorf("input round trip = %q", recs[1]["input"])
	}
	if _, ok := recs[2]["trace_id"]; ok {
		t.Errorf("a line outside requests got a trace id: %v", recs[2])
	}
}

// spanTestUpstream is an OpenAI-compatible model that asks for the
// calculator on the first call and answers on the second, keeping the
// traceparent header of every call.
type spanTestUpstream struct {
	mu          sync.Mutex
	traceparent []string
}

func (u *spanTestUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	u.traceparent = append(u.traceparent, r.Header.Get("traceparent"))
	n := len(u.traceparent)
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if n%2 == 1 {
		io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,`+
			`"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",`+
			`"function":{"name":"calculator","arguments":"{\"expression\":\"2+3\"}"}}]},"finish_reason":"tool_calls"}],`+
			`"usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27}}`)
		return
	}
	io.WriteString(w, `{"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,`+
		`"message":{"role":"assistant","content":"5"},"finish_reason":"stop"}],"usage":{"prompt_tokens":30,"completion_tokens":1,"total_tokens":31}}`)
}

// TestChatSpansEndToEnd runs /chat through the assembled service: the
// caller's trace id survives, the span tree is server → agent.turn →
// llm.call / tool.execute, and each outbound model request names its
// llm.call span in traceparent.
func TestChatSpansEndToEnd(t *testing.T) {
	col := &otlpTestCollector{}
	colSrv := httptest.NewServer(col)
	defer colSrv.Close()
	up := &spanTestUpstream{}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	cfg, err := loadConfig("", func(k string) string {
		return map[string]string{"OPENAI_API_KEY": "x"}[k]
	}, []string{"llm.provider=openai", "llm.base_url=" + upSrv.URL + "/v1",
		"observability.opentelemetry_endpoint=" + colSrv.URL, "observability.tracing_sample_ratio=0"})
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger, _ := newLeveledLogger(spanTestLockedWriter{&logMu, &logs}, "debug")
	a, err := newApp(cfg, logger, time.Now)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	defer a.audit.Close()
	a.health.SetReady()
	api := httptest.NewServer(a.apiHandler())
	defer api.Close()

	const tid = "0af7651916cd43dd8448eb211c80319c"
	req, _ := http.NewRequest("POST", api.URL+"/chat", strings.NewReader(`{"user_id":"u1","session_id":"s1","message":"what is 2+3?"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+tid+"-b7ad6b7169203331-01")
	req.Header.Set("tracestate", "vendor=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /chat: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		TraceID   string                  `json:"trace_id"`
		ToolCalls []struct{ Name string } `json:"tool_calls"`
	}
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /chat: %d %s", resp.StatusCode, body)
	}
	if out.TraceID != tid || len(out.ToolCalls) != 1 {
		t.Errorf("body trace_id %s, %d tool calls; want %s, 1", out.TraceID, len(out.ToolCalls), tid)
	}
	respTP, ok := parseTraceparent(resp.Header.Get("traceparent"))
	if !ok || respTP.TraceIDString() != tid || respTP.Flags != 0x01 {
		t.Errorf("traceparent response header %q; want trace %s, sampled", resp.Header.Get("traceparent"), tid)
	}
	serverSpanID := hex.EncodeToString(respTP.ParentID[:])

	if err := a.tracer.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	spans := col.spans(t)
	byID := map[string]otlpTestSpan{}
	count := map[string]int{}
	for _, s := range spans {
		byID[s.SpanID] = s
		count[s.Name]++
		if s.TraceID != tid {
			t.Errorf("span %s in trace %s; want %s", s.Name, s.TraceID, tid)
		}
	}
	if count["POST /chat"] != 1 || count["agent.turn"] != 1 || count["llm.call"] != 2 || count["tool.execute"] != 1 {
		t.Fatalf("spans %v; want 1 POST /chat, 1 agent.turn, 2 llm.call, 1 tool.execute", count)
	}
	server := byID[serverSpanID]
	if server.Name != "POST /chat" || server.ParentSpanID != "b7ad6b7169203331" || server.Kind != 2 {
		t.Errorf("span named by the response traceparent: %+v; want the server span, child of the caller", server)
	}
	attr := func(s otlpTestSpan, k string) string { return string(s.Attrs[k]) }
	if attr(server, "http.route") != `{"stringValue":"/chat"}` || attr(server, "http.response.status_code") != `{"intValue":"200"}` {
		t.Errorf("server attributes %v", server.Attrs)
	}
	for _, s := range spans {
		switch s.Name {
		case "agent.turn":
			if s.ParentSpanID != serverSpanID || s.Kind != 1 || attr(s, "session.id") != `{"stringValue":"s1"}` {
				t.Errorf("agent.turn %+v", s)
			}
		case "llm.call", "tool.execute":
			if p := byID[s.ParentSpanID]; p.Name != "agent.turn" {
				t.Errorf("%s parent is %q; want agent.turn", s.Name, p.Name)
			}
		}
		if s.Name == "llm.call" {
			for k, want := range map[string]string{
				"gen_ai.system": `{"stringValue":"openai"}`, "gen_ai.request.model": `{"stringValue":"gpt-4o-mini"}`,
				"gen_ai.operation.name": `{"stringValue":"chat"}`,
			} {
				if got := attr(s, k); got != want {
					t.Errorf("llm.call %s = %s; want %s", k, got, want)
				}
			}
			for _, k := range []string{"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.response.finish_reasons"} {
				if attr(s, k) == "" {
					t.Errorf("llm.call lacks %s: %v", k, s.Attrs)
				}
			}
		}
		if s.Name == "tool.execute" && attr(s, "gen_ai.tool.name") != `{"stringValue":"calculator"}` {
			t.Errorf("tool.execute attributes %v", s.Attrs)
		}
		if strings.Contains(string(spanTestJSON(t, s.Attrs)), "2+3") {
			t.Errorf("span %s carries message text: %v", s.Name, s.Attrs)
		}
	}
	up.mu.Lock()
	tps := append([]string(nil), up.traceparent...)
	up.mu.Unlock()
	if len(tps) != 2 {
		t.Fatalf("%d upstream calls; want 2", len(tps))
	}
	for i, tp := range tps {
		tc, ok := parseTraceparent(tp)
		if !ok || tc.TraceIDString() != tid || !tc.Sampled() {
			t.Errorf("upstream call %d traceparent %q; want trace %s sampled", i, tp, tid)
			continue
		}
		if s := byID[hex.EncodeToString(tc.ParentID[:])]; s.Name != "llm.call" {
			t.Errorf("upstream call %d traceparent names span %q; want an llm.call", i, s.Name)
		}
	}

	logMu.Lock()
	defer logMu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		json.Unmarshal([]byte(line), &rec)
		if rec["msg"] == "request" || rec["msg"] == "tool executed" {
			if rec["trace_id"] != tid || rec["span_id"] == nil {
				t.Errorf("log line without the caller's trace: %s", line)
			}
		}
	}
}

type spanTestLockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l spanTestLockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func spanTestJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkRequestSpans measures what tracing adds to one /chat that
// calls a tool: the five spans with their attributes, ended into an
// exporter whose collector answers at once.
func BenchmarkRequestSpans(b *testing.B) {
	client := &http.Client{Transport: otlpTestTransport(func(r *http.Request) (*http.Response, error) {
		io.Copy(io.Discard, r.Body)
		return otlpTestAnswer(200), nil
	})}
	for _, bc := range []struct {
		name string
		s    TracerSettings
	}{
		{"off", TracerSettings{}},
		{"exported", TracerSettings{Enabled: true, SampleRatio: 1, Endpoint: "http://collector.invalid", Client: client}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := newTracer(bc.s)
			defer tr.Shutdown(context.Background())
			b.ReportAllocs()
			for b.Loop() {
				tc := tr.NewTraceContext("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "")
				ctx, server := tr.StartServer(context.Background(), tc, "POST")
				server.SetAttr("http.request.method", "POST")
				server.SetAttr("url.path", "/chat")
				server.SetAttr("client.address", "127.0.0.1")
				tctx, turn := startSpan(ctx, "agent.turn", SpanKindInternal)
				turn.SetAttr("session.id", "s1")
				for i := range 3 {
					name, kind := "llm.call", SpanKindClient
					if i == 1 {
						name, kind = "tool.execute", SpanKindInternal
					}
					_, s := startSpan(tctx, name, kind)
					s.SetAttr("gen_ai.system", "openai")
					s.SetAttr("gen_ai.request.model", "gpt-4o-mini")
					s.SetAttr("gen_ai.usage.input_tokens", 20)
					s.SetAttr("gen_ai.usage.output_tokens", 7)
					s.SetAttr("gen_ai.response.finish_reasons", []string{"end_turn"})
					_ = s.Traceparent()
					s.End()
				}
				turn.End()
				server.SetName("POST /chat")
				server.SetAttr("http.response.status_code", 200)
				server.End()
			}
		})
	}
}

// spanTestDiscardClient accepts every export without a network.
func spanTestDiscardClient() *http.Client {
	return &http.Client{Transport: otlpTestTransport(func(r *http.Request) (*http.Response, error) {
		io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
	})}
}

func TestNoSpansWithoutExporter(t *testing.T) {
	tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 1})
	tc := tr.NewTraceContext("", "")
	if _, s := tr.StartServer(context.Background(), tc, "POST /chat"); s != nil {
		t.Error("a span was recorded with nowhere to export it")
	}
	if !tc.Sampled() || len(tc.TraceIDString()) != 32 {
		t.Errorf("trace context %+v: ids and the sampled flag must still be propagated", tc)
	}
}
