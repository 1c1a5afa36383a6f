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

// anthFake starts a fake Anthropic Messages API on 127.0.0.1 whose
// POST /v1/messages is answered by h (any other route is 404), and returns
// a client for it using key sseTestKey, with a trailing slash on the base URL
// as an operator might write it. The server closes when the test ends.
func anthFake(t testing.TB, h http.HandlerFunc) (*AnthropicClient, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return newAnthropicClient(srv.URL+"/", sseTestKey, srv.Client()), srv
}

// anthReplyJSON writes a 200 application/json answer with the given body.
func anthReplyJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "req_ok")
	io.WriteString(w, body)
}

// anthReplyError writes an Anthropic error answer:
// {"type":"error","error":{"type":typ,"message":msg}}.
func anthReplyError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
	w.Write(b)
}

// anthTextMessage is a complete Messages API answer with one text block.
func anthTextMessage(text string, inTokens, outTokens int) string {
	t, _ := json.Marshal(text)
	return fmt.Sprintf(`{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
"content":[{"type":"text","text":%s}],"stop_reason":"end_turn","stop_sequence":null,
"usage":{"input_tokens":%d,"output_tokens":%d}}`, t, inTokens, outTokens)
}

// anthToolUseMessage is a complete answer asking for one tool call.
func anthToolUseMessage(id, name, inputJSON string) string {
	return fmt.Sprintf(`{"id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
"content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":%q,"name":%q,"input":%s}],
"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":12}}`, id, name, inputJSON)
}

// anthEvent formats one Server-Sent Event frame as the Messages API sends
// it: the event name, then the JSON data (whose type repeats the name).
func anthEvent(name, data string) string {
	return "event: " + name + "\ndata: " + data + "\n\n"
}

// anthReplySSE writes a 200 text/event-stream answer of the given frames,
// flushing after each.
func anthReplySSE(w http.ResponseWriter, frames ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("request-id", "req_stream")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	for _, fr := range frames {
		io.WriteString(w, fr)
		if f != nil {
			f.Flush()
		}
	}
}

// anthFullStream is a documented event sequence: a text block, a tool_use
// block whose input arrives in three input_json_delta pieces, pings, and
// usage (input and cache counts in message_start, cumulative output in
// message_delta).
func anthFullStream() []string {
	return []string{
		anthEvent("message_start", `{"type":"message_start","message":{"id":"msg_s1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":1}}}`),
		anthEvent("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		anthEvent("ping", `{"type": "ping"}`),
		anthEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}`),
		anthEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"compute."}}`),
		anthEvent("content_block_stop", `{"type":"content_block_stop","index":0}`),
		anthEvent("content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"calculator","input":{}}}`),
		anthEvent("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}`),
		anthEvent("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"expression\": \"2"}}`),
		anthEvent("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"+2\"}"}}`),
		": a comment line the parser must skip\n\n",
		anthEvent("content_block_stop", `{"type":"content_block_stop","index":1}`),
		anthEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}`),
		anthEvent("message_stop", `{"type":"message_stop"}`),
	}
}

func TestAnthropicSendsDocumentedRequest(t *testing.T) {
	var gotHeader http.Header
	var gotBody map[string]any
	var gotPath string
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		gotHeader, gotPath = r.Header.Clone(), r.URL.Path
		gotBody = sseDecodeBody(t, r)
		anthReplyJSON(w, anthTextMessage("done", 1, 1))
	})
	req := &LLMRequest{
		Model:       "claude-sonnet-4-5",
		System:      "You are terse.",
		MaxTokens:   512,
		Temperature: 0.25,
		Header:      map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		Tools: []ToolSpec{{Name: "calculator", Description: "Evaluates arithmetic.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}`)}},
		Messages: []Message{
			{Role: "user", Content: "What is 2+2 and the time?"},
			{Role: "assistant", Content: "Checking.", ToolCalls: []ToolCall{
				{ID: "toolu_1", Name: "calculator", Input: json.RawMessage(`{"expression":"2+2"}`)},
				{ID: "toolu_2", Name: "current_time"},
			}},
			{Role: "tool", ToolCallID: "toolu_1", ToolName: "calculator", Content: "4"},
			{Role: "tool", ToolCallID: "toolu_2", ToolName: "current_time", Content: "clock broken", IsError: true},
		},
	}
	if _, err := c.Complete(context.Background(), req); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if gotPath != "/v1/messages" {
		t.Errorf("path = %q; want /v1/messages", gotPath)
	}
	for k, want := range map[string]string{
		"X-Api-Key":         sseTestKey,
		"Anthropic-Version": "2023-06-01",
		"Content-Type":      "application/json",
		"User-Agent":        "production-agent",
		"Traceparent":       "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	} {
		if got := gotHeader.Get(k); got != want {
			t.Errorf("header %s = %q; want %q", k, got, want)
		}
	}
	if gotHeader.Get("Authorization") != "" {
		t.Errorf("Authorization header sent to Anthropic")
	}
	sseJSONEqual(t, "body", gotBody, `{
		"model": "claude-sonnet-4-5", "max_tokens": 512, "temperature": 0.25,
		"system": "You are terse.",
		"tools": [{"name": "calculator", "description": "Evaluates arithmetic.",
			"input_schema": {"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}}],
		"messages": [
			{"role": "user", "content": [{"type": "text", "text": "What is 2+2 and the time?"}]},
			{"role": "assistant", "content": [
				{"type": "text", "text": "Checking."},
				{"type": "tool_use", "id": "toolu_1", "name": "calculator", "input": {"expression": "2+2"}},
				{"type": "tool_use", "id": "toolu_2", "name": "current_time", "input": {}}]},
			{"role": "user", "content": [
				{"type": "tool_result", "tool_use_id": "toolu_1", "content": "4"},
				{"type": "tool_result", "tool_use_id": "toolu_2", "content": "clock broken", "is_error": true}]}
		]}`)
}

func TestAnthropicRequestDefaults(t *testing.T) {
	var gotBody map[string]any
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		gotBody = sseDecodeBody(t, r)
		anthReplyJSON(w, anthTextMessage("ok", 1, 1))
	})
	// No system, no tools, no max_tokens; an empty assistant turn is
	// dropped and the two user turns around it merge.
	req := &LLMRequest{Model: "m", Messages: []Message{
		{Role: "user", Content: "a"}, {Role: "assistant"}, {Role: "user", Content: "b"},
	}}
	if _, err := c.Complete(context.Background(), req); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	sseJSONEqual(t, "body", gotBody, `{"model":"m","max_tokens":4096,"temperature":0,
		"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`)
}

func TestAnthropicUnknownRole(t *testing.T) {
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		t.Error("request sent despite an invalid message")
	})
	_, err := c.Complete(context.Background(), &LLMRequest{Model: "m", Messages: []Message{{Role: "system", Content: "x"}}})
	if err == nil || !strings.Contains(err.Error(), `unknown role "system"`) {
		t.Errorf("error = %v; want unknown role", err)
	}
}

func TestAnthropicParsesTextAndUsage(t *testing.T) {
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		anthReplyJSON(w, `{"id":"msg_9","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
			"content":[{"type":"text","text":"Hello"},{"type":"text","text":", world"}],
			"stop_reason":"end_turn","stop_sequence":null,
			"usage":{"input_tokens":12,"cache_creation_input_tokens":300,"cache_read_input_tokens":4000,"output_tokens":30}}`)
	})
	got, err := c.Complete(context.Background(), &LLMRequest{Model: "claude-sonnet-4-5", Messages: []Message{{Role: "user", Content: "hi"}}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := LLMResponse{ID: "msg_9", Model: "claude-sonnet-4-5-20250929", Text: "Hello, world", StopReason: "end_turn",
		Usage: Usage{InputTokens: 12, OutputTokens: 30, CacheCreationInputTokens: 300, CacheReadInputTokens: 4000}}
	if got.ID != want.ID || got.Model != want.Model || got.Text != want.Text || got.StopReason != want.StopReason ||
		got.Usage != want.Usage || len(got.ToolCalls) != 0 {
		t.Errorf("Complete = %+v; want %+v", *got, want)
	}
}

func TestAnthropicParsesToolUse(t *testing.T) {
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		anthReplyJSON(w, anthToolUseMessage("toolu_01A", "calculator", `{"expression":"6*7"}`))
	})
	got, err := c.Complete(context.Background(), &LLMRequest{Model: "m", Messages: []Message{{Role: "user", Content: "6*7?"}}})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got.StopReason != "tool_use" || got.Text != "Let me check." || len(got.ToolCalls) != 1 {
		t.Fatalf("Complete = %+v; want tool_use with text and one call", *got)
	}
	tc := got.ToolCalls[0]
	if tc.ID != "toolu_01A" || tc.Name != "calculator" || string(tc.Input) != `{"expression":"6*7"}` {
		t.Errorf("tool call = {%q %q %s}; want {toolu_01A calculator {\"expression\":\"6*7\"}}", tc.ID, tc.Name, tc.Input)
	}
}

func TestAnthropicToolUseInputMustBeObject(t *testing.T) {
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		anthReplyJSON(w, anthToolUseMessage("toolu_1", "calculator", `"2+2"`))
	})
	_, err := c.Complete(context.Background(), &LLMRequest{Model: "m"})
	if pe := sseAsProviderError(t, err); pe.Type != "invalid_response" || pe.StatusCode != 0 {
		t.Errorf("error = %v; want invalid_response", err)
	}
}

func TestAnthropicMultiStep(t *testing.T) {
	step := 0
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		body := sseDecodeBody(t, r)
		step++
		switch step {
		case 1:
			anthReplyJSON(w, anthToolUseMessage("toolu_7", "calculator", `{"expression":"2+2"}`))
		case 2:
			sseJSONEqual(t, "second request messages", body["messages"], `[
				{"role":"user","content":[{"type":"text","text":"2+2?"}]},
				{"role":"assistant","content":[{"type":"text","text":"Let me check."},
					{"type":"tool_use","id":"toolu_7","name":"calculator","input":{"expression":"2+2"}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_7","content":"4"}]}]`)
			anthReplyJSON(w, anthTextMessage("2+2 = 4", 50, 8))
		default:
			t.Errorf("unexpected request %d", step)
		}
	})
	msgs := []Message{{Role: "user", Content: "2+2?"}}
	first, err := c.Complete(context.Background(), &LLMRequest{Model: "m", Messages: msgs})
	if err != nil || first.StopReason != "tool_use" {
		t.Fatalf("step 1 = %+v, %v; want tool_use", first, err)
	}
	msgs = append(msgs, Message{Role: "assistant", Content: first.Text, ToolCalls: first.ToolCalls})
	for _, tc := range first.ToolCalls {
		msgs = append(msgs, Message{Role: "tool", ToolCallID: tc.ID, ToolName: tc.Name, Content: "4"})
	}
	final, err := c.Complete(context.Background(), &LLMRequest{Model: "m", Messages: msgs})
	if err != nil {
		t.Fatalf("step 2: %v", err)
	}
	if final.Text != "2+2 = 4" || final.StopReason != "end_turn" || first.Usage.Add(final.Usage) != (Usage{InputTokens: 80, OutputTokens: 20}) {
		t.Errorf("final = %+v (total usage %+v); want text 2+2 = 4, end_turn, {80 20}", *final, first.Usage.Add(final.Usage))
	}
}

func TestAnthropicStopReasons(t *testing.T) {
	for _, reason := range []string{"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"} {
		t.Run(reason, func(t *testing.T) {
			c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
				anthReplyJSON(w, strings.Replace(anthTextMessage("x", 1, 1), `"end_turn"`, `"`+reason+`"`, 1))
			})
			got, err := c.Complete(context.Background(), &LLMRequest{Model: "m"})
			if err != nil || got.StopReason != reason {
				t.Errorf("StopReason = %v, %v; want %q", got, err, reason)
			}
		})
	}
}

func TestAnthropicStream(t *testing.T) {
	var gotBody map[string]any
	var gotAccept string
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		gotBody, gotAccept = sseDecodeBody(t, r), r.Header.Get("Accept")
		anthReplySSE(w, anthFullStream()...)
	})
	var events []StreamEvent
	got, err := c.Stream(context.Background(), &LLMRequest{Model: "m", Messages: []Message{{Role: "user", Content: "2+2?"}}},
		func(ev StreamEvent) error { events = append(events, ev); return nil })
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if gotBody["stream"] != true || gotAccept != "text/event-stream" {
		t.Errorf("request stream = %v, Accept = %q; want true, text/event-stream", gotBody["stream"], gotAccept)
	}
	wantUsage := Usage{InputTokens: 25, OutputTokens: 42, CacheCreationInputTokens: 100, CacheReadInputTokens: 200}
	if got.ID != "msg_s1" || got.Text != "Let me compute." || got.StopReason != "tool_use" || got.Usage != wantUsage {
		t.Errorf("Stream = %+v; want msg_s1, text, tool_use, usage %+v", *got, wantUsage)
	}
	if len(got.ToolCalls) != 1 || got.ToolCalls[0].ID != "toolu_01" || string(got.ToolCalls[0].Input) != `{"expression": "2+2"}` {
		t.Errorf("tool calls = %+v; want toolu_01 calculator {\"expression\": \"2+2\"}", got.ToolCalls)
	}
	var seq []string
	for _, ev := range events {
		switch ev.Type {
		case "text":
			seq = append(seq, "text:"+ev.Text)
		case "tool_call":
			seq = append(seq, "tool_call:"+ev.ToolCall.Name+string(ev.ToolCall.Input))
		}
	}
	if want := `text:Let me |text:compute.|tool_call:calculator{"expression": "2+2"}`; strings.Join(seq, "|") != want {
		t.Errorf("events = %q; want %q", strings.Join(seq, "|"), want)
	}
}

func TestAnthropicStreamToolWithoutDeltas(t *testing.T) {
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		anthReplySSE(w,
			anthEvent("message_start", `{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"model":"x","usage":{"input_tokens":3,"output_tokens":1}}}`),
			anthEvent("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"current_time","input":{}}}`),
			anthEvent("content_block_stop", `{"type":"content_block_stop","index":0}`),
			anthEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}`),
			anthEvent("message_stop", `{"type":"message_stop"}`))
	})
	got, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
	if err != nil || len(got.ToolCalls) != 1 || string(got.ToolCalls[0].Input) != "{}" {
		t.Errorf("Stream = %+v, %v; want one call with input {}", got, err)
	}
}

func TestAnthropicStreamErrorEvent(t *testing.T) {
	for _, tt := range []struct {
		typ           string
		wantRetryable bool
	}{
		{"overloaded_error", true},
		{"api_error", true},
		{"invalid_request_error", false},
	} {
		t.Run(tt.typ, func(t *testing.T) {
			frames := anthFullStream()[:4] // message_start, block start, ping, first delta
			frames = append(frames, anthEvent("error", `{"type":"error","error":{"type":"`+tt.typ+`","message":"Overloaded"}}`))
			c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) { anthReplySSE(w, frames...) })
			got, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
			if got != nil {
				t.Errorf("response = %+v; want nil", got)
			}
			pe := sseAsProviderError(t, err)
			if pe.StatusCode != 0 || pe.Type != tt.typ || pe.Message != "Overloaded" || pe.Retryable() != tt.wantRetryable || pe.RequestID != "req_stream" {
				t.Errorf("error = {%d %q %q retryable %v rid %q}; want {0 %q Overloaded %v req_stream}",
					pe.StatusCode, pe.Type, pe.Message, pe.Retryable(), pe.RequestID, tt.typ, tt.wantRetryable)
			}
			if pe.Partial == nil || pe.Partial.Text != "Let me " || pe.Partial.Usage.InputTokens != 25 {
				t.Errorf("Partial = %+v; want text so far and input usage", pe.Partial)
			}
		})
	}
}

func TestAnthropicStreamCut(t *testing.T) {
	full := anthFullStream()
	for _, tt := range []struct {
		name  string
		reset bool
	}{{"clean close", false}, {"connection reset", true}} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				// Everything up to message_delta, then half an event.
				anthReplySSE(w, append(full[:len(full)-1:len(full)-1], "event: message_stop\ndata: {\"type\":")...)
				if tt.reset {
					sseHijackReset(t, w)
				}
			})
			got, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
			if got != nil {
				t.Errorf("response = %+v; want nil", got)
			}
			if !errors.Is(err, ErrStreamCut) {
				t.Fatalf("error = %v; want ErrStreamCut", err)
			}
			pe := sseAsProviderError(t, err)
			if !pe.Retryable() || pe.StatusCode != 0 {
				t.Errorf("Retryable() = %v, status %d; want true, 0", pe.Retryable(), pe.StatusCode)
			}
			wantUsage := Usage{InputTokens: 25, OutputTokens: 42, CacheCreationInputTokens: 100, CacheReadInputTokens: 200}
			if pe.Partial == nil || pe.Partial.Usage != wantUsage || pe.Partial.Text != "Let me compute." || len(pe.Partial.ToolCalls) != 1 {
				t.Errorf("Partial = %+v; want text, the tool call and usage %+v", pe.Partial, wantUsage)
			}
		})
	}
}

func TestAnthropicStreamCutBeforeUsageUpdate(t *testing.T) {
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) { anthReplySSE(w, anthFullStream()[:5]...) })
	_, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
	pe := sseAsProviderError(t, err)
	if !errors.Is(err, ErrStreamCut) || pe.Partial == nil || pe.Partial.Usage != (Usage{InputTokens: 25, OutputTokens: 1, CacheCreationInputTokens: 100, CacheReadInputTokens: 200}) {
		t.Errorf("error = %v, Partial = %+v; want ErrStreamCut with message_start usage", err, pe.Partial)
	}
}

func TestAnthropicStreamCallbackErrorAborts(t *testing.T) {
	stop := errors.New("client went away")
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) { anthReplySSE(w, anthFullStream()...) })
	calls := 0
	got, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("error = %v after %d calls; want %v after 1", err, calls, stop)
	}
	if got == nil || got.Text != "Let me " || got.Usage.InputTokens != 25 {
		t.Errorf("response = %+v; want what was assembled so far", got)
	}
}

func TestAnthropicStreamCanceledMidStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		anthReplySSE(w, anthFullStream()[:4]...)
		<-r.Context().Done()
	})
	_, err := c.Stream(ctx, &LLMRequest{Model: "m"}, func(ev StreamEvent) error {
		cancel() // the caller gives up after the first delta
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v; want context.Canceled", err)
	}
	if pe := sseAsProviderError(t, err); pe.Partial == nil || pe.Partial.Usage.InputTokens != 25 {
		t.Errorf("Partial = %+v; want usage so far", pe.Partial)
	}
}

func TestAnthropicStreamInvalid(t *testing.T) {
	for _, tt := range []struct {
		name   string
		frames []string
		ctype  string
	}{
		{"json content type", []string{anthTextMessage("x", 1, 1)}, "application/json"},
		{"garbage event data", []string{anthEvent("message_start", "{not json")}, ""},
		{"tool input not an object", []string{
			anthEvent("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"n","input":{}}}`),
			anthEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"[1,"}}`),
			anthEvent("content_block_stop", `{"type":"content_block_stop","index":0}`)}, ""},
		{"line too long", []string{"data: " + strings.Repeat("x", sseMaxLine+10) + "\n\n"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
					io.WriteString(w, strings.Join(tt.frames, ""))
					return
				}
				anthReplySSE(w, tt.frames...)
			})
			_, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
			if pe := sseAsProviderError(t, err); pe.Type != "invalid_response" || pe.StatusCode != 0 {
				t.Errorf("error = %v; want invalid_response", err)
			}
		})
	}
}

func TestAnthropicStreamStatusError(t *testing.T) {
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("retry-after", "3")
		anthReplyError(w, 529, "overloaded_error", "Overloaded")
	})
	_, err := c.Stream(context.Background(), &LLMRequest{Model: "m"}, func(StreamEvent) error { return nil })
	if pe := sseAsProviderError(t, err); pe.StatusCode != 529 || pe.Type != "overloaded_error" || !pe.Retryable() || pe.RetryAfter.Seconds() != 3 {
		t.Errorf("error = %+v; want 529 overloaded_error retryable after 3s", pe)
	}
}

func TestAnthropicDefaultBaseURL(t *testing.T) {
	if c := newAnthropicClient("", "k", nil); c.baseURL != "https://api.anthropic.com" || c.hc == nil || c.Name() != "anthropic" {
		t.Errorf("newAnthropicClient(\"\") = {%q %v %q}; want the public API, a client, anthropic", c.baseURL, c.hc, c.Name())
	}
}
