package main

// Fuzz targets of the reliability suite (issue 11) that do not sit beside
// their file: the /chat decoder and the two providers' answer parsers
// (streamed and whole). The other targets are FuzzParseTOML, FuzzParseJWT,
// FuzzSSEParser, FuzzEvalArithmetic, FuzzFindArithmetic, FuzzNormalize and
// FuzzScanSecrets. Seed corpora live in testdata/fuzz/<Name>/ and run with
// every plain go test; scripts/fuzz.sh fuzzes each target for a fixed time.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseChatBody: whatever the body, parseChatBody never panics; every
// failure is an *apiError with a 4xx status, a type and a message; every
// success is a body that is valid JSON and holds valid fields.
func FuzzParseChatBody(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u1","session_id":"s1","message":"Hello"}`,
		`{"user_id":"u1","session_id":"s1","message":"Hello","source_ip":"192.168.1.100","stream":true}`,
		`{"user_id":"u1","session_id":"s1","message":"hi","source_ip":"::ffff:10.0.0.1"}`,
		`{"user_id":"u1","session_id":"s1","message":"\u0000"}`,
		`{"user_id":"u1","session_id":"s1","message":"   "}`,
		`{"user_id":"u 1","session_id":"s1","message":"x"}`,
		`{"user_id":"u1","session_id":"s1","message":"x","extra":1}`,
		`{"user_id":"u1","session_id":"s1","message":"x"} {}`,
		`{"user_id":1e999,"session_id":"s1","message":"x"}`,
		`{"user_id":"u1","session_id":"s1","message":"x","stream":"yes"}`,
		`[[[[[[[[[[`, `null`, `[]`, `""`, ``, " \n", "{\"message\":\"\xff\"}", "\xef\xbb\xbf{}",
		`{"user_id":"u1","session_id":"s1","message":"` + strings.Repeat("a", 300) + `"}`,
	} {
		f.Add([]byte(s))
	}
	lim := chatLimits{MaxBodyBytes: 65536, MaxMessageBytes: 256}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := parseChatBody(body, lim)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("parseChatBody(%q) error %T %v; want *apiError", body, err, err)
			}
			if ae.Status < 400 || ae.Status > 499 || ae.Type == "" || ae.Message == "" {
				t.Fatalf("parseChatBody(%q) = %+v; want a 4xx with a type and a message", body, ae)
			}
			if !utf8.ValidString(ae.Message) {
				t.Fatalf("parseChatBody(%q) message %q is not valid UTF-8", body, ae.Message)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("parseChatBody accepted invalid JSON %q", body)
		}
		if !validID(in.UserID) || !validID(in.SessionID) {
			t.Fatalf("parseChatBody(%q) accepted ids %q %q", body, in.UserID, in.SessionID)
		}
		if strings.TrimSpace(in.Message) == "" || len(in.Message) > lim.MaxMessageBytes ||
			!utf8.ValidString(in.Message) || strings.ContainsRune(in.Message, 0) {
			t.Fatalf("parseChatBody(%q) accepted message %q", body, in.Message)
		}
	})
}

// fzRoundTrip answers every request with one canned response.
type fzRoundTrip struct {
	contentType string
	body        []byte
}

func (rt fzRoundTrip) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {rt.contentType}},
		Body:          io.NopCloser(bytes.NewReader(rt.body)),
		ContentLength: int64(len(rt.body)), Request: r,
	}, nil
}

// fzClient returns a client whose every answer is 200 with body.
func fzClient(contentType string, body []byte) *http.Client {
	return &http.Client{Transport: fzRoundTrip{contentType: contentType, body: body}}
}

var fzRequest = LLMRequest{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}, MaxTokens: 16}

// fzCheckProvider feeds body to p as a stream and, separately, as a whole
// JSON answer, and checks what any answer must satisfy: no panic; an
// error is a *ProviderError with no answer beside it; the text handed to
// the caller piece by piece is the answer's (or the partial answer's)
// text; every tool call carries a JSON object.
func fzCheckProvider(t *testing.T, name string, stream, whole Provider) {
	var text strings.Builder
	var tools []ToolCall
	resp, err := stream.Stream(context.Background(), &fzRequest, func(ev StreamEvent) error {
		switch ev.Type {
		case "text":
			if ev.Text == "" {
				t.Fatalf("%s: empty text event", name)
			}
			text.WriteString(ev.Text)
		case "tool_call":
			if ev.ToolCall == nil {
				t.Fatalf("%s: tool_call event without a call", name)
			}
			tools = append(tools, *ev.ToolCall)
		default:
			t.Fatalf("%s: unknown event type %q", name, ev.Type)
		}
		return nil
	})
	if err != nil {
		var pe *ProviderError
		if !errors.As(err, &pe) || resp != nil {
			t.Fatalf("%s Stream: %v (%T), answer %v; want a *ProviderError and no answer", name, err, err, resp)
		}
		if pe.Partial != nil && pe.Partial.Text != text.String() {
			t.Fatalf("%s Stream: partial text %q; the caller was given %q", name, pe.Partial.Text, text.String())
		}
	} else {
		if resp == nil {
			t.Fatalf("%s Stream: no answer and no error", name)
		}
		if resp.Text != text.String() {
			t.Fatalf("%s Stream: answer text %q; the caller was given %q", name, resp.Text, text.String())
		}
		if len(resp.ToolCalls) != len(tools) {
			t.Fatalf("%s Stream: %d tool calls in the answer, %d given to the caller", name, len(resp.ToolCalls), len(tools))
		}
		fzCheckTools(t, name+" Stream", resp.ToolCalls)
	}

	resp, err = whole.Complete(context.Background(), &fzRequest)
	if err != nil {
		var pe *ProviderError
		if !errors.As(err, &pe) || resp != nil {
			t.Fatalf("%s Complete: %v (%T), answer %v; want a *ProviderError and no answer", name, err, err, resp)
		}
		return
	}
	if resp == nil {
		t.Fatalf("%s Complete: no answer and no error", name)
	}
	fzCheckTools(t, name+" Complete", resp.ToolCalls)
}

func fzCheckTools(t *testing.T, name string, calls []ToolCall) {
	for _, tc := range calls {
		if !sseIsObject(tc.Input) {
			t.Fatalf("%s: tool call %q input %q is not a JSON object", name, tc.Name, tc.Input)
		}
	}
}

// FuzzAnthropicStream feeds arbitrary bytes to the Anthropic client as a
// Messages stream (text/event-stream) and as a whole Message.
func FuzzAnthropicStream(f *testing.F) {
	for _, s := range []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"model\":\"c\",\"usage\":{\"input_tokens\":3}}}\n\n" +
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n" +
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"calculator\",\"input\":{}}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"expression\\\":\"}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"1+1\\\"}\"}}\n\n" +
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n" +
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"cut\"}}\n\n",
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
		"data: {\"type\":\"content_block_stop\",\"index\":7}\n\ndata: {\"type\":\"message_stop\"}\n\n",
		"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"x\",\"input\":[1]}}\n\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		`{"id":"m","type":"message","model":"c","content":[{"type":"text","text":"Hi"},{"type":"tool_use","id":"t","name":"calculator","input":{"expression":"2*3"}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}`,
		`{"type":"message","content":[{"type":"tool_use","input":null}]}`,
		`{"type":"message","content":[{"type":"tool_use","input":"x"}]}`,
		"data: not json\n\n", "", ":\n\n", "data: {}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		stream := newAnthropicClient("http://fuzz.invalid", "k", fzClient("text/event-stream", body))
		whole := newAnthropicClient("http://fuzz.invalid", "k", fzClient("application/json", body))
		fzCheckProvider(t, "anthropic", stream, whole)
	})
}

// FuzzOpenAIStream feeds arbitrary bytes to the OpenAI-compatible client
// as a chat.completion.chunk stream and as a whole chat.completion.
func FuzzOpenAIStream(f *testing.F) {
	for _, s := range []string{
		"data: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n" +
			"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n" +
			"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"calculator\",\"arguments\":\"\"}}]}}]}\n\n" +
			"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"expression\\\":\\\"1+1\\\"}\"}}]}}]}\n\n" +
			"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" +
			"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n" +
			"data: [DONE]\n\n",
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cut\"}}]}\n\n",
		"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":3,\"function\":{\"arguments\":\"[\"}}]},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
		"data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other choice\"}}]}\n\ndata: [DONE]\n\n",
		`{"id":"c","model":"g","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","tool_calls":[{"id":"t","type":"function","function":{"name":"calculator","arguments":"{\"expression\":\"2*3\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"choices":[{"message":{"content":null,"refusal":"no"},"finish_reason":"content_filter"}]}`,
		`{"choices":[]}`, `{"error":{"message":"bad","type":"invalid_request_error","code":"x"}}`,
		"data: [DONE]\n\n", "", "data: {\"choices\":null}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		stream := newOpenAIClient("http://fuzz.invalid/v1", "k", fzClient("text/event-stream", body))
		whole := newOpenAIClient("http://fuzz.invalid/v1", "k", fzClient("application/json", body))
		fzCheckProvider(t, "openai", stream, whole)
	})
}
