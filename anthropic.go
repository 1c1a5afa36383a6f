package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	// anthDefaultBaseURL is the Anthropic API root, without /v1 (the SDK
	// convention; the client appends /v1/messages).
	anthDefaultBaseURL = "https://api.anthropic.com"
	// anthVersion is the Messages API version header value.
	anthVersion = "2023-06-01"
	// anthDefaultMaxTokens is sent when LLMRequest.MaxTokens is not set:
	// the Messages API requires max_tokens.
	anthDefaultMaxTokens = 4096
)

// AnthropicClient is a Provider speaking the Anthropic Messages API
// (POST {base}/v1/messages) over net/http. The zero value is not usable;
// build one with newAnthropicClient. It is safe for concurrent use.
type AnthropicClient struct {
	baseURL string
	apiKey  string
	hc      *http.Client
	now     func() time.Time // reads the clock for Retry-After HTTP-dates
	tools   sseToolsCache
}

// newAnthropicClient returns a client for baseURL ("" → the public API; the
// URL is the root without /v1, a trailing slash is tolerated) using apiKey
// as x-api-key. A nil hc means newLLMHTTPClient(0).
func newAnthropicClient(baseURL, apiKey string, hc *http.Client) *AnthropicClient {
	if baseURL == "" {
		baseURL = anthDefaultBaseURL
	}
	if hc == nil {
		hc = newLLMHTTPClient(0)
	}
	return &AnthropicClient{baseURL: baseURL, apiKey: apiKey, hc: hc, now: time.Now}
}

// Name returns "anthropic".
func (c *AnthropicClient) Name() string { return "anthropic" }

// anthRequest is the Messages API request body.
type anthRequest struct {
	Model       string        `json:"model"`
	MaxTokens   int           `json:"max_tokens"`
	Temperature float64       `json:"temperature"`
	System      string        `json:"system,omitempty"`
	Messages    []anthMessage `json:"messages"`
	Stream      bool          `json:"stream,omitempty"`
}

type anthMessage struct {
	Role    string      `json:"role"`
	Content []anthBlock `json:"content"`
}

// anthBlock is a request content block: text, tool_use or tool_result.
type anthBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   string          `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

type anthTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// anthResponse is the Messages API response (and message_start's message).
type anthResponse struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Model      string          `json:"model"`
	Content    []anthRespBlock `json:"content"`
	StopReason string          `json:"stop_reason"`
	Usage      anthUsage       `json:"usage"`
}

// anthRespBlock is a response content block; types other than text and
// tool_use (thinking, server tools) are ignored.
type anthRespBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// anthUsage has pointer fields so that a message_delta's usage overrides
// only the counts it carries.
type anthUsage struct {
	InputTokens              *int `json:"input_tokens"`
	OutputTokens             *int `json:"output_tokens"`
	CacheCreationInputTokens *int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int `json:"cache_read_input_tokens"`
}

// apply overwrites u's counts with those present in a.
func (a anthUsage) apply(u *Usage) {
	for _, f := range []struct {
		src *int
		dst *int
	}{
		{a.InputTokens, &u.InputTokens},
		{a.OutputTokens, &u.OutputTokens},
		{a.CacheCreationInputTokens, &u.CacheCreationInputTokens},
		{a.CacheReadInputTokens, &u.CacheReadInputTokens},
	} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
}

// anthErrorBody is {"type":"error","error":{"type","message"},"request_id"}.
type anthErrorBody struct {
	Type  string `json:"type"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// anthParseError extracts the error of an Anthropic error body.
func anthParseError(body []byte) (typ, msg, requestID string, ok bool) {
	var e anthErrorBody
	if json.Unmarshal(body, &e) != nil || e.Error == nil {
		return "", "", "", false
	}
	return e.Error.Type, e.Error.Message, e.RequestID, true
}

// anthBuildRequest translates req to the wire form. Consecutive messages of
// the same wire role are merged into one message (so consecutive "tool"
// messages become one user message of tool_result blocks), and empty text
// blocks, which the API rejects, are left out.
func anthBuildRequest(req *LLMRequest, stream bool) (*anthRequest, error) {
	w := &anthRequest{
		Model:       req.Model,
		MaxTokens:   req.MaxTokens,
		Temperature: req.Temperature,
		System:      req.System,
		Messages:    []anthMessage{},
		Stream:      stream,
	}
	if w.MaxTokens <= 0 {
		w.MaxTokens = anthDefaultMaxTokens
	}
	for i, m := range req.Messages {
		var role string
		var blocks []anthBlock
		switch m.Role {
		case "user":
			role = "user"
			if m.Content != "" {
				blocks = append(blocks, anthBlock{Type: "text", Text: m.Content})
			}
		case "assistant":
			role = "assistant"
			if m.Content != "" {
				blocks = append(blocks, anthBlock{Type: "text", Text: m.Content})
			}
			for _, tc := range m.ToolCalls {
				blocks = append(blocks, anthBlock{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: anthInput(tc.Input)})
			}
		case "tool":
			role = "user"
			blocks = append(blocks, anthBlock{Type: "tool_result", ToolUseID: m.ToolCallID, Content: m.Content, IsError: m.IsError})
		default:
			return nil, fmt.Errorf("anthropic: message %d: unknown role %q", i, m.Role)
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(w.Messages); n > 0 && w.Messages[n-1].Role == role {
			w.Messages[n-1].Content = append(w.Messages[n-1].Content, blocks...)
			continue
		}
		w.Messages = append(w.Messages, anthMessage{Role: role, Content: blocks})
	}
	return w, nil
}

// anthWireTool is a tool spec as the Messages API takes it.
func anthWireTool(t ToolSpec) any {
	schema := t.InputSchema
	if len(bytes.TrimSpace(schema)) == 0 {
		schema = json.RawMessage(`{"type":"object"}`)
	}
	return anthTool{Name: t.Name, Description: t.Description, InputSchema: schema}
}

// anthInput returns a tool_use input: the call's JSON object, or {} when
// it is empty or null.
func anthInput(in json.RawMessage) json.RawMessage {
	t := bytes.TrimSpace(in)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return json.RawMessage(`{}`)
	}
	return in
}

// anthToolInput normalises a tool_use input received from the API.
func anthToolInput(in json.RawMessage) (json.RawMessage, bool) {
	in = anthInput(in)
	return in, sseIsObject(in)
}

// send posts req and returns the 2xx response (body open) or the error.
func (c *AnthropicClient) send(ctx context.Context, req *LLMRequest, stream bool) (*http.Response, error) {
	w, err := anthBuildRequest(req, stream)
	if err != nil {
		return nil, err
	}
	tools, err := c.tools.encode(c.Name(), req.Tools, anthWireTool)
	if err != nil {
		return nil, err
	}
	hr, err := sseNewRequest(ctx, c.Name(), sseJoinURL(c.baseURL, "/v1/messages"), w, tools, req.Header)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("X-Api-Key", c.apiKey)
	hr.Header.Set("Anthropic-Version", anthVersion)
	return sseDo(ctx, c.hc, hr, stream, c.Name(), c.apiKey, "Request-Id", c.now(), anthParseError)
}

// Complete sends req and returns the whole answer. Errors are
// *ProviderError (status, transport, invalid_response; a done ctx is wrapped
// so that errors.Is(err, ctx.Err()) holds) or, for a request that cannot be
// encoded (unknown role), a plain error.
func (c *AnthropicClient) Complete(ctx context.Context, req *LLMRequest) (*LLMResponse, error) {
	resp, err := c.send(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, rid, err := sseReadAnswer(ctx, resp, c.Name(), "Request-Id")
	if err != nil {
		return nil, err
	}
	var ar anthResponse
	if err := json.Unmarshal(body, &ar); err != nil {
		return nil, sseInvalid(c.Name(), rid, "response is not valid JSON", nil, err)
	}
	if ar.Type != "message" {
		return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("response type %q, want \"message\"", ar.Type), nil, nil)
	}
	out := &LLMResponse{ID: ar.ID, Model: ar.Model, StopReason: ar.StopReason}
	ar.Usage.apply(&out.Usage)
	for _, b := range ar.Content {
		switch b.Type {
		case "text":
			out.Text += b.Text
		case "tool_use":
			in, ok := anthToolInput(b.Input)
			if !ok {
				return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("tool_use %q input is not a JSON object", b.Name), nil, nil)
			}
			out.ToolCalls = append(out.ToolCalls, ToolCall{ID: b.ID, Name: b.Name, Input: in})
		}
	}
	return out, nil
}

// anthStreamEvent is any event of a Messages stream.
type anthStreamEvent struct {
	Type         string         `json:"type"`
	Message      *anthResponse  `json:"message"`
	Index        int            `json:"index"`
	ContentBlock *anthRespBlock `json:"content_block"`
	Delta        *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage *anthUsage `json:"usage"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// anthOpenTool is a tool_use block whose input is still arriving.
type anthOpenTool struct {
	id, name string
	start    json.RawMessage // input given in content_block_start
	partial  bytes.Buffer    // concatenated input_json_delta pieces
	deltas   bool
}

// Stream sends req with stream:true and assembles the answer from the
// events: text deltas are passed to onEvent as they come, each tool call
// once its block stops. Usage: input (and cache) counts from message_start,
// the cumulative output count (and any other count present) from
// message_delta. An error event, a stream ending before message_stop
// (wrapping ErrStreamCut) or a done ctx yields a *ProviderError whose
// Partial holds what had arrived. An error from onEvent stops the stream and
// is returned unchanged together with the answer assembled so far.
func (c *AnthropicClient) Stream(ctx context.Context, req *LLMRequest, onEvent func(StreamEvent) error) (*LLMResponse, error) {
	resp, err := c.send(ctx, req, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rid := resp.Header.Get("Request-Id")
	if !sseMediaType(resp, "text/event-stream") {
		return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("unexpected content type %q for a stream", resp.Header.Get("Content-Type")), nil, nil)
	}
	out := &LLMResponse{}
	// Text grows in a byte slice (appending to a string is quadratic) and
	// the whole stream is bounded like a complete answer.
	var text []byte
	received := 0
	withText := func() *LLMResponse { out.Text = string(text); return out }
	open := map[int]*anthOpenTool{}
	sr := sseNewReader(resp.Body)
	for {
		ev, err := sr.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil, sseCtxError(ctx, c.Name(), rid, sseCloneResponse(withText()))
			}
			if errors.Is(err, sseErrLineTooLong) {
				return nil, sseInvalid(c.Name(), rid, "stream line too long", sseCloneResponse(withText()), err)
			}
			cut := ErrStreamCut
			if !errors.Is(err, io.EOF) {
				cut = fmt.Errorf("%w: %w", ErrStreamCut, err)
			}
			return nil, &ProviderError{Provider: c.Name(), RequestID: rid, Partial: sseCloneResponse(withText()), Err: cut}
		}
		if received += len(ev.Data); received > sseMaxBody {
			return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("streamed answer longer than %d bytes", sseMaxBody), sseCloneResponse(withText()), nil)
		}
		var se anthStreamEvent
		if err := json.Unmarshal([]byte(ev.Data), &se); err != nil {
			return nil, sseInvalid(c.Name(), rid, "stream event is not valid JSON", sseCloneResponse(withText()), err)
		}
		if se.Type == "" {
			se.Type = ev.Event
		}
		switch se.Type {
		case "message_start":
			if se.Message != nil {
				out.ID, out.Model = se.Message.ID, se.Message.Model
				se.Message.Usage.apply(&out.Usage)
			}
		case "content_block_start":
			if se.ContentBlock != nil && se.ContentBlock.Type == "tool_use" {
				open[se.Index] = &anthOpenTool{id: se.ContentBlock.ID, name: se.ContentBlock.Name, start: se.ContentBlock.Input}
			}
			if se.ContentBlock != nil && se.ContentBlock.Type == "text" && se.ContentBlock.Text != "" {
				text = append(text, se.ContentBlock.Text...)
				if err := onEvent(StreamEvent{Type: "text", Text: se.ContentBlock.Text}); err != nil {
					return withText(), err
				}
			}
		case "content_block_delta":
			if se.Delta == nil {
				continue
			}
			switch se.Delta.Type {
			case "text_delta":
				if se.Delta.Text == "" {
					continue
				}
				text = append(text, se.Delta.Text...)
				if err := onEvent(StreamEvent{Type: "text", Text: se.Delta.Text}); err != nil {
					return withText(), err
				}
			case "input_json_delta":
				if t := open[se.Index]; t != nil {
					t.partial.WriteString(se.Delta.PartialJSON)
					t.deltas = true
				}
			}
		case "content_block_stop":
			t := open[se.Index]
			if t == nil {
				continue
			}
			delete(open, se.Index)
			in := t.start
			if t.deltas {
				in = json.RawMessage(bytes.Clone(t.partial.Bytes()))
			}
			in, ok := anthToolInput(in)
			if !ok {
				return nil, sseInvalid(c.Name(), rid, fmt.Sprintf("tool_use %q input is not a JSON object", t.name), sseCloneResponse(withText()), nil)
			}
			tc := ToolCall{ID: t.id, Name: t.name, Input: in}
			out.ToolCalls = append(out.ToolCalls, tc)
			if err := onEvent(StreamEvent{Type: "tool_call", ToolCall: &tc}); err != nil {
				return withText(), err
			}
		case "message_delta":
			if se.Delta != nil && se.Delta.StopReason != "" {
				out.StopReason = se.Delta.StopReason
			}
			if se.Usage != nil {
				se.Usage.apply(&out.Usage)
			}
		case "message_stop":
			return withText(), nil
		case "error":
			pe := &ProviderError{Provider: c.Name(), RequestID: rid, Partial: sseCloneResponse(withText()), Type: "api_error"}
			if se.Error != nil {
				pe.Type, pe.Message = se.Error.Type, sseRedact(se.Error.Message, c.apiKey)
			}
			return nil, pe
		}
		// ping and event types added later are ignored.
	}
}
