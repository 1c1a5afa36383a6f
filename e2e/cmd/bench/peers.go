package main

// The harness's own servers, each run in its own process (-role):
//
//   - mock: an OpenAI-compatible upstream. POST /v1/chat/completions
//     answers a fixed chat completion at once; POST
//     /lat/{ms}/v1/chat/completions answers it after ms milliseconds, so one
//     mock serves every scenario (the agent's llm.base_url or the client's
//     path picks the latency).
//   - baseline: a bare net/http server that decodes a /chat body and
//     answers a fixed JSON reply of the agent's shape: what any Go service
//     must spend to take a request.
//   - proxy: a bare httputil.ReverseProxy in front of the mock, the
//     physical limit of one extra hop.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mockReply is the mock's answer: a plain assistant message, no tools.
const mockReply = `{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,` +
	`"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant",` +
	`"content":"Hello! I am the benchmark's mock model. Ask me anything and I will answer at once."},` +
	`"finish_reason":"stop"}],"usage":{"prompt_tokens":120,"completion_tokens":20,"total_tokens":140}}`

// openAIBody is what the harness posts to the mock and the proxy directly:
// a Chat Completions request of the size the agent sends (system prompt,
// one user message, two tool definitions).
func openAIBody(message string) []byte {
	tool := func(name, desc string) map[string]any {
		return map[string]any{"type": "function", "function": map[string]any{
			"name": name, "description": desc,
			"parameters": map[string]any{"type": "object", "properties": map[string]any{
				"expression": map[string]string{"type": "string", "description": "the expression to evaluate"}}},
		}}
	}
	b, _ := json.Marshal(map[string]any{
		"model": "gpt-4o-mini", "temperature": 0.7, "max_completion_tokens": 4096,
		"messages": []map[string]string{
			{"role": "system", "content": strings.Repeat("You are a helpful assistant. Use the tools when they help. ", 6)},
			{"role": "user", "content": message},
		},
		"tools": []any{
			tool("calculator", "Evaluate an arithmetic expression and return the result."),
			tool("current_time", "Return the current date and time in a time zone."),
		},
	})
	return b
}

// runRole serves one peer until SIGTERM/SIGINT, after printing
// "listening ADDR" on stdout.
func runRole(role, upstream string, stdout io.Writer) error {
	var h http.Handler
	switch role {
	case "mock":
		h = mockHandler()
	case "baseline":
		h = baselineHandler()
	case "proxy":
		u, err := url.Parse(upstream)
		if err != nil || u.Host == "" {
			return fmt.Errorf("proxy: -upstream %q is not a URL", upstream)
		}
		h = proxyHandler(u)
	default:
		return fmt.Errorf("unknown -role %q (mock, baseline, proxy)", role)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: h,
		// The same slow-client bounds any production server would set.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// No drain: the harness stops a peer only after its load has ended,
	// and Shutdown would wait 5 s for connections the client dialled
	// but never used.
	return srv.Close()
}

// mockHandler is the OpenAI-compatible upstream (see the file comment).
func mockHandler() http.Handler {
	reply := []byte(mockReply)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		var delay time.Duration
		if rest, ok := strings.CutPrefix(p, "/lat/"); ok {
			ms, tail, _ := strings.Cut(rest, "/")
			n, err := strconv.Atoi(ms)
			if err != nil || n < 0 {
				http.Error(w, `{"error":{"message":"bad latency","type":"invalid_request_error"}}`, http.StatusNotFound)
				return
			}
			delay, p = time.Duration(n)*time.Millisecond, "/"+tail
		}
		if r.Method != http.MethodPost || p != "/v1/chat/completions" {
			http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
			return
		}
		if n, err := io.Copy(io.Discard, r.Body); err != nil || n == 0 {
			http.Error(w, `{"error":{"message":"empty body","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Request-Id", "req_bench")
		h.Set("Content-Length", strconv.Itoa(len(reply)))
		w.Write(reply)
	})
}

// baselineRequest is the /chat body the baseline accepts.
type baselineRequest struct {
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	Message   string `json:"message"`
	SourceIP  string `json:"source_ip"`
	Stream    bool   `json:"stream"`
}

// baselineReply has the fields of the agent's 200 answer.
type baselineReply struct {
	Message        string         `json:"message"`
	ConversationID string         `json:"conversation_id"`
	SessionID      string         `json:"session_id"`
	StopReason     string         `json:"stop_reason"`
	ToolCalls      []any          `json:"tool_calls"`
	Usage          map[string]int `json:"usage"`
	CostUSD        float64        `json:"cost_usd"`
	TraceID        string         `json:"trace_id"`
}

// baselineHandler decodes and checks a /chat body the way any JSON API
// would (size limit, unknown fields refused, required fields) and answers.
func baselineHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /chat", func(w http.ResponseWriter, r *http.Request) {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		var req baselineRequest
		if err := dec.Decode(&req); err != nil || req.UserID == "" || req.SessionID == "" || req.Message == "" {
			http.Error(w, `{"error":{"type":"invalid_request","message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		b, err := json.Marshal(baselineReply{
			Message: "Hello! I am the baseline. Ask me anything and I will answer at once.", ConversationID: "00000000-0000-4000-8000-000000000000",
			SessionID: req.SessionID, StopReason: "end_turn", ToolCalls: []any{},
			Usage: map[string]int{"input_tokens": 120, "output_tokens": 20}, TraceID: "00000000000000000000000000000000",
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
		w.Write(append(b, '\n'))
	})
	return mux
}

// proxyHandler is httputil.ReverseProxy to upstream with nothing added but
// a connection pool as large as the agent's LLM client would want, so that
// neither side of the comparison churns connections.
func proxyHandler(upstream *url.URL) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 4096
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(upstream) },
		Transport: tr,
		ErrorLog:  log.New(os.Stderr, "proxy: ", 0),
	}
}
