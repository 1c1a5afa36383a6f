package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// oaiFake starts a fake OpenAI-compatible server on 127.0.0.1 whose
// POST /v1/chat/completions is answered by h (any other route is 404), and
// returns a client for base URL {server}/v1/ using key sseTestKey. The
// server closes when the test ends.
func oaiFake(t testing.TB, h http.HandlerFunc) (*OpenAIClient, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return newOpenAIClient(srv.URL+"/v1/", sseTestKey, srv.Client()), srv
}

// oaiReplyJSON writes a 200 application/json answer with the given body.
func oaiReplyJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-request-id", "req_ok")
	io.WriteString(w, body)
}

// oaiReplyError writes an OpenAI error answer:
// {"error":{"message":msg,"type":typ,"param":null,"code":null}}.
func oaiReplyError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
	w.Write(b)
}

// oaiTextCompletion is a complete chat.completion with one text choice.
func oaiTextCompletion(text string, promptTokens, completionTokens int) string {
	t, _ := json.Marshal(text)
	return fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-2024-08-06",
"choices":[{"index":0,"message":{"role":"assistant","content":%s,"refusal":null},"logprobs":null,"finish_reason":"stop"}],
"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, t, promptTokens, completionTokens, promptTokens+completionTokens)
}

// oaiToolCallCompletion is a complete chat.completion asking for one tool
// call; argsJSON is the arguments value as the model produced it (a string
// holding JSON).
func oaiToolCallCompletion(id, name, args string) string {
	a, _ := json.Marshal(args)
	return fmt.Sprintf(`{"id":"chatcmpl-2","object":"chat.completion","created":1700000000,"model":"gpt-4o-2024-08-06",
"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
{"id":%q,"type":"function","function":{"name":%q,"arguments":%s}}]},"finish_reason":"tool_calls"}],
"usage":{"prompt_tokens":40,"completion_tokens":15,"total_tokens":55}}`, id, name, a)
}

// oaiReplySSE writes a 200 text/event-stream answer, one "data: …" event
// per chunk (pass "[DONE]" as the last chunk for a complete stream),
// flushing after each.
func oaiReplySSE(w http.ResponseWriter, chunks ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("x-request-id", "req_stream")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	for _, c := range chunks {
		io.WriteString(w, "data: "+c+"\n\n")
		if f != nil {
			f.Flush()
		}
	}
}

// oaiChunk formats a chat.completion.chunk with one choice whose delta and
// finish_reason (JSON, e.g. `null` or `"stop"`) are given.
func oaiChunk(delta, finish string) string {
	return `{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + finish + `}],"usage":null}`
}

// oaiFullStream is a documented stream: text, two tool calls whose
// fragments interleave by index (id and name in the first fragment of each,
// arguments in pieces), finish_reason, the usage chunk with empty choices,
// and [DONE].
func oaiFullStream() []string {
	return []string{
		oaiChunk(`{"role":"assistant","content":""}`, "null"),
		oaiChunk(`{"content":"Working"}`, "null"),
		oaiChunk(`{"content":" on it."}`, "null"),
		oaiChunk(`{"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"calculator","arguments":""}}]}`, "null"),
		oaiChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"expr"}}]}`, "null"),
		oaiChunk(`{"tool_calls":[{"index":1,"id":"call_B","type":"function","function":{"name":"current_time","arguments":"{}"}}]}`, "null"),
		oaiChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"ession\": \"3*3\"}"}}]}`, "null"),
		oaiChunk(`{}`, `"tool_calls"`),
		`{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],` +
			`"usage":{"prompt_tokens":120,"completion_tokens":33,"total_tokens":153,"prompt_tokens_details":{"cached_tokens":100}}}`,
		"[DONE]",
	}
}

func TestOpenAISendsDocumentedRequest(t *testing.T) {
	var gotHeader http.Header
	var gotBody map[string]any
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		gotHeader, gotBody = r.Header.Clone(), sseDecodeBody(t, r)
		oaiReplyJSON(w, oaiTextCompletion("ok", 1, 1))
	})
	req := &LLMRequest{
		Model:       "gpt-4o",
		System:      "You are terse.",
		MaxTokens:   256,
		Temperature: 0.5,
		Header:      map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		Tools: []ToolSpec{
			{Name: "calculator", Description: "Evaluates arithmetic.", InputSchema: json.RawMessage(`{"type":"object","properties":{"expression":{"type":"string"}}}`)},
			{Name: "current_time", Description: "Now."},
		},
		Messages: []Message{
			{Role: "user", Content: "2+2 and time?"},
			{Role: "assistant", Content: "Checking.", ToolCalls: []ToolCall{
				{ID: "call_1", Name: "calculator", Input: json.RawMessage(`{"expression":"2+2"}`)},
				{ID: "call_2", Name: "current_time"},
			}},
			{Role: "tool", ToolCallID: "call_1", Content: "4"},
			{Role: "tool", ToolCallID: "call_2", Content: "clock broken", IsError: true},
			{Role: "assistant", ToolCalls: []ToolCall{{ID: "call_3", Name: "current_time", Input: json.RawMessage(`{}`)}}},
		},
	}
	if _, err := c.Complete(context.Background(), req); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer " + sseTestKey,
		"Content-Type":  "application/json",
		"User-Agent":    "production-agent",
		"Traceparent":   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	} {
		if got := gotHeader.Get(k); got != want {
			t.Errorf("header %s = %q; want %q", k, got, want)
		}
	}
	sseJSONEqual(t, "body", gotBody, `{
		"model": "gpt-4o", "temperature": 0.5, "max_tokens": 256,
		"tools": [
			{"type": "function", "function": {"name": "calculator", "description": "Evaluates arithmetic.",
				"parameters": {"type":"object","properties":{"expression":{"type":"string"}}}}},
			{"type": "function", "function": {"name": "current_time", "description": "Now.",
				"parameters": {"type":"object","properties":{}}}}],
		"messages": [
			{"role": "system", "content": "You are terse."},
			{"role": "user", "content": "2+2 and time?"},
			{"role": "assistant", "content": "Checking.", "tool_calls": [
				{"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\":\"2+2\"}"}},
				{"id": "call_2", "type": "function", "function": {"name": "current_time", "arguments": "{}"}}]},
			{"role": "tool", "tool_call_id": "call_1", "content": "4"},
			{"role": "tool", "tool_call_id": "call_2", "content": "Error: clock broken"},
			{"role": "assistant", "content": null, "tool_calls": [
				{"id": "call_3", "type": "function", "function": {"name": "current_time", "arguments": "{}"}}]}
		]}`)
}

func TestOpenAINoKeyNoAuthorization(t *testing.T) {
	var gotAuth []string
	var gotBody map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotBody = r.Header.Values("Authorization"), sseDecodeBody(t, r)
		oaiReplyJSON(w, oaiTextCompletion("ok", 1, 1))
	}))
	t.Cleanup(srv.Close)
	c := newOpenAIClient(srv.URL, "", srv.Client())
	// A caller-supplied Authorization must not leak through either.
	_, err := c.Complete(context.Background(), &LLMRequest{Model: "llama3", Header: map[string]string{"Authorization": "Bearer other"}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if len(gotAuth) != 0 {
		t.Errorf("Authorization = %q; want none", gotAuth)
	}
	if _, ok := gotBody["max_tokens"]; ok {
		t.Errorf("max_tokens sent although MaxTokens is 0")
	}
}

func TestOpenAIDefaults(t *testing.T) {
	c := newOpenAIClient("", "k", nil)
	if c.baseURL != "https://api.openai.com/v1" || c.maxTokensField != "max_completion_tokens" || c.hc == nil || c.Name() != "openai" {
		t.Errorf("newOpenAIClient(\"\") = {%q %q}; want the public API with max_completion_tokens", c.baseURL, c.maxTokensField)
	}
	if c := newOpenAIClient("http://localhost:11434/v1", "", nil); c.maxTokensField != "max_tokens" {
		t.Errorf("local server field = %q; want max_tokens", c.maxTokensField)
	}
}

func TestOpenAIParsesTextAndUsage(t *testing.T) {
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		oaiReplyJSON(w, `{"id":"chatcmpl-9","object":"chat.completion","model":"gpt-4o-2024-08-06",
			"choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],
			"usage":{"prompt_tokens":1200,"completion_tokens":30,"total_tokens":1230,"prompt_tokens_details":{"cached_tokens":1024}}}`)
	})
	got, err := c.Complete(context.Background(), &LLMRequest{Model: "gpt-4o"})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := Usage{InputTokens: 176, OutputTokens: 30, CacheReadInputTokens: 1024}
	if got.ID != "chatcmpl-9" || got.Model != "gpt-4o-2024-08-06" || got.Text != "Hello!" || got.StopReason != "end_turn" || got.Usage != want {
		t.Errorf("Complete = %+v; want chatcmpl-9, Hello!, end_turn, usage %+v", *got, want)
	}
}

func TestOpenAIParsesToolCalls(t *testing.T) {
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		oaiReplyJSON(w, `{"id":"chatcmpl-3","object":"chat.completion","model":"gpt-4o",
			"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
				{"id":"call_A","type":"function","function":{"name":"calculator","arguments":"{\"expression\":\"1+1\"}"}},
				{"id":"call_B","type":"function","function":{"name":"current_time","arguments":""}}]},
			"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5}}`)
	})
	got, err := c.Complete(context.Background(), &LLMRequest{Model: "gpt-4o"})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got.StopReason != "tool_use" || got.Text != "" || len(got.ToolCalls) != 2 {
		t.Fatalf("Complete = %+v; want tool_use with two calls", *got)
	}
	for i, want := range []ToolCall{
		{ID: "call_A", Name: "calculator", Input: json.RawMessage(`{"expression":"1+1"}`)},
		{ID: "call_B", Name: "current_time", Input: json.RawMessage(`{}`)},
	} {
		g := got.ToolCalls[i]
		if g.ID != want.ID || g.Name != want.Name || string(g.Input) != string(want.Input) {
			t.Errorf("tool call %d = {%q %q %s}; want {%q %q %s}", i, g.ID, g.Name, g.Input, want.ID, want.Name, want.Input)
		}
	}
}

func TestOpenAIMultiStep(t *testing.T) {
	step := 0
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		body := sseDecodeBody(t, r)
		step++
		switch step {
		case 1:
			oaiReplyJSON(w, oaiToolCallCompletion("call_7", "calculator", `{"expression":"2+2"}`))
		case 2:
			sseJSONEqual(t, "second request messages", body["messages"], `[
				{"role":"user","content":"2+2?"},
				{"role":"assistant","content":null,"tool_calls":[{"id":"call_7","type":"function",
					"function":{"name":"calculator","arguments":"{\"expression\":\"2+2\"}"}}]},
				{"role":"tool","tool_call_id":"call_7","content":"4"}]`)
			oaiReplyJSON(w, oaiTextCompletion("It is 4.", 60, 5))
		default:
			t.Errorf("unexpected request %d", step)
		}
	})
	msgs := []Message{{Role: "user", Content: "2+2?"}}
	first, err := c.Complete(context.Background(), &LLMRequest{Model: "gpt-4o", Messages: msgs})
	if err != nil || first.StopReason != "tool_use" || len(first.ToolCalls) != 1 {
		t.Fatalf("step 1 = %+v, %v; want one tool call", first, err)
	}
	msgs = append(msgs, Message{Role: "assistant", Content: first.Text, ToolCalls: first.ToolCalls},
		Message{Role: "tool", ToolCallID: first.ToolCalls[0].ID, Content: "4"})
	final, err := c.Complete(context.Background(), &LLMRequest{Model: "gpt-4o", Messages: msgs})
	if err != nil || final.Text != "It is 4." || final.StopReason != "end_turn" {
		t.Errorf("step 2 = %+v, %v; want It is 4., end_turn", final, err)
	}
}

func TestOpenAIStopReasons(t *testing.T) {
	tests := []struct {
		finish string
		tools  bool
		want   string
	}{
		{"stop", false, "end_turn"},
		{"length", false, "max_tokens"},
		{"tool_calls", true, "tool_use"},
		{"function_call", true, "tool_use"},
		{"content_filter", false, "refusal"},
		{"stop", true, "tool_use"}, // compatible servers that say stop with tool calls
		{"", false, "end_turn"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/tools=%v", tt.finish, tt.tools), func(t *testing.T) {
			c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
				msg := `{"role":"assistant","content":"x"}`
				if tt.tools {
					msg = `{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}`
				}
				oaiReplyJSON(w, `{"id":"x","model":"m","choices":[{"index":0,"message":`+msg+`,"finish_reason":"`+tt.finish+`"}]}`)
			})
			got, err := c.Complete(context.Background(), &LLMRequest{Model: "m"})
			if err != nil || got.StopReason != tt.want {
				t.Errorf("StopReason = %v, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestOpenAIInvalidToolArguments(t *testing.T) {
	for _, args := range []string{`{"expression": "2+`, `[1,2]`, `"text"`} {
		t.Run(args, func(t *testing.T) {
			c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
				oaiReplyJSON(w, oaiToolCallCompletion("call_1", "calculator", args))
			})
			got, err := c.Complete(context.Background(), &LLMRequest{Model: "m"})
			pe := sseAsProviderError(t, err)
			if got != nil || pe.Type != "invalid_response" || pe.StatusCode != 0 {
				t.Errorf("Complete = %v, %v; want nil and invalid_response with status 0", got, err)
			}
		})
	}
}

func TestOpenAIErrorBodyWith200(t *testing.T) {
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		oaiReplyJSON(w, `{"error":{"message":"model overloaded","type":"server_error","code":null}}`)
	})
	_, err := c.Complete(context.Background(), &LLMRequest{Model: "m"})
	if pe := sseAsProviderError(t, err); pe.Type != "server_error" || pe.Message != "model overloaded" || !pe.Retryable() {
		t.Errorf("error = %v; want retryable server_error", err)
	}
}

func TestOpenAIErrorCodeAsType(t *testing.T) {
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"message":"The model does not exist","type":null,"param":null,"code":"model_not_found"}}`)
	})
	_, err := c.Complete(context.Background(), &LLMRequest{Model: "m"})
	if pe := sseAsProviderError(t, err); pe.StatusCode != 404 || pe.Type != "model_not_found" || pe.Retryable() {
		t.Errorf("error = %v; want final 404 model_not_found", err)
	}
}

func TestOpenAIStream(t *testing.T) {
	var gotBody map[string]any
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		gotBody = sseDecodeBody(t, r)
		oaiReplySSE(w, oaiFullStream()...)
	})
	var seq []string
	got, err := c.Stream(context.Background(), &LLMRequest{Model: "gpt-4o-mini"}, func(ev StreamEvent) error {
		switch ev.Type {
		case "text":
			seq = append(seq, "text:"+ev.Text)
		case "tool_call":
			seq = append(seq, "tool_call:"+ev.ToolCall.ID+":"+ev.ToolCall.Name+string(ev.ToolCall.Input))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	sseJSONEqual(t, "stream fields", map[string]any{"stream": gotBody["stream"], "stream_options": gotBody["stream_options"]},
		`{"stream":true,"stream_options":{"include_usage":true}}`)
	want := `text:Working|text: on it.|tool_call:call_A:calculator{"expression": "3*3"}|tool_call:call_B:current_time{}`
	if strings.Join(seq, "|") != want {
		t.Errorf("events = %q; want %q", strings.Join(seq, "|"), want)
	}
	wantUsage := Usage{InputTokens: 20, OutputTokens: 33, CacheReadInputTokens: 100}
	if got.ID != "chatcmpl-s" || got.Model != "gpt-4o-mini" || got.Text != "Working on it." || got.StopReason != "tool_use" ||
		got.Usage != wantUsage || len(got.ToolCalls) != 2 || got.ToolCalls[1].ID != "call_B" {
		t.Errorf("Stream = %+v; want text, two calls, tool_use, usage %+v", *got, wantUsage)
	}
}

func TestOpenAIStreamCut(t *testing.T) {
	full := oaiFullStream()
	for _, tt := range []struct {
		name   string
		chunks []string
		reset  bool
		want   LLMResponse
	}{
		{"before finish", full[:3], false, LLMResponse{Text: "Working on it."}},
		{"after usage, no DONE", full[:9], false, LLMResponse{Text: "Working on it.", StopReason: "tool_use",
			Usage: Usage{InputTokens: 20, OutputTokens: 33, CacheReadInputTokens: 100}}},
		{"connection reset", full[:3], true, LLMResponse{Text: "Working on it."}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				oaiReplySSE(w, tt.chunks...)
				if tt.reset {
					sseHijackReset(t, w)
				}
			})
			got, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
			if got != nil || !errors.Is(err, ErrStreamCut) {
				t.Fatalf("Stream = %v, %v; want nil, ErrStreamCut", got, err)
			}
			pe := sseAsProviderError(t, err)
			p := pe.Partial
			if p == nil || p.Text != tt.want.Text || p.StopReason != tt.want.StopReason || p.Usage != tt.want.Usage || !pe.Retryable() {
				t.Errorf("Partial = %+v (retryable %v); want %+v, retryable", p, pe.Retryable(), tt.want)
			}
		})
	}
}

func TestOpenAIStreamErrorChunk(t *testing.T) {
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		oaiReplySSE(w, oaiChunk(`{"content":"Hi"}`, "null"), `{"error":{"message":"upstream hiccup","type":"server_error"}}`)
	})
	_, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
	pe := sseAsProviderError(t, err)
	if pe.Type != "server_error" || pe.StatusCode != 0 || !pe.Retryable() || pe.Partial == nil || pe.Partial.Text != "Hi" {
		t.Errorf("error = %+v; want retryable server_error with partial text", pe)
	}
}

func TestOpenAIStreamInvalidToolArguments(t *testing.T) {
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		oaiReplySSE(w,
			oaiChunk(`{"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"calculator","arguments":"{\"a\":"}}]}`, "null"),
			oaiChunk(`{}`, `"tool_calls"`), "[DONE]")
	})
	_, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
	if pe := sseAsProviderError(t, err); pe.Type != "invalid_response" || pe.StatusCode != 0 {
		t.Errorf("error = %v; want invalid_response", err)
	}
}

func TestOpenAIStreamCallbackErrorAborts(t *testing.T) {
	stop := errors.New("client went away")
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) { oaiReplySSE(w, oaiFullStream()...) })
	var calls int
	got, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(ev StreamEvent) error {
		calls++
		if ev.Type == "tool_call" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 || got == nil || got.Text != "Working on it." {
		t.Errorf("Stream = %+v, %v after %d calls; want partial answer, %v after 3", got, err, calls, stop)
	}
}

func TestOpenAIStreamDoneWithoutFinish(t *testing.T) {
	// Some compatible servers end with [DONE] and never send finish_reason.
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) {
		oaiReplySSE(w, oaiChunk(`{"tool_calls":[{"index":0,"id":"c1","function":{"name":"current_time","arguments":"{}"}}]}`, "null"), "[DONE]")
	})
	got, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
	if err != nil || got.StopReason != "tool_use" || len(got.ToolCalls) != 1 {
		t.Errorf("Stream = %+v, %v; want one call and tool_use", got, err)
	}
}

func TestOpenAIStreamWrongContentType(t *testing.T) {
	c, _ := oaiFake(t, func(w http.ResponseWriter, r *http.Request) { oaiReplyJSON(w, oaiTextCompletion("x", 1, 1)) })
	_, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
	if pe := sseAsProviderError(t, err); pe.Type != "invalid_response" {
		t.Errorf("error = %v; want invalid_response", err)
	}
}

// TestToolsEncodingCache: the tools array is encoded once per spec list, a
// different list is encoded afresh, and sseNewRequest splices it into the
// body as its "tools" member.
func TestToolsEncodingCache(t *testing.T) {
	var c sseToolsCache
	a := []ToolSpec{{Name: "calculator", Description: "math", InputSchema: json.RawMessage(`{"type": "object"}`)}}
	b := []ToolSpec{{Name: "current_time", InputSchema: json.RawMessage(` `)}}
	calls := 0
	wire := func(s ToolSpec) any { calls++; return oaiWireTool(s) }
	body := func(specs []ToolSpec) string {
		t.Helper()
		tools, err := c.encode("openai", specs, wire)
		if err != nil {
			t.Fatal(err)
		}
		hr, err := sseNewRequest(context.Background(), "openai", "http://127.0.0.1:1/", &oaiRequest{Model: "m"}, tools, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(hr.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatalf("body is not JSON: %s", out)
		}
		return string(out)
	}
	first := body(a)
	if want := `"tools":[{"type":"function","function":{"name":"calculator","description":"math","parameters":{"type":"object"}}}]}`; !strings.HasSuffix(first, want) {
		t.Fatalf("body %s\nwant it to end with %s", first, want)
	}
	if again := body(a); again != first || calls != 1 {
		t.Errorf("same specs: encoded %d times; bodies\n%s\n%s", calls, first, again)
	}
	if other := body(b); !strings.Contains(other, `"name":"current_time","parameters":{"type":"object","properties":{}}`) || strings.Contains(other, "calculator") {
		t.Errorf("another spec list got the cached tools: %s", other)
	}
	if none := body(nil); strings.Contains(none, "tools") {
		t.Errorf("no tools still sent a tools field: %s", none)
	}
	// An empty object gets no leading comma.
	hr, err := sseNewRequest(context.Background(), "x", "http://127.0.0.1:1/", struct{}{}, []byte(`[]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := io.ReadAll(hr.Body); string(out) != `{"tools":[]}` {
		t.Errorf("empty payload: body %s", out)
	}
}
