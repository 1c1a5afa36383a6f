package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// MockProvider is the embedded offline model. It is deterministic for a
// given conversation (apart from the optional failure rate), needs no
// network, estimates token usage, and uses the agent's tools the way a
// real model would: arithmetic goes to calculator, questions about the
// time to current_time, and the tool results come back as the answer.
type MockProvider struct {
	model       string
	latency     time.Duration // added to every call, to rehearse slow upstreams
	failureRate float64       // share of calls that fail with a retryable 503, in [0, 1]
}

// mockModel is the model name the embedded model reports.
const mockModel = "embedded-mock"

func newMockProvider(latency time.Duration, failureRate float64) *MockProvider {
	return &MockProvider{model: mockModel, latency: latency, failureRate: failureRate}
}

// Name implements Provider.
func (p *MockProvider) Name() string { return "mock" }

// Complete implements Provider.
func (p *MockProvider) Complete(ctx context.Context, req *LLMRequest) (*LLMResponse, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	return p.answer(req), nil
}

// Stream implements Provider: the answer arrives a few words at a time.
func (p *MockProvider) Stream(ctx context.Context, req *LLMRequest, onEvent func(StreamEvent) error) (*LLMResponse, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	resp := p.answer(req)
	for chunk := range strings.SplitAfterSeq(resp.Text, " ") {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := onEvent(StreamEvent{Type: "text", Text: chunk}); err != nil {
			return nil, err
		}
	}
	for i := range resp.ToolCalls {
		if err := onEvent(StreamEvent{Type: "tool_call", ToolCall: &resp.ToolCalls[i]}); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func (p *MockProvider) wait(ctx context.Context) error {
	if p.latency > 0 {
		t := time.NewTimer(p.latency)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	} else if err := ctx.Err(); err != nil {
		return err
	}
	if p.failureRate > 0 && rand.Float64() < p.failureRate {
		return &ProviderError{Provider: "mock", StatusCode: 503, Type: "overloaded_error",
			Message: "simulated failure (llm.mock_failure_rate)"}
	}
	return nil
}

func (p *MockProvider) answer(req *LLMRequest) *LLMResponse {
	resp := &LLMResponse{ID: fmt.Sprintf("mock_%d", len(req.Messages)), Model: p.model, StopReason: "end_turn"}
	if n := len(req.Messages); n > 0 {
		last := req.Messages[n-1]
		switch last.Role {
		case "tool":
			resp.Text = mockSummarizeTools(req.Messages)
		case "user":
			p.respondTo(req, last.Content, resp)
		}
	}
	if resp.Text == "" && len(resp.ToolCalls) == 0 {
		resp.Text = "I'm here. What would you like to know?"
	}
	resp.Usage = Usage{InputTokens: mockEstimateInput(req), OutputTokens: mockEstimateTokens(resp.Text)}
	for _, c := range resp.ToolCalls {
		resp.Usage.OutputTokens += mockEstimateTokens(c.Name) + mockEstimateTokens(string(c.Input))
	}
	return resp
}

func (p *MockProvider) respondTo(req *LLMRequest, text string, resp *LLMResponse) {
	id := fmt.Sprintf("toolu_mock_%d", len(req.Messages))
	if expr, ok := findArithmetic(text); ok && mockHasTool(req, "calculator") {
		in, _ := json.Marshal(map[string]string{"expression": expr})
		resp.Text = "Let me calculate that."
		resp.ToolCalls = []ToolCall{{ID: id, Name: "calculator", Input: in}}
		resp.StopReason = "tool_use"
		return
	}
	if zone, ok := wantsTime(text); ok && mockHasTool(req, "current_time") {
		in := []byte(`{}`)
		if zone != "" {
			in, _ = json.Marshal(map[string]string{"timezone": zone})
		}
		resp.Text = "Let me check the clock."
		resp.ToolCalls = []ToolCall{{ID: id, Name: "current_time", Input: in}}
		resp.StopReason = "tool_use"
		return
	}
	lower := strings.ToLower(text)
	switch {
	case mockHasWord(lower, "hello", "hi", "hey", "hallo", "greetings"):
		resp.Text = "Hello! I'm the embedded offline model of production-agent. I can do arithmetic " +
			"with the calculator tool and tell the time with current_time. Set ANTHROPIC_API_KEY or " +
			"OPENAI_API_KEY to talk to a real model."
	case mockHasWord(lower, "weather", "forecast"):
		resp.Text = "I can't check live weather: I'm an offline model with no internet access. " +
			"I can calculate things or tell you the current time, though."
	case mockHasWord(lower, "help", "can", "what"):
		resp.Text = "I'm an offline model, so my answers are simple. Try an arithmetic question such as " +
			"\"What is 12*7?\" or ask \"What time is it in Tokyo?\"."
	default:
		resp.Text = fmt.Sprintf("I received your message (%d words). I'm the embedded offline model: "+
			"I can calculate and tell the time; for anything else configure a real provider.",
			len(strings.Fields(text)))
	}
}

// mockSummarizeTools answers with the results of the most recent tool round.
func mockSummarizeTools(msgs []Message) string {
	start := len(msgs)
	for start > 0 && msgs[start-1].Role == "tool" {
		start--
	}
	var b strings.Builder
	for _, m := range msgs[start:] {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		switch {
		case m.IsError:
			fmt.Fprintf(&b, "The %s tool reported an error: %s.", m.ToolName, strings.TrimSuffix(m.Content, "."))
		case m.ToolName == "calculator":
			expr := mockToolInput(msgs[:start], m.ToolCallID, "expression")
			if expr != "" {
				fmt.Fprintf(&b, "%s = %s.", expr, m.Content)
			} else {
				fmt.Fprintf(&b, "The result is %s.", m.Content)
			}
		case m.ToolName == "current_time":
			fmt.Fprintf(&b, "The current time is %s.", m.Content)
		default:
			fmt.Fprintf(&b, "The %s tool returned: %s", m.ToolName, m.Content)
		}
	}
	return b.String()
}

// mockToolInput finds the string field key of the input of tool call id.
func mockToolInput(msgs []Message, id, key string) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, c := range msgs[i].ToolCalls {
			if c.ID == id {
				var in map[string]any
				if json.Unmarshal(c.Input, &in) == nil {
					s, _ := in[key].(string)
					return s
				}
				return ""
			}
		}
	}
	return ""
}

func mockHasTool(req *LLMRequest, name string) bool {
	for _, t := range req.Tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

func mockHasWord(text string, words ...string) bool {
	start := -1 // index where the current word began, or -1 between words
	for i, r := range text {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r > 127 {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && slices.Contains(words, text[start:i]) {
			return true
		}
		start = -1
	}
	return start >= 0 && slices.Contains(words, text[start:])
}

// mockEstimateTokens approximates a tokenizer: about four bytes a token.
func mockEstimateTokens(s string) int { return mockEstimateBytes(len(s)) }

// mockEstimateBytes is mockEstimateTokens for n bytes of text.
func mockEstimateBytes(n int) int { return (n + 3) / 4 }

func mockEstimateInput(req *LLMRequest) int {
	n := mockEstimateTokens(req.System)
	for _, m := range req.Messages {
		n += 4 + mockEstimateTokens(m.Content) // a few tokens of per-message framing
		for _, c := range m.ToolCalls {
			n += mockEstimateTokens(c.Name) + mockEstimateBytes(len(c.Input))
		}
	}
	for _, t := range req.Tools {
		n += mockEstimateTokens(t.Name) + mockEstimateTokens(t.Description) + mockEstimateBytes(len(t.InputSchema))
	}
	return n
}
