package main

// Benchmarks of the /chat hot path, piece by piece and whole (issue 10):
//
//	go test -run '^$' -bench 'Hot' -benchmem
//	go test -run '^$' -bench 'HotChatHandler' -benchmem -cpuprofile cpu.out -memprofile mem.out
//
// The detector (BenchmarkScan1KiB, BenchmarkScan32KiB) and audit append
// (BenchmarkAuditAppendMemory, BenchmarkAuditAppendFile) benchmarks live
// beside their code in injection_bench_test.go and audit_bench_test.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hotChatBody is a typical /chat body.
const hotChatBody = `{"user_id":"user123","session_id":"session456","message":"Hello there! Please give me a short, friendly summary of the kinds of questions you are able to help me with.","source_ip":"192.168.1.100"}`

// BenchmarkHotDecodeChat measures reading and validating a /chat request
// (Content-Type check, body read under the size limit, strict JSON decode,
// field checks).
func BenchmarkHotDecodeChat(b *testing.B) {
	lim := chatLimits{MaxBodyBytes: 65536, MaxMessageBytes: 32768}
	body := []byte(hotChatBody)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/chat", strings.NewReader(hotChatBody))
		r.Header.Set("Content-Type", "application/json")
		if _, err := decodeChat(httptest.NewRecorder(), r, lim); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotParseChatBody is decodeChat without the HTTP plumbing.
func BenchmarkHotParseChatBody(b *testing.B) {
	lim := chatLimits{MaxBodyBytes: 65536, MaxMessageBytes: 32768}
	body := []byte(hotChatBody)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseChatBody(body, lim); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotReducerTurn measures one text-only turn through the reducer
// (SendMessage then ProcessResponse) on a conversation whose history is
// full (max_history_messages = 50), the steady state of a long session.
func BenchmarkHotReducerTurn(b *testing.B) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	conv, _, err := reduce(Conversation{}, StartConversation{ConversationID: "c", SessionID: "s", UserID: "u",
		MaxToolIterations: 8, MaxHistoryMessages: 50, At: at})
	if err != nil {
		b.Fatal(err)
	}
	resp := LLMResponse{ID: "r", Model: "m", Text: "Sure, here is a short answer.", StopReason: "end_turn",
		Usage: Usage{InputTokens: 120, OutputTokens: 20}}
	turn := func() {
		var err error
		if conv, _, err = reduce(conv, SendMessage{Text: "Hello there, how are you?", At: at}); err != nil {
			b.Fatal(err)
		}
		if conv, _, err = reduce(conv, ProcessResponse{Response: resp, At: at}); err != nil {
			b.Fatal(err)
		}
	}
	for range 30 { // fill the history
		turn()
	}
	b.ReportAllocs()
	for b.Loop() {
		turn()
	}
}

// BenchmarkHotLimiter measures one token bucket decision.
func BenchmarkHotLimiter(b *testing.B) {
	l := NewLimiter(1e9, 1_000_000_000)
	t := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		t = t.Add(time.Microsecond)
		if !l.AllowN(t, 1) {
			b.Fatal("denied")
		}
	}
}

// BenchmarkHotKeyedLimiter measures the per-IP / per-principal decision for
// a known key among 10,000, serially and from parallel goroutines.
func BenchmarkHotKeyedLimiter(b *testing.B) {
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	for _, parallel := range []bool{false, true} {
		b.Run(fmt.Sprintf("parallel=%v", parallel), func(b *testing.B) {
			k := NewKeyedLimiter(1e9, 1_000_000_000, maxLimiterKeys, nil)
			t := time.Now()
			for _, key := range keys {
				k.DecideAt(key, t)
			}
			b.ReportAllocs()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						i++
						if !k.Decide(keys[i%len(keys)]).Allowed {
							b.Fatal("denied")
						}
					}
				})
				return
			}
			i := 0
			for b.Loop() {
				i++
				if !k.DecideAt(keys[i%len(keys)], t).Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}

// BenchmarkHotBreaker measures admitting one call through a closed breaker
// and recording its success, serially and from parallel goroutines.
func BenchmarkHotBreaker(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(fmt.Sprintf("parallel=%v", parallel), func(b *testing.B) {
			br := NewBreaker(BreakerSettings{Name: "bench"})
			call := func() {
				done, err := br.Allow()
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
			b.ReportAllocs()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						call()
					}
				})
				return
			}
			for b.Loop() {
				call()
			}
		})
	}
}

// BenchmarkHotMetrics measures what one successful /chat records in
// Prometheus: the request counters, the route's duration histogram and
// one LLM call (duration, tokens, cost).
func BenchmarkHotMetrics(b *testing.B) {
	m := newMetrics("bench")
	u := Usage{InputTokens: 120, OutputTokens: 20}
	b.ReportAllocs()
	for b.Loop() {
		m.observeChat(http.StatusOK)
		m.requestDuration.WithLabelValues("POST /chat").Observe(0.0004)
		m.observeLLM("openai", "success", 300*time.Microsecond, u, 0.00002)
	}
}

// hotApp builds the whole service as runServe does (JSON access log to
// io.Discard) with limits that never bind, plus overrides.
func hotApp(b testing.TB, env map[string]string, overrides ...string) http.Handler {
	b.Helper()
	sets := append([]string{
		"resilience.rate_limit_requests_per_second=1e9", "resilience.rate_limit_burst=1000000000",
		"resilience.ip_rate_limit_requests_per_second=1e9", "resilience.ip_rate_limit_burst=1000000000",
		"resilience.llm_max_concurrent=4096", "resilience.llm_max_queued=4096",
	}, overrides...)
	cfg, err := loadConfig("", func(k string) string { return env[k] }, sets)
	if err != nil {
		b.Fatal(err)
	}
	logger, _ := newLeveledLogger(io.Discard, cfg.Observability.TracingLevel)
	a, err := newApp(cfg, logger, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.close(context.Background()) })
	a.health.SetReady()
	return a.apiHandler()
}

// hotServeChat sends /chat bodies with a new user and session per request
// (the session store fills to max_sessions and then evicts, as with many
// distinct users) through h in process.
func hotServeChat(b *testing.B, h http.Handler) {
	b.Helper()
	msg := strconv.Quote("Hello there! Please give me a short, friendly summary of the kinds of questions you are able to help me with.")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		n := strconv.Itoa(i)
		body := `{"user_id":"u` + n + `","session_id":"s` + n + `","message":` + msg + `}`
		r := httptest.NewRequest(http.MethodPost, "/chat", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("POST /chat = %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkHotChatHandler is one whole /chat turn with the embedded model,
// in process: every middleware, the security checks, the session, the
// reducer loop, audit (in_memory), metrics and the JSON answer.
func BenchmarkHotChatHandler(b *testing.B) {
	hotServeChat(b, hotApp(b, nil, "llm.provider=mock"))
}

// hotMockReply is an OpenAI-compatible chat completion without tools.
const hotMockReply = `{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! Ask me anything and I will answer at once."},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":120,"completion_tokens":20,"total_tokens":140}}`

// BenchmarkHotChatHandlerOpenAI is one whole /chat turn through the
// OpenAI-compatible client to a local server that answers at once: the
// provider path of the load harness's scenarios 2-5, minus the inbound
// network hop.
func BenchmarkHotChatHandlerOpenAI(b *testing.B) {
	upstream := hotUpstream(b)
	hotServeChat(b, hotApp(b, map[string]string{"OPENAI_API_KEY": "sk-bench"},
		"llm.provider=openai", "llm.base_url="+upstream.URL+"/v1"))
}

// hotUpstream is a local OpenAI-compatible server that reads the request
// and answers hotMockReply at once.
func hotUpstream(b *testing.B) *httptest.Server {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil && !errors.Is(err, io.EOF) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, hotMockReply)
	}))
	b.Cleanup(upstream.Close)
	return upstream
}

// BenchmarkHotBareProxy sends the same requests as
// BenchmarkHotChatHandlerOpenAI through a bare httputil.ReverseProxy to the
// same kind of local server: the in-process counterpart of the harness's
// proxy, to set beside it (the difference is what /chat does beyond one
// hop).
func BenchmarkHotBareProxy(b *testing.B) {
	upstream := hotUpstream(b)
	u, err := url.Parse(upstream.URL)
	if err != nil {
		b.Fatal(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = newLLMHTTPClient(0).Transport // a transport built as ours is
	hotServeChat(b, p)
}

// BenchmarkHotProviderCall is one provider call, side by side: "openai" is
// OpenAIClient.Complete (the Chat Completions body built from a one-message
// conversation, the system prompt and the built-in tools; the answer read
// and parsed); "bare" sends the very request our client sends (body and
// headers, captured once) straight to the transport, as our client does,
// to the same kind of server, and discards the answer. The difference is
// the client's own work: building the request and parsing the answer.
func BenchmarkHotProviderCall(b *testing.B) {
	req := &LLMRequest{Model: "gpt-4o-mini", System: systemPrompt, MaxTokens: 4096, Temperature: 0.7,
		Messages: []Message{{Role: "user", Content: "Hello there! Please give me a short, friendly summary of the kinds of questions you are able to help me with."}},
		Tools:    newToolRegistry(time.Now).Specs(),
		Header:   map[string]string{"traceparent": "00-5517db4ab2f757d4fdb8b5454b06d935-4b0e7d8925cde718-01"}}
	b.Run("openai", func(b *testing.B) {
		c := newOpenAIClient(hotUpstream(b).URL+"/v1", "sk-bench", nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Complete(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		var body []byte
		var header http.Header
		capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ = io.ReadAll(r.Body)
			header = r.Header.Clone()
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, hotMockReply)
		}))
		_, err := newOpenAIClient(capture.URL+"/v1", "sk-bench", nil).Complete(context.Background(), req)
		capture.Close()
		if err != nil || len(body) == 0 {
			b.Fatalf("capturing the request: %v (%d bytes)", err, len(body))
		}
		header.Del("Accept-Encoding") // the transport adds it, as for our client
		target := hotUpstream(b).URL + "/v1/chat/completions"
		rt := newLLMHTTPClient(0).Transport
		b.ReportAllocs()
		for b.Loop() {
			r, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			r.Header = header
			resp, err := rt.RoundTrip(r)
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("bare POST = %s, %v", resp.Status, err)
			}
		}
	})
}
