package e2e

// A fault-injecting fake LLM provider for the reliability suite
// (reliability_test.go). It speaks both wire formats the binary uses —
// Anthropic POST /v1/messages and OpenAI POST /v1/chat/completions, with
// and without streaming — and picks its behaviour per request from
// directives the test writes into the user's message, so that one agent
// can be driven through every fault in turn:
//
//	rel-fault:NAME   what to do (table below); default "ok"
//	rel-key:K        groups the attempts of one logical request (retries)
//	rel-failn:N      apply the fault to the first N attempts of rel-key K,
//	                 then answer normally (0: always the fault)
//	rel-delay:MS     wait MS milliseconds before a normal answer
//
// The directives are read from the raw request body (the last occurrence
// wins), so they survive both wire formats unchanged.
//
// Faults: "ok"; status answers "400", "429", "429ra" (retry-after: 1),
// "429ra30" (retry-after: 30), "500", "502", "503", "529" with the
// provider's error body; "hang" (no answer until the request is
// cancelled); "reset" (TCP RST, no answer); "garbage" (200
// application/json that is not JSON); "ctype" (a valid answer as
// text/html); "half" (Content-Length announced, half the body, then the
// connection is torn down); "empty" (200 with no body); "big" (a 9 MiB
// JSON answer, over the client's 8 MiB bound); "slowok" (a valid answer
// trickled over ~1 s); "slowlate" (a valid answer trickled over ~10 s,
// past any short llm.timeout_seconds); and, for streams, "cut" (text
// deltas, then the connection is torn down), "cutclean" (text deltas,
// then a clean EOF without the end marker), "streamhang" (text deltas,
// then silence), "streamerr" (text deltas, then the provider's in-stream
// error event), "flood" (32 KiB text deltas without end, up to 256 MiB).
// A stream request with a non-stream fault gets that fault; the stream
// faults on a non-stream request behave like "half".

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	relAnthModel = "claude-sonnet-4-5-20250929"
	relOAIModel  = "gpt-4o-mini-2024-07-18"
	// relHangLimit bounds every wait of the fake, so that a hanging
	// handler never outlives a test even if the agent never cancels.
	relHangLimit = 60 * time.Second
	// relText is the answer of a normal reply.
	relText = "rel ok, all good"
)

var (
	relFaultRe = regexp.MustCompile(`rel-fault:([a-z0-9]+)`)
	relKeyRe   = regexp.MustCompile(`rel-key:([A-Za-z0-9_-]+)`)
	relFailNRe = regexp.MustCompile(`rel-failn:([0-9]+)`)
	relDelayRe = regexp.MustCompile(`rel-delay:([0-9]+)`)
)

// relFake is the fault-injecting provider on 127.0.0.1. Keep-alives are
// off: every answer closes its connection, so the agent holds no idle
// upstream connections (and their goroutines) between scenarios and the
// goroutine baseline stays comparable.
type relFake struct {
	kind string // "anthropic" or "openai"
	URL  string
	srv  *httptest.Server
	stop chan struct{} // closed at cleanup: frees every waiting handler

	total    atomic.Int64 // requests received
	inflight atomic.Int64 // requests being answered
	peak     atomic.Int64 // highest inflight seen

	mu       sync.Mutex
	attempts map[string]int // rel-key → attempts seen
}

// relNewFake starts a fake of kind; it is closed at cleanup.
func relNewFake(t testing.TB, kind string) *relFake {
	t.Helper()
	if kind != "anthropic" && kind != "openai" {
		t.Fatalf("relNewFake: unknown kind %q", kind)
	}
	f := &relFake{kind: kind, stop: make(chan struct{}), attempts: map[string]int{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.SetKeepAlivesEnabled(false)
	// Deliberately broken answers make net/http log; they are intended.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.Start()
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.stop) }) // runs first
	return f
}

// BaseURL is llm.base_url for this fake (OpenAI's includes /v1).
func (f *relFake) BaseURL() string {
	if f.kind == "openai" {
		return f.URL + "/v1"
	}
	return f.URL
}

// Attempts is how many requests carried rel-key:key.
func (f *relFake) Attempts(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[key]
}

func (f *relFake) path() string {
	if f.kind == "openai" {
		return "/v1/chat/completions"
	}
	return "/v1/messages"
}

// relLast returns the last submatch of re in b, or "".
func relLast(re *regexp.Regexp, b []byte) string {
	all := re.FindAllSubmatch(b, -1)
	if len(all) == 0 {
		return ""
	}
	return string(all[len(all)-1][1])
}

func (f *relFake) serve(w http.ResponseWriter, r *http.Request) {
	f.total.Add(1)
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if r.Method != http.MethodPost || r.URL.Path != f.path() {
		f.writeError(w, http.StatusNotFound, nil)
		return
	}
	var req struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(raw, &req)
	fault := relLast(relFaultRe, raw)
	if key := relLast(relKeyRe, raw); key != "" {
		f.mu.Lock()
		f.attempts[key]++
		attempt := f.attempts[key]
		f.mu.Unlock()
		if n, err := strconv.Atoi(relLast(relFailNRe, raw)); err == nil && n > 0 && attempt > n {
			fault = "ok"
		}
	}
	if ms, err := strconv.Atoi(relLast(relDelayRe, raw)); err == nil && ms > 0 && (fault == "" || fault == "ok") {
		if !f.wait(r, time.Duration(ms)*time.Millisecond) {
			return
		}
	}
	f.fault(w, r, fault, req.Stream)
}

// wait waits d, or until the request is cancelled or the fake stops; it
// reports whether the full d passed.
func (f *relFake) wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(min(d, relHangLimit))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-f.stop:
	}
	return false
}

func (f *relFake) fault(w http.ResponseWriter, r *http.Request, fault string, stream bool) {
	switch fault {
	case "", "ok":
		if stream {
			f.writeStream(w, r, "")
		} else {
			f.writeJSON(w, "application/json", f.answer())
		}
	case "400", "429", "500", "502", "503", "529":
		code, _ := strconv.Atoi(fault)
		f.writeError(w, code, nil)
	case "429ra":
		f.writeError(w, 429, map[string]string{"Retry-After": "1"})
	case "429ra30":
		f.writeError(w, 429, map[string]string{"Retry-After": "30"})
	case "hang":
		f.wait(r, relHangLimit)
	case "reset":
		f.reset(w)
	case "garbage":
		f.writeJSON(w, "application/json", "<html>\x00\xff not json {{{")
	case "ctype":
		f.writeJSON(w, "text/html; charset=utf-8", f.answer())
	case "empty":
		f.writeJSON(w, "application/json", "")
	case "big":
		// A valid JSON object over the client's 8 MiB bound.
		pad := strings.Repeat("x", 9<<20)
		f.writeJSON(w, "application/json", `{"pad":"`+pad+`"}`)
	case "slowok":
		f.trickle(w, r, "application/json", f.answer(), 10, 100*time.Millisecond)
	case "slowlate":
		f.trickle(w, r, "application/json", f.answer(), 10, time.Second)
	case "flood":
		if !stream {
			f.half(w)
			return
		}
		f.flood(w, r)
	case "half", "cut", "cutclean", "streamhang", "streamerr":
		if !stream {
			f.half(w)
			return
		}
		f.writeStream(w, r, fault)
	default:
		f.writeError(w, http.StatusBadRequest, nil)
	}
}

// answer is a complete non-streamed reply.
func (f *relFake) answer() string {
	if f.kind == "openai" {
		return relJSON(map[string]any{
			"id": "chatcmpl-rel", "object": "chat.completion", "created": 1700000000, "model": relOAIModel,
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": relText, "refusal": nil},
				"logprobs": nil, "finish_reason": "stop"}},
			"usage": map[string]any{"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
		})
	}
	return relJSON(map[string]any{
		"id": "msg_rel", "type": "message", "role": "assistant", "model": relAnthModel,
		"content": []any{map[string]any{"type": "text", "text": relText}}, "stop_reason": "end_turn",
		"stop_sequence": nil, "usage": map[string]any{"input_tokens": 12, "output_tokens": 5},
	})
}

// writeJSON answers 200 with body as contentType.
func (f *relFake) writeJSON(w http.ResponseWriter, contentType, body string) {
	f.requestID(w)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, body)
}

func (f *relFake) requestID(w http.ResponseWriter) {
	if f.kind == "openai" {
		w.Header().Set("X-Request-Id", "req_rel")
	} else {
		w.Header().Set("Request-Id", "req_rel")
	}
}

// writeError answers status with the provider's error body.
func (f *relFake) writeError(w http.ResponseWriter, status int, header map[string]string) {
	f.requestID(w)
	for k, v := range header {
		w.Header().Set(k, v)
	}
	var body string
	if f.kind == "openai" {
		typ := "server_error"
		switch {
		case status == 429:
			typ = "rate_limit_exceeded"
		case status < 500:
			typ = "invalid_request_error"
		}
		body = relJSON(map[string]any{"error": map[string]any{"message": "fake failure " + strconv.Itoa(status), "type": typ, "param": nil, "code": nil}})
	} else {
		typ := "api_error"
		switch {
		case status == 529:
			typ = "overloaded_error"
		case status == 429:
			typ = "rate_limit_error"
		case status == 404:
			typ = "not_found_error"
		case status < 500:
			typ = "invalid_request_error"
		}
		body = relJSON(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": "fake failure " + strconv.Itoa(status)}, "request_id": "req_rel"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// reset tears the connection down with a TCP RST and no answer.
func (f *relFake) reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // close sends RST instead of FIN
	}
	conn.Close()
}

// half announces the whole answer's length, sends half of it, and tears
// the connection down.
func (f *relFake) half(w http.ResponseWriter) {
	body := f.answer()
	f.requestID(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, body[:len(body)/2])
	http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// trickle sends body in n pieces, one every gap; it stops early when the
// request is cancelled.
func (f *relFake) trickle(w http.ResponseWriter, r *http.Request, contentType, body string, n int, gap time.Duration) {
	f.requestID(w)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	step := (len(body) + n - 1) / n
	for i := 0; i < len(body); i += step {
		if i > 0 && !f.wait(r, gap) {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, body[i:min(i+step, len(body))])
		if rc.Flush() != nil {
			return
		}
	}
}

// writeStream sends a streamed answer; end is "" for a complete stream
// or one of the stream faults.
func (f *relFake) writeStream(w http.ResponseWriter, r *http.Request, end string) {
	f.requestID(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(event string, v any) {
		if event != "" {
			fmt.Fprintf(w, "event: %s\n", event)
		}
		if s, ok := v.(string); ok {
			fmt.Fprintf(w, "data: %s\n\n", s)
		} else {
			fmt.Fprintf(w, "data: %s\n\n", relJSON(v))
		}
		rc.Flush()
	}
	words := relStreamWords()
	cutAt := len(words) * 3 / 4 // past the agent's redaction hold-back (128 bytes)
	if f.kind == "openai" {
		chunk := func(delta map[string]any, finish any) map[string]any {
			return map[string]any{"id": "chatcmpl-rel", "object": "chat.completion.chunk", "created": 1700000000, "model": relOAIModel,
				"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}, "usage": nil}
		}
		send("", chunk(map[string]any{"role": "assistant", "content": ""}, nil))
		for i, wd := range words {
			if end != "" && i == cutAt {
				break
			}
			send("", chunk(map[string]any{"content": wd}, nil))
		}
		if end == "" {
			send("", chunk(map[string]any{}, "stop"))
			send("", map[string]any{"id": "chatcmpl-rel", "object": "chat.completion.chunk", "created": 1700000000, "model": relOAIModel,
				"choices": []any{}, "usage": map[string]any{"prompt_tokens": 12, "completion_tokens": len(words), "total_tokens": 12 + len(words)}})
			send("", "[DONE]")
			return
		}
		if end == "streamerr" {
			send("", map[string]any{"error": map[string]any{"message": "fake overload mid-stream", "type": "server_error", "param": nil, "code": nil}})
			return
		}
	} else {
		send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": "msg_rel", "type": "message", "role": "assistant", "model": relAnthModel, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 12, "output_tokens": 1}}})
		send("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
		send("ping", map[string]any{"type": "ping"})
		for i, wd := range words {
			if end != "" && i == cutAt {
				break
			}
			send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": wd}})
		}
		if end == "" {
			send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
			send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil},
				"usage": map[string]any{"output_tokens": len(words)}})
			send("message_stop", map[string]any{"type": "message_stop"})
			return
		}
		if end == "streamerr" {
			send("error", map[string]any{"type": "error", "error": map[string]any{"type": "overloaded_error", "message": "fake overload mid-stream"}})
			return
		}
	}
	switch end {
	case "cut":
		panic(http.ErrAbortHandler)
	case "streamhang":
		f.wait(r, relHangLimit)
	}
	// "cutclean": return without the end marker.
}

// relFloodLimit bounds what "flood" sends: far more text than any answer
// (max_tokens 4096 is some 16 KiB), sent as fast as the agent reads it.
const relFloodLimit = 256 << 20

// flood streams 32 KiB text deltas without end until relFloodLimit bytes
// are sent or the request ends: a runaway upstream.
func (f *relFake) flood(w http.ResponseWriter, r *http.Request) {
	f.requestID(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	chunk := strings.Repeat("flood ", 32<<10/6)
	var ev string
	if f.kind == "openai" {
		ev = "data: " + relJSON(map[string]any{"id": "chatcmpl-rel", "object": "chat.completion.chunk", "created": 1, "model": relOAIModel,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": chunk}, "finish_reason": nil}}}) + "\n\n"
	} else {
		io.WriteString(w, "event: message_start\ndata: "+relJSON(map[string]any{"type": "message_start", "message": map[string]any{
			"id": "msg_rel", "type": "message", "role": "assistant", "model": relAnthModel, "content": []any{},
			"usage": map[string]any{"input_tokens": 12, "output_tokens": 1}}})+"\n\n")
		io.WriteString(w, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
		ev = "event: content_block_delta\ndata: " + relJSON(map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": chunk}}) + "\n\n"
	}
	for sent := 0; sent < relFloodLimit; sent += len(ev) {
		if r.Context().Err() != nil {
			return
		}
		select {
		case <-f.stop:
			return
		default:
		}
		if _, err := io.WriteString(w, ev); err != nil {
			return
		}
	}
}

// relStreamWords are the deltas of a streamed answer: long enough (over
// 300 bytes) that the agent's secret redactor, which holds back the last
// 64–128 bytes, releases text before a cut three quarters in.
func relStreamWords() []string {
	w := make([]string, 40)
	for i := range w {
		w[i] = fmt.Sprintf("word%02d ", i)
	}
	return w
}

// relStreamText is the whole text of a complete streamed answer.
var relStreamText = strings.Join(relStreamWords(), "")

func relJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
