package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A provider that streams text without end is cut at sseMaxBody, with
// what arrived kept as the partial answer, instead of growing memory until
// the deadline.
func TestStreamedAnswerIsBounded(t *testing.T) {
	delta := strings.Repeat("x", 1000)
	frames := map[string]func(i int) string{
		"anthropic": func(i int) string {
			if i == 0 {
				return "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n" +
					"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
			}
			return fmt.Sprintf("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n", delta)
		},
		"openai": func(i int) string {
			return fmt.Sprintf("data: {\"id\":\"c\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", delta)
		},
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for i := 0; i < 2*sseMaxBody/len(delta); i++ {
					if _, err := fmt.Fprint(w, frame(i)); err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			var p Provider = newAnthropicClient(srv.URL, "k", srv.Client())
			if name == "openai" {
				p = newOpenAIClient(srv.URL+"/v1", "k", srv.Client())
			}
			streamed := 0
			_, err := p.Stream(context.Background(), &LLMRequest{Model: "m", MaxTokens: 10,
				Messages: []Message{{Role: "user", Content: "hi"}}}, func(ev StreamEvent) error {
				streamed += len(ev.Text)
				return nil
			})
			var pe *ProviderError
			if !errors.As(err, &pe) || pe.Type != "invalid_response" || pe.Retryable() || !strings.Contains(pe.Error(), "longer than") {
				t.Fatalf("Stream = %v; want a non-retryable invalid_response naming the limit", err)
			}
			if streamed > sseMaxBody || pe.Partial == nil || len(pe.Partial.Text) != streamed {
				t.Errorf("streamed %d bytes, partial %d; want ≤ %d and equal", streamed, len(pe.Partial.Text), sseMaxBody)
			}
		})
	}
}
