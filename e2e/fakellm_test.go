package e2e

// Scripted fake LLM servers speaking the Anthropic Messages API
// (POST /v1/messages) and the OpenAI Chat Completions API
// (POST /v1/chat/completions) as the providers document them, for the
// tests in providers_test.go. Each call consumes the next scripted reply
// (a JSON answer, an SSE stream, or an error status with the provider's
// error body); every received request is recorded (headers and decoded
// JSON body) for assertions. The official SDKs are pointed at the same
// fakes (TestProvSDK*) so that the fakes are not only our reading of the
// documentation.
//
// Wire formats followed:
//   - Anthropic: https://docs.anthropic.com/en/api/messages (Message object),
//     https://docs.anthropic.com/en/api/messages-streaming (event flow:
//     message_start, per block content_block_start / ping /
//     content_block_delta (text_delta, input_json_delta) /
//     content_block_stop, message_delta with stop_reason and cumulative
//     usage, message_stop; error events), https://docs.anthropic.com/en/api/errors
//     ({"type":"error","error":{"type","message"},"request_id"}; 400
//     invalid_request_error, 401 authentication_error, 403
//     permission_error, 404 not_found_error, 429 rate_limit_error, 500
//     api_error, 529 overloaded_error) and the request-id header.
//   - OpenAI: https://platform.openai.com/docs/api-reference/chat (chat
//     completion object, chunk object: delta.content, delta.tool_calls by
//     index with id/type/name in the first fragment and the arguments
//     string split over later ones, finish_reason, "usage": null on every
//     chunk and a final chunk with empty choices and the usage when
//     stream_options.include_usage is set, then "data: [DONE]"), errors
//     {"error":{"message","type","param","code"}} and x-request-id.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// provAnthModel and provOAIModel are the dated model ids the fakes
	// answer with (the binary prices a dated snapshot by its base id).
	provAnthModel = "claude-sonnet-4-5-20250929"
	provOAIModel  = "gpt-4o-mini-2024-07-18"
	// provHangLimit bounds how long a hanging stream waits for its
	// request to be cancelled.
	provHangLimit = 60 * time.Second
)

// provEnd says how a scripted SSE stream ends after its frames.
type provEnd int

const (
	provEndClean provEnd = iota // the handler returns (a complete stream, or a clean EOF when the end marker is left out)
	provEndAbort                // the connection is torn down (http.ErrAbortHandler)
	provEndHang                 // the handler waits until the request's context is done
)

// provFrame is one Server-Sent Event of a scripted stream. obj, when set,
// is marshalled at serve time (OpenAI chunks get "usage": null added when
// the request asked for usage); otherwise data is sent verbatim.
type provFrame struct {
	event     string // "event:" line; "" for data-only events
	data      string
	obj       map[string]any
	usageOnly bool // OpenAI's final usage chunk: sent only when stream_options.include_usage
}

// provReply is one scripted answer.
type provReply struct {
	status      int               // 0: 200
	header      map[string]string // extra response headers (retry-after…)
	contentType string            // "" : application/json, or text/event-stream for frames
	body        string            // non-stream body
	frames      []provFrame       // non-nil: an SSE stream
	end         provEnd
}

// provRequest is one request the fake received.
type provRequest struct {
	Method string
	Path   string
	Header http.Header
	Raw    []byte
	Body   map[string]any // nil when the body is not a JSON object
}

// provFake is a scripted fake provider on 127.0.0.1.
type provFake struct {
	kind string // "anthropic" or "openai"
	URL  string // server root, e.g. http://127.0.0.1:41234
	srv  *httptest.Server

	mu        sync.Mutex
	script    []provReply
	always    *provReply // served once the script is used up
	reqs      []provRequest
	exhausted int // requests that found neither script nor always

	streamStarted chan struct{} // closed when a hanging stream has sent its frames
	cancelled     chan struct{} // closed when a hanging stream saw its request cancelled
	startOnce     sync.Once
	cancelOnce    sync.Once
	stop          chan struct{} // closed at cleanup: releases hanging handlers
}

// provNewFake starts a fake of kind ("anthropic" or "openai") that serves
// replies in order; it is closed at cleanup.
func provNewFake(t *testing.T, kind string, replies ...provReply) *provFake {
	t.Helper()
	if kind != "anthropic" && kind != "openai" {
		t.Fatalf("provNewFake: unknown kind %q", kind)
	}
	f := &provFake{kind: kind, script: replies, streamStarted: make(chan struct{}),
		cancelled: make(chan struct{}), stop: make(chan struct{})}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Start()
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.stop) }) // runs first: frees hanging handlers
	t.Cleanup(func() {
		if n := f.exhaustedCount(); n > 0 {
			t.Errorf("%s fake: %d request(s) beyond the script", kind, n)
		}
	})
	return f
}

// BaseURL is what llm.base_url / the SDK base URL must be: the root for
// Anthropic (the client adds /v1/messages), root + /v1 for OpenAI.
func (f *provFake) BaseURL() string {
	if f.kind == "openai" {
		return f.URL + "/v1"
	}
	return f.URL
}

// Always makes r the answer to every request after the script.
func (f *provFake) Always(r provReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.always = &r
}

// Requests returns a copy of the requests received so far.
func (f *provFake) Requests() []provRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]provRequest(nil), f.reqs...)
}

func (f *provFake) exhaustedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exhausted
}

func (f *provFake) path() string {
	if f.kind == "openai" {
		return "/v1/chat/completions"
	}
	return "/v1/messages"
}

func (f *provFake) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	rec := provRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	var body map[string]any
	if json.Unmarshal(raw, &body) == nil {
		rec.Body = body
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	var reply provReply
	found := true
	switch {
	case r.Method != http.MethodPost || r.URL.Path != f.path():
		reply = f.errorReply(http.StatusNotFound, "not_found_error", "not_found", "unknown route "+r.Method+" "+r.URL.Path)
	case len(f.script) > 0:
		reply, f.script = f.script[0], f.script[1:]
	case f.always != nil:
		reply = *f.always
	default:
		found = false
		f.exhausted++
	}
	f.mu.Unlock()
	if !found {
		reply = f.errorReply(http.StatusInternalServerError, "api_error", "server_error", "fake: script exhausted")
	}
	f.write(w, r, rec, reply)
}

// errorReply is a provider-shaped error answer.
func (f *provFake) errorReply(status int, typ, code, msg string) provReply {
	if f.kind == "openai" {
		return provOAIError(status, typ, code, msg, "")
	}
	return provAnthError(status, typ, msg, "")
}

func (f *provFake) write(w http.ResponseWriter, r *http.Request, rec provRequest, reply provReply) {
	h := w.Header()
	if f.kind == "openai" {
		h.Set("X-Request-Id", "req_e2e_openai")
	} else {
		h.Set("Request-Id", "req_e2e_anthropic")
	}
	for k, v := range reply.header {
		h.Set(k, v)
	}
	status := reply.status
	if status == 0 {
		status = http.StatusOK
	}
	if reply.frames == nil {
		ct := reply.contentType
		if ct == "" {
			ct = "application/json"
		}
		h.Set("Content-Type", ct)
		w.WriteHeader(status)
		io.WriteString(w, reply.body)
		return
	}
	ct := reply.contentType
	if ct == "" {
		ct = "text/event-stream; charset=utf-8"
	}
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	flusher, _ := w.(http.Flusher)
	includeUsage := provBool(rec.Body, "stream_options", "include_usage")
	for _, fr := range reply.frames {
		if fr.usageOnly && !includeUsage {
			continue
		}
		data := fr.data
		if fr.obj != nil {
			obj := fr.obj
			if includeUsage && f.kind == "openai" {
				if _, ok := obj["usage"]; !ok {
					obj = provWith(obj, "usage", nil)
				}
			}
			data = provJSON(obj)
		}
		if fr.event != "" {
			fmt.Fprintf(w, "event: %s\n", fr.event)
		}
		fmt.Fprintf(w, "data: %s\n\n", data)
		if flusher != nil {
			flusher.Flush()
		}
	}
	switch reply.end {
	case provEndAbort:
		panic(http.ErrAbortHandler)
	case provEndHang:
		f.startOnce.Do(func() { close(f.streamStarted) })
		timer := time.NewTimer(provHangLimit)
		defer timer.Stop()
		select {
		case <-r.Context().Done():
			f.cancelOnce.Do(func() { close(f.cancelled) })
		case <-f.stop:
		case <-timer.C:
		}
	}
}

// provBool reads a nested boolean of a decoded JSON object.
func provBool(m map[string]any, keys ...string) bool {
	var v any = m
	for _, k := range keys {
		o, ok := v.(map[string]any)
		if !ok {
			return false
		}
		v = o[k]
	}
	b, _ := v.(bool)
	return b
}

// provWith returns a copy of m with k set to v.
func provWith(m map[string]any, k string, v any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for mk, mv := range m {
		c[mk] = mv
	}
	c[k] = v
	return c
}

func provJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// provTool is a tool call a scripted answer makes; args is the JSON
// arguments object split into the pieces a stream sends.
type provTool struct {
	id, name string
	args     []string
}

func (t *provTool) input() string { return strings.Join(t.args, "") }

// ---- Anthropic ----

// provAnthMessage is a Messages API Message object.
func provAnthMessage(id string, content []any, stop string, in, out int) map[string]any {
	var sr any
	if stop != "" {
		sr = stop
	}
	return map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": provAnthModel,
		"content": content, "stop_reason": sr, "stop_sequence": nil,
		"usage": map[string]any{
			"input_tokens": in, "output_tokens": out,
			"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
			"service_tier": "standard",
		},
	}
}

// provAnthReply is a complete (non-streamed) answer: optional text, then an
// optional tool_use block.
func provAnthReply(text string, tool *provTool, in, out int) provReply {
	content := []any{}
	if text != "" {
		content = append(content, map[string]any{"type": "text", "text": text})
	}
	stop := "end_turn"
	if tool != nil {
		content = append(content, map[string]any{"type": "tool_use", "id": tool.id, "name": tool.name,
			"input": json.RawMessage(tool.input())})
		stop = "tool_use"
	}
	return provReply{body: provJSON(provAnthMessage("msg_e2e_complete", content, stop, in, out))}
}

// provAnthFrames is the documented event flow of a streamed answer: text
// (in pieces) in block 0, then an optional tool_use block whose input
// arrives as input_json_delta pieces. in is reported in message_start,
// the cumulative out in message_delta.
func provAnthFrames(text []string, tool *provTool, in, out int) []provFrame {
	ev := func(name string, obj map[string]any) provFrame { return provFrame{event: name, data: provJSON(obj)} }
	start := provAnthMessage("msg_e2e_stream", []any{}, "", in, 1)
	frames := []provFrame{ev("message_start", map[string]any{"type": "message_start", "message": start})}
	idx := 0
	if len(text) > 0 {
		frames = append(frames,
			ev("content_block_start", map[string]any{"type": "content_block_start", "index": idx,
				"content_block": map[string]any{"type": "text", "text": ""}}),
			provFrame{event: "ping", data: `{"type": "ping"}`})
		for _, p := range text {
			frames = append(frames, ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx,
				"delta": map[string]any{"type": "text_delta", "text": p}}))
		}
		frames = append(frames, ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx}))
		idx++
	}
	stop := "end_turn"
	if tool != nil {
		stop = "tool_use"
		frames = append(frames, ev("content_block_start", map[string]any{"type": "content_block_start", "index": idx,
			"content_block": map[string]any{"type": "tool_use", "id": tool.id, "name": tool.name, "input": map[string]any{}}}))
		for _, p := range append([]string{""}, tool.args...) {
			frames = append(frames, ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx,
				"delta": map[string]any{"type": "input_json_delta", "partial_json": p}}))
		}
		frames = append(frames, ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx}))
	}
	frames = append(frames,
		ev("message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
			"usage": map[string]any{"output_tokens": out}}),
		ev("message_stop", map[string]any{"type": "message_stop"}))
	return frames
}

// provAnthStream is a streamed answer (provAnthFrames).
func provAnthStream(text []string, tool *provTool, in, out int) provReply {
	return provReply{frames: provAnthFrames(text, tool, in, out)}
}

// provAnthError is an error answer; retryAfter "" sends no retry-after.
func provAnthError(status int, typ, msg, retryAfter string) provReply {
	r := provReply{status: status, body: provJSON(map[string]any{"type": "error",
		"error": map[string]any{"type": typ, "message": msg}, "request_id": "req_e2e_error"})}
	if retryAfter != "" {
		r.header = map[string]string{"Retry-After": retryAfter}
	}
	return r
}

// provAnthErrorEvent is the error event a stream may carry after it started.
func provAnthErrorEvent(typ, msg string) provFrame {
	return provFrame{event: "error", data: provJSON(map[string]any{"type": "error",
		"error": map[string]any{"type": typ, "message": msg}})}
}

// ---- OpenAI ----

// provOAIUsage is a usage object.
func provOAIUsage(in, out int) map[string]any {
	return map[string]any{
		"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out,
		"prompt_tokens_details":     map[string]any{"cached_tokens": 0, "audio_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
	}
}

// provOAIReply is a complete chat completion: content (nil when the model
// only calls the tool) and an optional tool call.
func provOAIReply(text string, tool *provTool, in, out int) provReply {
	msg := map[string]any{"role": "assistant", "content": nil, "refusal": nil, "annotations": []any{}}
	if text != "" {
		msg["content"] = text
	}
	finish := "stop"
	if tool != nil {
		finish = "tool_calls"
		msg["tool_calls"] = []any{map[string]any{"id": tool.id, "type": "function",
			"function": map[string]any{"name": tool.name, "arguments": tool.input()}}}
	}
	return provReply{body: provJSON(map[string]any{
		"id": "chatcmpl-e2e", "object": "chat.completion", "created": 1730000000, "model": provOAIModel,
		"system_fingerprint": "fp_e2e", "service_tier": "default",
		"choices": []any{map[string]any{"index": 0, "message": msg, "logprobs": nil, "finish_reason": finish}},
		"usage":   provOAIUsage(in, out),
	})}
}

// provOAIChunk is one chat.completion.chunk with choice 0's delta.
func provOAIChunk(delta map[string]any, finish any) map[string]any {
	return map[string]any{
		"id": "chatcmpl-e2e-stream", "object": "chat.completion.chunk", "created": 1730000000,
		"model": provOAIModel, "system_fingerprint": "fp_e2e", "service_tier": "default",
		"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
	}
}

// provOAIFrames is a streamed answer: a first chunk with the role, text
// pieces, an optional tool call (id, type and name in its first fragment,
// the arguments string split over the next ones), the finish_reason
// chunk, the usage chunk (only when asked for), and [DONE].
func provOAIFrames(text []string, tool *provTool, in, out int) []provFrame {
	first := map[string]any{"role": "assistant", "content": "", "refusal": nil}
	frames := []provFrame{{obj: provOAIChunk(first, nil)}}
	for _, p := range text {
		frames = append(frames, provFrame{obj: provOAIChunk(map[string]any{"content": p}, nil)})
	}
	finish := "stop"
	if tool != nil {
		finish = "tool_calls"
		call := []any{map[string]any{"index": 0, "id": tool.id, "type": "function",
			"function": map[string]any{"name": tool.name, "arguments": ""}}}
		if len(text) == 0 {
			// A tool-only answer starts with the role, a null content and
			// the call's first fragment in one chunk.
			first["content"] = nil
			first["tool_calls"] = call
		} else {
			frames = append(frames, provFrame{obj: provOAIChunk(map[string]any{"tool_calls": call}, nil)})
		}
		for _, p := range tool.args {
			frames = append(frames, provFrame{obj: provOAIChunk(map[string]any{"tool_calls": []any{map[string]any{
				"index": 0, "function": map[string]any{"arguments": p}}}}, nil)})
		}
	}
	frames = append(frames, provFrame{obj: provOAIChunk(map[string]any{}, finish)})
	usage := map[string]any{"id": "chatcmpl-e2e-stream", "object": "chat.completion.chunk", "created": 1730000000,
		"model": provOAIModel, "system_fingerprint": "fp_e2e", "service_tier": "default",
		"choices": []any{}, "usage": provOAIUsage(in, out)}
	frames = append(frames, provFrame{obj: usage, usageOnly: true}, provFrame{data: "[DONE]"})
	return frames
}

// provOAIStream is a streamed answer (provOAIFrames).
func provOAIStream(text []string, tool *provTool, in, out int) provReply {
	return provReply{frames: provOAIFrames(text, tool, in, out)}
}

// provOAIError is an error answer; code "" is sent as null.
func provOAIError(status int, typ, code, msg, retryAfter string) provReply {
	var c any
	if code != "" {
		c = code
	}
	r := provReply{status: status, body: provJSON(map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": nil, "code": c}})}
	if retryAfter != "" {
		r.header = map[string]string{"Retry-After": retryAfter}
	}
	return r
}

// ---- provider-neutral helpers for the tests ----

// provCalcTool is the calculator call every tool scenario makes.
func provCalcTool(id string) *provTool {
	return &provTool{id: id, name: "calculator", args: []string{`{"expres`, `sion": "1`, `2*7"}`}}
}

// provText is a complete or streamed text answer of kind.
func provText(kind string, stream bool, text []string, in, out int) provReply {
	return provAnswer(kind, stream, text, nil, in, out)
}

// provAnswer is a complete or streamed answer of kind with optional text
// and tool call.
func provAnswer(kind string, stream bool, text []string, tool *provTool, in, out int) provReply {
	switch {
	case kind == "anthropic" && stream:
		return provAnthStream(text, tool, in, out)
	case kind == "anthropic":
		return provAnthReply(strings.Join(text, ""), tool, in, out)
	case stream:
		return provOAIStream(text, tool, in, out)
	default:
		return provOAIReply(strings.Join(text, ""), tool, in, out)
	}
}
