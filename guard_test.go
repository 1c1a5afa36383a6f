package main

// The resilience mechanisms on the real request path: the whole API
// handler built by newApp with a fake clock, against fake upstreams.

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTestApp builds the service with clock now and returns its API server.
func newTestApp(t *testing.T, now func() time.Time, env map[string]string, overrides ...string) (*app, *httptest.Server) {
	t.Helper()
	cfg, err := loadConfig("", envFunc(env), overrides)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	a, err := newApp(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), now)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	a.health.SetReady()
	srv := httptest.NewServer(a.apiHandler())
	t.Cleanup(func() {
		srv.Close()
		a.audit.Close()
	})
	return a, srv
}

// fakeOpenAI is an OpenAI-compatible upstream whose behaviour the test
// switches; it counts the requests that reach it.
type fakeOpenAI struct {
	hits   atomic.Int64
	mu     sync.Mutex
	status int               // 0 or 200: answer; else an error with this status
	header map[string]string // extra response headers for errors
	hang   bool              // block until the client gives up
}

func (f *fakeOpenAI) set(status int, header map[string]string, hang bool) {
	f.mu.Lock()
	f.status, f.header, f.hang = status, header, hang
	f.mu.Unlock()
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	f.mu.Lock()
	status, header, hang := f.status, f.header, f.hang
	f.mu.Unlock()
	io.Copy(io.Discard, r.Body)
	if hang {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	for k, v := range header {
		w.Header().Set(k, v)
	}
	if status != 0 && status != 200 {
		w.WriteHeader(status)
		io.WriteString(w, `{"error":{"message":"simulated","type":"server_error","code":null}}`)
		return
	}
	io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"hello from upstream"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":11,"completion_tokens":4,"total_tokens":15}}`)
}

func startFakeOpenAI(t *testing.T) (*fakeOpenAI, string) {
	t.Helper()
	f := &fakeOpenAI{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/v1"
}

func postChat(t *testing.T, base, user, session, message string) httpResult {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user_id": user, "session_id": session, "message": message})
	return doRequest(t, "POST", base+"/chat", "application/json", strings.NewReader(string(body)))
}

func TestRateLimitOnTheRequestPath(t *testing.T) {
	clk := newFakeClock()
	_, srv := newTestApp(t, clk.Now, nil) // seed limits: 10/s, burst 20 per principal
	statuses := map[int]int{}
	for i := 0; i < 25; i++ {
		r := postChat(t, srv.URL, "alice", "s1", "Hello")
		statuses[r.status]++
		if r.header.Get("RateLimit-Policy") == "" || r.header.Get("RateLimit") == "" {
			t.Errorf("request %d lacks RateLimit headers: %v", i, r.header)
		}
		if r.status == 429 {
			if got := r.header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q; want 1 (0.1 s until the next token, rounded up)", got)
			}
			if r.errType(t) != "rate_limited" {
				t.Errorf("429 body %s", r.body)
			}
		}
	}
	if statuses[200] != 20 || statuses[429] != 5 {
		t.Fatalf("25 rapid requests gave %v; want 20×200 and 5×429", statuses)
	}
	if r := postChat(t, srv.URL, "bob", "s2", "Hello"); r.status != 200 {
		t.Errorf("another user: %d; want 200", r.status)
	}
	clk.Advance(100 * time.Millisecond) // one token at 10/s
	if r := postChat(t, srv.URL, "alice", "s1", "Hello"); r.status != 200 {
		t.Errorf("after the Retry-After wait: %d %s; want 200", r.status, r.body)
	}
	if r := postChat(t, srv.URL, "alice", "s1", "Hello"); r.status != 429 {
		t.Errorf("the refilled token is spent: %d; want 429", r.status)
	}
}

func TestIPRateLimitAndPolicyHeaders(t *testing.T) {
	clk := newFakeClock()
	_, srv := newTestApp(t, clk.Now, nil, "resilience.ip_rate_limit_burst=3", "resilience.ip_rate_limit_requests_per_second=1")
	for i := 0; i < 3; i++ {
		u := "u" + string(rune('a'+i))
		if r := postChat(t, srv.URL, u, "s-"+u, "Hello"); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := postChat(t, srv.URL, "fresh-user", "s9", "Hello")
	if r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("4th request from one IP: %d Retry-After %q; want 429 and 1", r.status, r.header.Get("Retry-After"))
	}
	if got := r.header.Get("RateLimit-Policy"); got != `"ip";q=3;w=3` {
		t.Errorf("RateLimit-Policy = %q", got)
	}
	if got := r.header.Get("RateLimit"); got != `"ip";r=0;t=1` {
		t.Errorf("RateLimit = %q", got)
	}
}

func TestCircuitBreakerOnTheRequestPath(t *testing.T) {
	clk := newFakeClock()
	up, base := startFakeOpenAI(t)
	up.set(500, nil, false)
	a, srv := newTestApp(t, clk.Now, map[string]string{"OPENAI_API_KEY": "test"},
		"llm.provider=openai", "llm.base_url="+base, "llm.max_retries=0")
	for i := 1; i <= 5; i++ {
		if r := postChat(t, srv.URL, "u", "s", "Hello"); r.status != 502 || r.errType(t) != "upstream_error" {
			t.Fatalf("failing call %d: %d %s; want 502 upstream_error", i, r.status, r.body)
		}
	}
	if got := up.hits.Load(); got != 5 {
		t.Fatalf("upstream hits after 5 failures = %d; want 5", got)
	}
	r := postChat(t, srv.URL, "u", "s", "Hello")
	if r.status != 503 || r.errType(t) != "circuit_open" || r.header.Get("Retry-After") != "60" {
		t.Fatalf("6th call: %d %s Retry-After %q; want 503 circuit_open, 60", r.status, r.body, r.header.Get("Retry-After"))
	}
	if got := up.hits.Load(); got != 5 {
		t.Errorf("the open breaker let a call through: %d hits", got)
	}
	h := doRequest(t, "GET", srv.URL+"/health", "", nil)
	if h.status != 200 || h.json(t)["components"].(map[string]any)["llm"].(map[string]any)["status"] != "degraded" {
		t.Errorf("/health while open: %d %s; want 200 with llm degraded", h.status, h.body)
	}
	if r := doRequest(t, "GET", srv.URL+"/health/ready", "", nil); r.status != 200 {
		t.Errorf("readiness must not follow the LLM: %d", r.status)
	}

	clk.Advance(59 * time.Second)
	if r := postChat(t, srv.URL, "u", "s", "Hello"); r.status != 503 || r.header.Get("Retry-After") != "1" {
		t.Errorf("at 59 s: %d Retry-After %q; want 503 and 1", r.status, r.header.Get("Retry-After"))
	}
	clk.Advance(time.Second + time.Nanosecond)
	up.set(200, nil, false)
	for i := 1; i <= 2; i++ {
		if r := postChat(t, srv.URL, "u", "s", "Hello"); r.status != 200 {
			t.Fatalf("probe %d: %d %s", i, r.status, r.body)
		}
	}
	if st := a.guards.breaker.State(); st != StateClosed {
		t.Errorf("after 2 successful probes the breaker is %v; want closed", st)
	}
	if got := up.hits.Load(); got != 7 {
		t.Errorf("upstream hits = %d; want 7", got)
	}
	var m strings.Builder
	a.metrics.reg.Gather()
	rec := httptest.NewRecorder()
	a.metrics.handler(a.logger).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	m.WriteString(rec.Body.String())
	for _, want := range []string{
		`agent_circuit_breaker_transitions_total{breaker="openai",from="closed",to="open"} 1`,
		`agent_circuit_breaker_transitions_total{breaker="openai",from="open",to="half_open"} 1`,
		`agent_circuit_breaker_transitions_total{breaker="openai",from="half_open",to="closed"} 1`,
		`agent_circuit_breaker_state{breaker="openai",state="closed"} 1`,
	} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	events, _ := a.audit.Query(AuditQuery{Action: "circuit_breaker.transition", Limit: 10})
	if len(events) != 3 {
		t.Errorf("audited %d breaker transitions; want 3", len(events))
	}
	failed, _ := a.audit.Query(AuditQuery{Action: "llm.call", Success: new(false), Limit: 10})
	if len(failed) != 5 {
		t.Fatalf("audited %d failed LLM calls; want 5", len(failed))
	}
	for _, ev := range failed {
		if ev.ErrorMessage != "provider error status 500 server_error" {
			t.Errorf("failed llm.call error_message %q; want the status and type", ev.ErrorMessage)
		}
	}
}

func TestBreakerIgnoresClientErrorsAndRetriesHonourRetryAfter(t *testing.T) {
	clk := newFakeClock()
	up, base := startFakeOpenAI(t)
	a, srv := newTestApp(t, clk.Now, map[string]string{"OPENAI_API_KEY": "test"},
		"llm.provider=openai", "llm.base_url="+base, "llm.max_retries=2")
	up.set(400, nil, false)
	for i := 0; i < 7; i++ {
		if r := postChat(t, srv.URL, "u", "s", "Hello"); r.status != 502 {
			t.Fatalf("400 from upstream: %d; want 502", r.status)
		}
	}
	if got := up.hits.Load(); got != 7 {
		t.Errorf("a 400 was retried: %d hits for 7 requests", got)
	}
	if st := a.guards.breaker.State(); st != StateClosed {
		t.Errorf("client errors opened the breaker: %v", st)
	}
	// A 429 with a short retry-after is retried after that delay, then succeeds.
	up.hits.Store(0)
	calls := 0
	up.mu.Lock()
	up.status, up.header = 429, map[string]string{"retry-after-ms": "5"}
	up.mu.Unlock()
	done := make(chan httpResult, 1)
	go func() { done <- postChat(t, srv.URL, "u2", "s2", "Hello") }()
	waitFor(t, 10*time.Second, func() bool { calls = int(up.hits.Load()); return calls >= 1 })
	up.set(200, nil, false)
	if r := <-done; r.status != 200 {
		t.Errorf("429 then success: %d %s; want 200", r.status, r.body)
	}
	if got := up.hits.Load(); got != 2 {
		t.Errorf("upstream hits = %d; want 2 (one retry)", got)
	}
}

func TestHungUpstreamTimesOutWithoutLeaks(t *testing.T) {
	up, base := startFakeOpenAI(t)
	up.set(0, nil, true)
	_, srv := newTestApp(t, time.Now, map[string]string{"OPENAI_API_KEY": "test"},
		"llm.provider=openai", "llm.base_url="+base, "llm.max_retries=0", "llm.timeout_seconds=1")
	postChat(t, srv.URL, "warm", "w", "Hello") // start the long-lived connection goroutines first
	baseline := runtime.NumGoroutine()
	r := postChat(t, srv.URL, "u", "s", "Hello")
	if r.status != 504 || r.errType(t) != "upstream_timeout" {
		t.Fatalf("hung upstream: %d %s; want 504 upstream_timeout", r.status, r.body)
	}
	waitFor(t, 10*time.Second, func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestLLMBulkheadFullIsOverloaded(t *testing.T) {
	_, srv := newTestApp(t, time.Now, nil,
		"llm.mock_latency_ms=300", "resilience.llm_max_concurrent=1", "resilience.llm_max_queued=0")
	results := make(chan httpResult, 2)
	for _, u := range []string{"a", "b"} {
		go func() { results <- postChat(t, srv.URL, u, "s-"+u, "Hello") }()
	}
	got := map[int]int{}
	for i := 0; i < 2; i++ {
		r := <-results
		got[r.status]++
		if r.status == 503 && (r.errType(t) != "overloaded" || r.header.Get("Retry-After") == "") {
			t.Errorf("503 body %s, Retry-After %q", r.body, r.header.Get("Retry-After"))
		}
	}
	if got[200] != 1 || got[503] != 1 {
		t.Errorf("two concurrent turns through a 1-slot bulkhead gave %v; want one 200 and one 503", got)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		cfg, err := loadConfig("", envFunc(nil), []string{fmt.Sprintf("observability.pprof_enabled=%t", enabled)})
		if err != nil {
			t.Fatal(err)
		}
		a, err := newApp(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		a.adminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if want := map[bool]int{false: 404, true: 200}[enabled]; rec.Code != want {
			t.Errorf("pprof_enabled=%t: /debug/pprof/ = %d; want %d", enabled, rec.Code, want)
		}
		rec = httptest.NewRecorder()
		a.apiHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if rec.Code != 404 {
			t.Errorf("pprof on the API listener: %d; want 404", rec.Code)
		}
		a.audit.Close()
	}
}

func TestAuditClosedIsShuttingDown(t *testing.T) {
	a, srv := newTestApp(t, time.Now, nil)
	a.audit.Close() // what happens to a turn that ends after the drain
	r := postChat(t, srv.URL, "u", "s", "Hello")
	if r.status != 503 || r.errType(t) != "shutting_down" || r.header.Get("Retry-After") == "" {
		t.Errorf("chat after the audit log closed: %d %s; want 503 shutting_down with Retry-After", r.status, r.body)
	}
}
