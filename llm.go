package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Message is one entry of a conversation in a provider-neutral form.
//
// Roles: "user" (Content is the user's text), "assistant" (Content is the
// model's text, ToolCalls the tools it asked for, possibly both), and "tool"
// (the result of one tool call: ToolCallID, ToolName, Content, IsError).
// Provider clients translate this form to their wire format: Anthropic groups
// consecutive "tool" messages into one user message of tool_result blocks;
// OpenAI sends each as a role "tool" message.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	ToolName   string     `json:"tool_name,omitempty"`
	IsError    bool       `json:"is_error,omitempty"`
	Timestamp  time.Time  `json:"timestamp"`
}

// ToolCall is a model's request to run a tool. Input is a JSON object.
type ToolCall struct {
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// ToolSpec describes a tool to the model. InputSchema is a JSON Schema object.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// Usage counts tokens of one or more LLM calls.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens,omitempty"`
}

// Add returns the element-wise sum of u and v.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens:              u.InputTokens + v.InputTokens,
		OutputTokens:             u.OutputTokens + v.OutputTokens,
		CacheCreationInputTokens: u.CacheCreationInputTokens + v.CacheCreationInputTokens,
		CacheReadInputTokens:     u.CacheReadInputTokens + v.CacheReadInputTokens,
	}
}

// LLMRequest is one call to a model.
type LLMRequest struct {
	Model       string
	System      string
	Messages    []Message
	Tools       []ToolSpec
	MaxTokens   int
	Temperature float64
	// Header holds extra request headers to propagate (traceparent, tracestate).
	Header map[string]string
}

// LLMResponse is a model's complete answer to one LLMRequest.
//
// StopReason uses Anthropic's vocabulary whatever the provider:
// "end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn",
// "refusal" (OpenAI's "stop" → end_turn, "length" → max_tokens,
// "tool_calls"/"function_call" → tool_use, "content_filter" → refusal).
type LLMResponse struct {
	ID         string
	Model      string
	Text       string
	ToolCalls  []ToolCall
	StopReason string
	Usage      Usage
}

// StreamEvent is one increment of a streamed answer, delivered in order.
// Type "text" carries Text (a delta); type "tool_call" carries a complete
// ToolCall once its input JSON has been fully received.
type StreamEvent struct {
	Type     string
	Text     string
	ToolCall *ToolCall
}

// Provider is an LLM backend. Implementations are safe for concurrent use.
type Provider interface {
	// Name is the provider's label in metrics and audit: "anthropic", "openai", "mock".
	Name() string
	// Complete sends req and returns the whole answer.
	Complete(ctx context.Context, req *LLMRequest) (*LLMResponse, error)
	// Stream sends req with streaming on, calls onEvent for each increment,
	// and returns the assembled answer. If the stream ends before the
	// provider's end marker it returns an error wrapping ErrStreamCut, with
	// the usage seen so far in the *ProviderError or the partial response.
	// An error returned by onEvent aborts the stream and is returned.
	Stream(ctx context.Context, req *LLMRequest, onEvent func(StreamEvent) error) (*LLMResponse, error)
}

// ErrStreamCut reports a streamed answer that ended without its end marker.
var ErrStreamCut = errors.New("llm stream ended before completion")

// ProviderError is an error answer (or a failed exchange) with an LLM provider.
type ProviderError struct {
	Provider   string
	StatusCode int           // HTTP status; 0 for transport errors and stream errors
	Type       string        // provider's error type, e.g. "overloaded_error", "rate_limit_error"
	Message    string        // provider's message, safe to log (never contains our key)
	RequestID  string        // provider's request id header (request-id / x-request-id)
	RetryAfter time.Duration // from retry-after / retry-after-ms; 0 when absent
	Partial    *LLMResponse  // what was received before a stream failed, if anything
	Err        error         // underlying cause (transport error, ErrStreamCut, …)
}

func (e *ProviderError) Error() string {
	s := e.Provider + ": "
	if e.StatusCode != 0 {
		s += fmt.Sprintf("status %d", e.StatusCode)
		if e.Type != "" {
			s += " " + e.Type
		}
	} else if e.Type != "" {
		s += e.Type
	} else {
		s += "request failed"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request-id " + e.RequestID + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ProviderError) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed if sent again:
// transport errors, 408, 409, 429, 5xx and 529, and provider stream errors of
// type overloaded_error / api_error. 4xx other than 408/409/429 are final.
func (e *ProviderError) Retryable() bool {
	switch {
	case e.StatusCode == 0:
		switch e.Type {
		case "invalid_response", "invalid_request_error", "authentication_error", "permission_error",
			"not_found_error", "billing_error", "request_too_large":
			return false
		}
		return true
	case e.StatusCode == 429:
		// Out of quota or over a spend limit is final; plain rate limiting is not.
		return e.Type != "insufficient_quota" && e.Type != "billing_error"
	case e.StatusCode == 408, e.StatusCode == 409:
		return true
	case e.StatusCode >= 500:
		return true
	}
	return false
}

// Excluded reports errors that say nothing about the provider's health, so
// the circuit breaker counts them neither as success nor failure: 4xx
// answers other than 408 and 429 (our request was wrong, not the upstream).
func (e *ProviderError) Excluded() bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 && e.StatusCode != 408 && e.StatusCode != 429
}

// RetryAfterHint returns the provider's Retry-After, if any (used by retry).
func (e *ProviderError) RetryAfterHint() time.Duration { return e.RetryAfter }
