package main

// End-to-end tests: the whole program through run() on 127.0.0.1:0.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logSink collects the JSON log lines of a running server and reports the
// listen addresses from its "listening" line.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []map[string]any
	ready chan map[string]any
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	for {
		line, err := s.buf.ReadBytes('\n')
		if err != nil {
			s.buf.Write(line) // keep the partial line for the next Write
			break
		}
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			m = map[string]any{"msg": "<not json>", "raw": string(line)}
		}
		s.lines = append(s.lines, m)
		if m["msg"] == "listening" {
			select {
			case s.ready <- m:
			default:
			}
		}
	}
	return len(p), nil
}

// Lines returns a copy of the log lines so far.
func (s *logSink) Lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.lines...)
}

type testServer struct {
	api, admin string // base URLs
	logs       *logSink
	stop       context.CancelFunc
	done       chan error
}

// envFunc makes a getenv from a map; nothing leaks in from the real environment.
func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// startServer runs the service in-process and waits until it listens.
func startServer(t *testing.T, env map[string]string, args ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{logs: &logSink{ready: make(chan map[string]any, 1)}, stop: cancel, done: make(chan error, 1)}
	full := append([]string{"serve", "-host", "127.0.0.1", "-port", "0", "-metrics-port", "0"}, args...)
	var stderr bytes.Buffer
	go func() { ts.done <- run(ctx, full, envFunc(env), strings.NewReader(""), ts.logs, &stderr) }()
	select {
	case m := <-ts.logs.ready:
		ts.api = "http://" + m["api"].(string)
		ts.admin = "http://" + m["admin"].(string)
	case err := <-ts.done:
		cancel()
		t.Fatalf("server exited before listening: %v (stderr %s)", err, stderr.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("server did not start within 10s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s")
		}
	})
	return ts
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (r httpResult) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, r.body)
	}
	return m
}

// errType returns error.type of a JSON error body ("" if absent).
func (r httpResult) errType(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

func doRequest(t *testing.T, method, url, contentType string, body io.Reader, hdr ...string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

func chat(t *testing.T, ts *testServer, user, session, message string) httpResult {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user_id": user, "session_id": session, "message": message})
	return doRequest(t, "POST", ts.api+"/chat", "application/json", bytes.NewReader(body))
}

func TestChatCalculatorConversationLifecycle(t *testing.T) {
	ts := startServer(t, nil)
	r := chat(t, ts, "user123", "session456", "What is 12*7?")
	if r.status != 200 {
		t.Fatalf("chat status %d: %s", r.status, r.body)
	}
	var resp struct {
		Message        string           `json:"message"`
		ConversationID string           `json:"conversation_id"`
		SessionID      string           `json:"session_id"`
		StopReason     string           `json:"stop_reason"`
		ToolCalls      []ToolCallRecord `json:"tool_calls"`
		Usage          Usage            `json:"usage"`
		CostUSD        *float64         `json:"cost_usd"`
		TraceID        string           `json:"trace_id"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.ToolCalls) != 1 || resp.ToolCalls[0].Name != "calculator" || resp.ToolCalls[0].Output != "84" || resp.ToolCalls[0].IsError {
		t.Fatalf("tool_calls = %+v; want one calculator call with output 84", resp.ToolCalls)
	}
	if !strings.Contains(resp.Message, "84") || resp.StopReason != "end_turn" || resp.SessionID != "session456" {
		t.Errorf("answer = %+v", resp)
	}
	if resp.Usage.InputTokens == 0 || resp.Usage.OutputTokens == 0 || resp.CostUSD == nil {
		t.Errorf("usage %+v cost %v; want token counts and a cost", resp.Usage, resp.CostUSD)
	}
	if len(resp.TraceID) != 32 || r.header.Get("traceparent") == "" {
		t.Errorf("trace_id %q, traceparent header %q", resp.TraceID, r.header.Get("traceparent"))
	}
	if len(resp.ConversationID) != 36 {
		t.Errorf("conversation_id %q is not a UUID", resp.ConversationID)
	}

	g := doRequest(t, "GET", ts.api+"/sessions/session456", "", nil)
	if g.status != 200 {
		t.Fatalf("GET session: %d %s", g.status, g.body)
	}
	var view sessionView
	if err := json.Unmarshal(g.body, &view); err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, m := range view.Messages {
		roles = append(roles, m.Role)
	}
	if view.UserID != "user123" || view.ConversationID != resp.ConversationID || view.Status != "active" ||
		strings.Join(roles, ",") != "user,assistant,tool,assistant" || view.Messages[2].Content != "84" {
		t.Errorf("session view = %+v (roles %v)", view, roles)
	}

	if d := doRequest(t, "DELETE", ts.api+"/sessions/session456", "", nil); d.status != 204 {
		t.Fatalf("DELETE: %d %s", d.status, d.body)
	}
	if g := doRequest(t, "GET", ts.api+"/sessions/session456", "", nil); g.status != 404 || g.errType(t) != "not_found" {
		t.Errorf("GET after DELETE: %d %s", g.status, g.body)
	}
	if d := doRequest(t, "DELETE", ts.api+"/sessions/session456", "", nil); d.status != 404 {
		t.Errorf("second DELETE: %d", d.status)
	}
	r2 := chat(t, ts, "user123", "session456", "Hello")
	if r2.status != 200 || r2.json(t)["conversation_id"] == resp.ConversationID {
		t.Errorf("chat after DELETE: %d, conversation %v; want a new conversation", r2.status, r2.json(t)["conversation_id"])
	}
}

func TestChatRejectsBadInput(t *testing.T) {
	ts := startServer(t, nil)
	valid := `{"user_id":"u1","session_id":"s1","message":"hi"}`
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		errType                         string
		msgHas                          string
	}{
		{"malformed JSON", "POST", "/chat", "application/json", `{"user_id":`, 400, "invalid_request", "JSON"},
		{"not an object", "POST", "/chat", "application/json", `[1,2]`, 400, "invalid_request", "object"},
		{"missing message", "POST", "/chat", "application/json", `{"user_id":"u1","session_id":"s1"}`, 400, "invalid_request", "message"},
		{"missing user_id", "POST", "/chat", "application/json", `{"session_id":"s1","message":"hi"}`, 400, "invalid_request", "user_id"},
		{"blank message", "POST", "/chat", "application/json", `{"user_id":"u1","session_id":"s1","message":"  \n"}`, 400, "invalid_request", "blank"},
		{"unknown field", "POST", "/chat", "application/json", `{"user_id":"u1","session_id":"s1","message":"hi","admin":true}`, 400, "invalid_request", "admin"},
		{"wrong type", "POST", "/chat", "application/json", `{"user_id":7,"session_id":"s1","message":"hi"}`, 400, "invalid_request", "user_id"},
		{"bad id characters", "POST", "/chat", "application/json", `{"user_id":"u 1","session_id":"s1","message":"hi"}`, 400, "invalid_request", "user_id"},
		{"bad source_ip", "POST", "/chat", "application/json", `{"user_id":"u1","session_id":"s1","message":"hi","source_ip":"nope"}`, 400, "invalid_request", "source_ip"},
		{"trailing data", "POST", "/chat", "application/json", valid + `{}`, 400, "invalid_request", "single"},
		{"invalid UTF-8", "POST", "/chat", "application/json", "{\"user_id\":\"u1\",\"session_id\":\"s1\",\"message\":\"\xff\xfe\"}", 400, "invalid_request", "UTF-8"},
		{"empty body", "POST", "/chat", "application/json", ``, 400, "invalid_request", "empty"},
		{"1 MiB body", "POST", "/chat", "application/json", `{"user_id":"u1","session_id":"s1","message":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "payload_too_large", "larger"},
		{"message over limit", "POST", "/chat", "application/json", `{"user_id":"u1","session_id":"s1","message":"` + strings.Repeat("a", 40000) + `"}`, 413, "payload_too_large", "message"},
		{"wrong content type", "POST", "/chat", "text/plain", valid, 415, "unsupported_media_type", "application/json"},
		{"no content type", "POST", "/chat", "", valid, 415, "unsupported_media_type", "application/json"},
		{"wrong method", "GET", "/chat", "", "", 405, "method_not_allowed", "GET"},
		{"unknown route", "GET", "/nope", "", "", 404, "not_found", "route"},
		{"non-canonical path", "POST", "//chat", "application/json", valid, 404, "not_found", "route"},
		{"unknown session", "GET", "/sessions/none", "", "", 404, "not_found", "session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := doRequest(t, tt.method, ts.api+tt.path, tt.ctype, strings.NewReader(tt.body))
			if r.status != tt.status {
				t.Fatalf("status = %d; want %d (%s)", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			m := r.json(t)
			e, _ := m["error"].(map[string]any)
			if e["type"] != tt.errType || !strings.Contains(fmt.Sprint(e["message"]), tt.msgHas) || len(fmt.Sprint(e["trace_id"])) != 32 {
				t.Errorf("error = %v; want type %q, message containing %q, a trace_id", e, tt.errType, tt.msgHas)
			}
		})
	}
	r := doRequest(t, "PUT", ts.api+"/sessions/x", "", nil)
	if r.status != 405 || !strings.Contains(r.header.Get("Allow"), "GET") || !strings.Contains(r.header.Get("Allow"), "DELETE") {
		t.Errorf("PUT /sessions/x: %d Allow %q", r.status, r.header.Get("Allow"))
	}
}

func TestChatSessionOwnershipAndBusy(t *testing.T) {
	ts := startServer(t, nil, "-set", "llm.mock_latency_ms=1000", "-set", "security.auto_block=false")
	if r := chat(t, ts, "alice", "shared", "Hello"); r.status != 200 {
		t.Fatalf("first chat: %d %s", r.status, r.body)
	}
	if r := chat(t, ts, "mallory", "shared", "Hello"); r.status != 403 || r.errType(t) != "forbidden" {
		t.Errorf("chat as another user: %d %s", r.status, r.body)
	}
	// Two concurrent turns on one session: exactly one runs, the other gets 409.
	results := make(chan httpResult, 2)
	for i := 0; i < 2; i++ {
		go func() {
			body := `{"user_id":"bob","session_id":"busy","message":"Hello"}`
			req, _ := http.NewRequest("POST", ts.api+"/chat", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- httpResult{status: -1}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- httpResult{status: resp.StatusCode, body: b}
		}()
	}
	got := map[int]int{}
	for i := 0; i < 2; i++ {
		r := <-results
		got[r.status]++
		if r.status == 409 && r.errType(t) != "session_busy" {
			t.Errorf("409 body %s", r.body)
		}
	}
	if got[200] != 1 || got[409] != 1 {
		t.Errorf("statuses = %v; want one 200 and one 409", got)
	}
}

func TestChatStreamsServerSentEvents(t *testing.T) {
	ts := startServer(t, nil)
	body := `{"user_id":"u","session_id":"stream1","message":"What is 6*7?","stream":true}`
	r := doRequest(t, "POST", ts.api+"/chat", "application/json", strings.NewReader(body))
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %q", r.status, r.header.Get("Content-Type"))
	}
	var events []string
	var done map[string]any
	var text strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
			events = append(events, event)
		case strings.HasPrefix(line, "data: "):
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
				t.Fatalf("event %s data is not JSON: %v", event, err)
			}
			if event == "delta" {
				text.WriteString(m["text"].(string))
			}
			if event == "done" {
				done = m
			}
		}
	}
	seq := strings.Join(events, ",")
	if !strings.HasPrefix(seq, "start,delta") || !strings.Contains(seq, "tool_call,tool_result") || !strings.HasSuffix(seq, ",done") {
		t.Errorf("event sequence = %s", seq)
	}
	if done == nil || !strings.Contains(done["message"].(string), "42") || !strings.Contains(text.String(), "42") {
		t.Errorf("done = %v, streamed text %q; want 42", done, text.String())
	}
}

// TestChatStreamErrorEvent: a stream the model fails ends with an error
// event carrying the error object of every error answer, trace id included,
// and no done.
func TestChatStreamErrorEvent(t *testing.T) {
	ts := startServer(t, nil, "-set", "llm.mock_failure_rate=1", "-set", "llm.max_retries=0")
	body := `{"user_id":"u","session_id":"stream-fail","message":"Hello","stream":true}`
	r := doRequest(t, "POST", ts.api+"/chat", "application/json", strings.NewReader(body))
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	events := strings.Split(strings.TrimSpace(string(r.body)), "\n\n")
	last := events[len(events)-1]
	data, ok := strings.CutPrefix(last, "event: error\ndata: ")
	var e errorBody
	if !ok || json.Unmarshal([]byte(data), &e) != nil || e.Error.Type != "upstream_error" || e.Error.Message == "" || len(e.Error.TraceID) != 32 {
		t.Fatalf("last event %q; want event: error with {\"error\": {type upstream_error, message, trace_id}}", last)
	}
	if strings.Contains(string(r.body), "event: done") {
		t.Errorf("a failed stream has a done event:\n%s", r.body)
	}
}

func TestHealthProbesAndMetrics(t *testing.T) {
	ts := startServer(t, nil)
	h := doRequest(t, "GET", ts.api+"/health", "", nil)
	m := h.json(t)
	comps, _ := m["components"].(map[string]any)
	if h.status != 200 || m["status"] != "healthy" || comps["llm"] == nil || comps["audit"] == nil || comps["sessions"] == nil || m["version"] == nil {
		t.Errorf("/health = %d %s", h.status, h.body)
	}
	if r := doRequest(t, "GET", ts.api+"/health/live", "", nil); r.status != 200 || r.json(t)["status"] != "alive" {
		t.Errorf("/health/live = %d %s", r.status, r.body)
	}
	if r := doRequest(t, "GET", ts.api+"/health/ready", "", nil); r.status != 200 || r.json(t)["status"] != "ready" {
		t.Errorf("/health/ready = %d %s", r.status, r.body)
	}
	chat(t, ts, "u", "s", "Hello")
	doRequest(t, "POST", ts.api+"/chat", "text/plain", strings.NewReader("x"))
	metrics := string(doRequest(t, "GET", ts.admin+"/metrics", "", nil).body)
	for _, want := range []string{
		"agent_requests_total 2", "agent_requests_successful_total 1", "agent_requests_failed_total 1",
		`agent_llm_tokens_total{direction="input"}`, "agent_llm_cost_total", `agent_request_duration_seconds_count{route="POST /chat"} 2`,
		"agent_active_sessions 1", "agent_build_info{", "go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if r := doRequest(t, "GET", ts.admin+"/", "", nil); r.status != 200 || r.json(t)["service"] != "production-agent" {
		t.Errorf("admin landing: %d %s", r.status, r.body)
	}
	// Every log line is JSON with time, level and msg; request lines carry trace ids.
	for _, l := range ts.logs.Lines() {
		if l["time"] == nil || l["level"] == nil || l["msg"] == nil {
			t.Errorf("log line lacks time/level/msg: %v", l)
		}
		if l["msg"] == "request" && (l["trace_id"] == nil || l["route"] == nil || l["status"] == nil) {
			t.Errorf("access log line lacks fields: %v", l)
		}
		if strings.Contains(fmt.Sprint(l), "Hello") {
			t.Errorf("message text leaked into the log: %v", l)
		}
	}
}

func TestGracefulShutdownCompletesInFlight(t *testing.T) {
	ts := startServer(t, nil, "-set", "llm.mock_latency_ms=1500", "-set", "server.shutdown_delay_seconds=1")
	result := make(chan httpResult, 1)
	go func() { result <- chat(t, ts, "u", "inflight", "Hello") }()
	// Wait until the turn holds its session (the gauge counts it), then signal.
	waitFor(t, 5*time.Second, func() bool {
		return strings.Contains(string(doRequest(t, "GET", ts.admin+"/metrics", "", nil).body), "agent_active_sessions 1")
	})
	// A real SIGTERM: run() has it registered while it serves, so it stops
	// the server rather than the test binary.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, func() bool {
		r, err := http.Get(ts.api + "/health/ready")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		var m map[string]string
		json.NewDecoder(r.Body).Decode(&m)
		return r.StatusCode == 503 && m["reason"] == "shutting_down"
	})
	if r := <-result; r.status != 200 {
		t.Errorf("in-flight request: %d %s; want 200", r.status, r.body)
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("run returned %v; want nil", err)
		}
		ts.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		runtime.Gosched()
	}
}

func TestConfigCommandAndBadConfig(t *testing.T) {
	var out, errb bytes.Buffer
	env := map[string]string{"ANTHROPIC_API_KEY": "sk-ant-secret-value", "AGENT_LLM_PROVIDER": "mock"}
	if err := run(context.Background(), []string{"config"}, envFunc(env), nil, &out, &errb); err != nil {
		t.Fatalf("config: %v", err)
	}
	if strings.Contains(out.String(), "sk-ant-secret-value") || !strings.Contains(out.String(), "[server]") {
		t.Errorf("config output leaks the secret or lacks sections:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"config", "-check"}, envFunc(nil), nil, &out, &errb); err != nil || !strings.Contains(out.String(), "OK") {
		t.Errorf("config -check = %v, %q", err, out.String())
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[server]\nport = 8080\nlisten_backlog = 5\n"), 0o600)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantKey string
	}{
		{"unknown key in file", []string{"-config", bad}, nil, "listen_backlog"},
		{"port out of range", nil, map[string]string{"AGENT_SERVER_PORT": "70000"}, "server.port"},
		{"unknown provider", []string{"-set", "llm.provider=gemini"}, nil, "llm.provider"},
		{"negative size", nil, map[string]string{"AGENT_SERVER_MAX_BODY_BYTES": "-1"}, "server.max_body_bytes"},
		{"explicit provider without key", []string{"-provider", "anthropic"}, nil, "ANTHROPIC_API_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var so, se bytes.Buffer
			err := run(context.Background(), append([]string{"serve"}, tt.args...), envFunc(tt.env), nil, &so, &se)
			if err == nil || !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("serve with %s = %v; want an error naming %q", tt.name, err, tt.wantKey)
			}
		})
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, envFunc(nil), nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "production-agent ") {
		t.Errorf("version = %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, envFunc(nil), nil, io.Discard, io.Discard); err == nil {
		t.Error("unknown command succeeded")
	}
}

func TestHealthcheckCommand(t *testing.T) {
	ts := startServer(t, nil)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "-url", ts.api + "/health"}, envFunc(nil), nil, &out, io.Discard); err != nil {
		t.Errorf("healthcheck against a healthy server = %v", err)
	}
	err := run(context.Background(), []string{"healthcheck", "-url", ts.api + "/nope"}, envFunc(nil), nil, io.Discard, io.Discard)
	if !errors.Is(err, errSilentExit) {
		t.Errorf("healthcheck against a 404 = %v; want exit status 1", err)
	}
}
