package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// oaiDefaultBaseURL is the OpenAI API root, with /v1 (the SDK convention;
// the client appends /chat/completions).
const oaiDefaultBaseURL = "https://api.openai.com/v1"

// OpenAIClient is a Provider speaking the OpenAI Chat Completions API
// (POST {base}/chat/completions) over net/http, for OpenAI itself and for
// compatible servers (vLLM, Ollama, llama.cpp…). The zero value is not
// usable; build one with newOpenAIClient. It is safe for concurrent use.
//
// Usage is reported in the Anthropic sense: InputTokens excludes the
// prompt tokens served from OpenAI's cache, which are counted in
// CacheReadInputTokens (OpenAI's prompt_tokens includes them).
type OpenAIClient struct {
	baseURL string
	apiKey  string
	hc      *http.Client
	now     func() time.Time // reads the clock for Retry-After HTTP-dates
	// maxTokensField names the output limit: OpenAI itself documents
	// max_completion_tokens (max_tokens is deprecated and refused by its
	// reasoning models); compatible servers know max_tokens.
	maxTokensField string
	tools          sseToolsCache
}

// oaiRequest is the Chat Completions request body.
type oaiRequest struct {
	Model               string            `json:"model"`
	Messages            []oaiMessage      `json:"messages"`
	Temperature         float64           `json:"temperature"`
	MaxTokens           int               `json:"max_tokens,omitempty"`
	MaxCompletionTokens int               `json:"max_completion_tokens,omitempty"`
	Stream              bool              `json:"stream,omitempty"`
	StreamOptions       *oaiStreamOptions `json:"stream_options,omitempty"`
}

// oaiStreamOptions asks a stream for its usage in the last chunk.
type oaiStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// newOpenAIClient returns a client for baseURL ("" → the public API; the URL
// includes /v1, a trailing slash is tolerated). apiKey "" sends no
// Authorization header (local servers). A nil hc means newLLMHTTPClient(0).
func newOpenAIClient(baseURL, apiKey string, hc *http.Client) *OpenAIClient {
	if baseURL == "" {
		baseURL = oaiDefaultBaseURL
	}
	if hc == nil {
		hc = newLLMHTTPClient(0)
	}
	field := "max_tokens"
	if u, err := url.Parse(baseURL); err == nil && strings.EqualFold(u.Hostname(), "api.openai.com") {
		field = "max_completion_tokens"
	}
	return &OpenAIClient{baseURL: baseURL, apiKey: apiKey, hc: hc, now: time.Now, maxTokensField: field}
}

// Name returns "openai".
func (c *OpenAIClient) Name() string { return "openai" }

type oaiMessage struct {
	Role       string        `json:"role"`
	Content    *string       `json:"content"`
	ToolCalls  []oaiToolCall `json:"tool_calls,omitempty"`
	ToolCallID string        `json:"tool_call_id,omitempty"`
}

type oaiToolCall struct {
	Index    *int   `json:"index,omitempty"` // streaming deltas only
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type oaiTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type oaiUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// usage converts to Usage, moving cached prompt tokens to CacheRead.
func (u *oaiUsage) usage() Usage {
	out := Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
	if d := u.PromptTokensDetails; d != nil && d.CachedTokens > 0 && d.CachedTokens <= u.PromptTokens {
		out.InputTokens -= d.CachedTokens
		out.CacheReadInputTokens = d.CachedTokens
	}
	return out
}

type oaiErrorObject struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// kind returns the error type, or the code when the type is empty.
func (e *oaiErrorObject) kind() string {
	if e.Type != "" {
		return e.Type
	}
	var code string
	if json.Unmarshal(e.Code, &code) == nil {
		return code
	}
	return ""
}

// oaiParseError extracts the error of an OpenAI error body.
func oaiParseError(body []byte) (typ, msg, requestID string, ok bool) {
	var e struct {
		Error *oaiErrorObject `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == nil {
		return "", "", "", false
	}
	return e.Error.kind(), e.Error.Message, "", true
}

// buildRequest translates req to the wire form as a JSON object.
func (c *OpenAIClient) buildRequest(req *LLMRequest, stream bool) (*oaiRequest, error) {
	msgs := []oaiMessage{}
	if req.System != "" {
		msgs = append(msgs, oaiMessage{Role: "system", Content: &req.System})
	}
	for i, m := range req.Messages {
		content := m.Content
		switch m.Role {
		case "user":
			msgs = append(msgs, oaiMessage{Role: "user", Content: &content})
		case "assistant":
			w := oaiMessage{Role: "assistant"}
			if content != "" || len(m.ToolCalls) == 0 {
				w.Content = &content
			}
			for _, tc := range m.ToolCalls {
				var wc oaiToolCall
				wc.ID, wc.Type = tc.ID, "function"
				wc.Function.Name = tc.Name
				wc.Function.Arguments = string(anthInput(tc.Input))
				w.ToolCalls = append(w.ToolCalls, wc)
			}
			msgs = append(msgs, w)
		case "tool":
			// Chat Completions has no error flag on tool results; say it
			// in the content so the model knows the call failed.
			if m.IsError {
				content = "Error: " + content
			}
			msgs = append(msgs, oaiMessage{Role: "tool", Content: &content, ToolCallID: m.ToolCallID})
		default:
			return nil, fmt.Errorf("openai: message %d: unknown role %q", i, m.Role)
		}
	}
	body := &oaiRequest{Model: req.Model, Messages: msgs, Temperature: req.Temperature}
	if req.MaxTokens > 0 {
		if c.maxTokensField == "max_tokens" {
			body.MaxTokens = req.MaxTokens
		} else {
			body.MaxCompletionTokens = req.MaxTokens
		}
	}
	if stream {
		body.Stream = true
		body.StreamOptions = &oaiStreamOptions{IncludeUsage: true}
	}
	return body, nil
}

// oaiWireTool is a tool spec as Chat Completions takes it.
func oaiWireTool(t ToolSpec) any {
	var w oaiTool
	w.Type = "function"
	w.Function.Name, w.Function.Description = t.Name, t.Description
	w.Function.Parameters = t.InputSchema
	if len(bytes.TrimSpace(w.Function.Parameters)) == 0 {
		w.Function.Parameters = json.RawMessage(`{"type":"object","properties":{}}`)
	}
	return w
}

// send posts req and returns the 2xx response (body open) or the error.
func (c *OpenAIClient) send(ctx context.Context, req *LLMRequest, stream bool) (*http.Response, error) {
	w, err := c.buildRequest(req, stream)
	if err != nil {
		return nil, err
	}
	tools, err := c.tools.encode(c.Name(), req.Tools, oaiWireTool)
	if err != nil {
		return nil, err
	}
	hr, err := sseNewRequest(ctx, c.Name(), sseJoinURL(c.baseURL, "/chat/completions"), w, tools, req.Header)
	if err != nil {
		return nil, err
	}
	if c.apiKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.apiKey)
	} else {
		hr.Header.Del("Authorization")
	}
	return sseDo(ctx, c.hc, hr, stream, c.Name(), c.apiKey, "X-Request-Id", c.now(), oaiParseError)
}

// oaiStopReason maps a finish_reason to Anthropic's vocabulary. A reply
// that carries tool calls is "tool_use" whatever the server said (some
// compatible servers answer "stop" with tool calls); an unknown or missing
// reason is "end_turn".
func oaiStopReason(finish string, hasTools bool) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "content_filter":
		return "refusal"
	case "tool_calls", "function_call":
		return "tool_use"
	}
	if hasTools {
		return "tool_use"
	}
	return "end_turn"
}

// oaiToolInput parses a tool call's arguments string to a JSON object
// ("" → {}); ok false means the model sent something else.
func oaiToolInput(args string) (json.RawMessage, bool) {
	if strings.TrimSpace(args) == "" {
		return json.RawMessage(`{}`), true
	}
	in := json.RawMessage(args)
	return in, sseIsObject(in)
}

// Complete sends req and returns the whole answer (choices[0]). Errors are
// as for AnthropicClient.Complete; tool-call arguments that are not a JSON
// object make an invalid_response error.
func (c *OpenAIClient) Complete(ctx context.Context, req *LLMRequest) (*LLMResponse, error) {
	resp, err := c.send(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, rid, err := sseReadAnswer(ctx, resp, c.Name(), "X-Request-Id")
	if err != nil {
		return nil, err
	}
	var cr struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content   *string       `json:"content"`
				Refusal   *string       `json:"refusal"`
				ToolCalls []oaiToolCall `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *oaiUsage       `json:"usage"`
		Error *oaiErrorObject `json:"error"`
	}
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, sseInvalid(c.Name(), rid, "response is not valid JSON", nil, err)
	}
	if cr.Error != nil {
		return nil, &ProviderError{Provider: c.Name(), Type: cr.Error.kind(), Message: sseRedact(cr.Error.Message, c.apiKey), RequestID: rid}
	}
	if len(cr.Choices) == 0 {
		return nil, sseInvalid(c.Name(), rid, "response has no choices", nil, nil)
	}
	ch := cr.Choices[0]
	out := &LLMResponse{ID: cr.ID, Model: cr.Model}
	if ch.Message.Content != nil {
		out.Text = *ch.Message.Content
	} else if ch.Message.Refusal != nil {
		out.Text = *ch.Message.Refusal
	}
	if cr.Usage != nil {
		out.Usage = cr.Usage.usage()
	}
	for _, tc := range ch.Message.ToolCalls {
		in, ok := oaiToolInput(tc.Function.Arguments)
		if !ok {
			return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("tool call %q arguments are not a JSON object", tc.Function.Name), nil, nil)
		}
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Input: in})
	}
	out.StopReason = oaiStopReason(ch.FinishReason, len(out.ToolCalls) > 0)
	return out, nil
}

// oaiOpenTool accumulates one streamed tool call.
type oaiOpenTool struct {
	id, name string
	args     strings.Builder
}

// oaiStream is the assembly state of one streamed answer.
type oaiStream struct {
	out      LLMResponse
	text     []byte // the answer's text so far (appending to a string is quadratic)
	received int    // bytes of stream data, bounded like a complete answer
	tools    map[int]*oaiOpenTool
	finish   string
	emitted  bool
}

// result is the answer assembled so far.
func (s *oaiStream) result() *LLMResponse {
	s.out.Text = string(s.text)
	return &s.out
}

// flushTools completes the accumulated tool calls in index order, passing
// each to onEvent. It runs once, at finish_reason or at [DONE].
func (s *oaiStream) flushTools(onEvent func(StreamEvent) error) (badTool string, err error) {
	if s.emitted {
		return "", nil
	}
	s.emitted = true
	idx := make([]int, 0, len(s.tools))
	for i := range s.tools {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		t := s.tools[i]
		in, ok := oaiToolInput(t.args.String())
		if !ok {
			return t.name, nil
		}
		tc := ToolCall{ID: t.id, Name: t.name, Input: in}
		s.out.ToolCalls = append(s.out.ToolCalls, tc)
		if err := onEvent(StreamEvent{Type: "tool_call", ToolCall: &tc}); err != nil {
			return "", err
		}
	}
	return "", nil
}

// Stream sends req with stream:true and stream_options.include_usage, and
// assembles the answer from the chunks: content deltas are passed to
// onEvent as they come; tool-call fragments are joined by index and passed
// to onEvent, in index order, when finish_reason arrives. Usage comes from
// the final usage chunk. A stream ending before "data: [DONE]" yields a
// *ProviderError wrapping ErrStreamCut with Partial; an error object in the
// stream, a *ProviderError of its type. An error from onEvent stops the
// stream and is returned unchanged with the answer assembled so far.
func (c *OpenAIClient) Stream(ctx context.Context, req *LLMRequest, onEvent func(StreamEvent) error) (*LLMResponse, error) {
	resp, err := c.send(ctx, req, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rid := resp.Header.Get("X-Request-Id")
	if !sseMediaType(resp, "text/event-stream") {
		return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("unexpected content type %q for a stream", resp.Header.Get("Content-Type")), nil, nil)
	}
	s := &oaiStream{tools: map[int]*oaiOpenTool{}}
	partial := func() *LLMResponse {
		p := sseCloneResponse(s.result())
		p.StopReason = ""
		if s.finish != "" {
			p.StopReason = oaiStopReason(s.finish, len(p.ToolCalls) > 0)
		}
		return p
	}
	sr := sseNewReader(resp.Body)
	for {
		ev, err := sr.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil, sseCtxError(ctx, c.Name(), rid, partial())
			}
			if errors.Is(err, sseErrLineTooLong) {
				return nil, sseInvalid(c.Name(), rid, "stream line too long", partial(), err)
			}
			cut := ErrStreamCut
			if !errors.Is(err, io.EOF) {
				cut = fmt.Errorf("%w: %w", ErrStreamCut, err)
			}
			return nil, &ProviderError{Provider: c.Name(), RequestID: rid, Partial: partial(), Err: cut}
		}
		if s.received += len(ev.Data); s.received > sseMaxBody {
			return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("streamed answer longer than %d bytes", sseMaxBody), partial(), nil)
		}
		if strings.TrimSpace(ev.Data) == "[DONE]" {
			bad, err := s.flushTools(onEvent)
			if err != nil {
				return s.result(), err
			}
			if bad != "" {
				return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("tool call %q arguments are not a JSON object", bad), partial(), nil)
			}
			s.out.StopReason = oaiStopReason(s.finish, len(s.out.ToolCalls) > 0)
			return s.result(), nil
		}
		var chunk struct {
			ID      string `json:"id"`
			Model   string `json:"model"`
			Choices []struct {
				Index int `json:"index"`
				Delta struct {
					Content   *string       `json:"content"`
					ToolCalls []oaiToolCall `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *oaiUsage       `json:"usage"`
			Error *oaiErrorObject `json:"error"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &chunk); err != nil {
			return nil, sseInvalid(c.Name(), rid, "stream chunk is not valid JSON", partial(), err)
		}
		if chunk.Error != nil {
			return nil, &ProviderError{Provider: c.Name(), Type: chunk.Error.kind(), Message: sseRedact(chunk.Error.Message, c.apiKey), RequestID: rid, Partial: partial()}
		}
		if s.out.ID == "" {
			s.out.ID = chunk.ID
		}
		if s.out.Model == "" {
			s.out.Model = chunk.Model
		}
		if chunk.Usage != nil {
			s.out.Usage = chunk.Usage.usage()
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			if d := ch.Delta.Content; d != nil && *d != "" {
				s.text = append(s.text, *d...)
				if err := onEvent(StreamEvent{Type: "text", Text: *d}); err != nil {
					return s.result(), err
				}
			}
			for pos, tc := range ch.Delta.ToolCalls {
				i := pos
				if tc.Index != nil {
					i = *tc.Index
				}
				t := s.tools[i]
				if t == nil {
					t = &oaiOpenTool{}
					s.tools[i] = t
				}
				if tc.ID != "" {
					t.id = tc.ID
				}
				if tc.Function.Name != "" {
					t.name = tc.Function.Name
				}
				t.args.WriteString(tc.Function.Arguments)
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				s.finish = *ch.FinishReason
				bad, err := s.flushTools(onEvent)
				if err != nil {
					return s.result(), err
				}
				if bad != "" {
					return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("tool call %q arguments are not a JSON object", bad), partial(), nil)
				}
			}
		}
	}
}
