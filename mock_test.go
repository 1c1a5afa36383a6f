package main

import (
	"context"
	"strings"
	"testing"
)

func TestMockHasWord(t *testing.T) {
	for _, tt := range []struct {
		text string
		want bool
	}{
		{"hello", true},
		{"oh, hello!", true},
		{"say hi", true},
		{"hi-fi", true},
		{"this", false},   // "hi" inside a word
		{"shield", false}, // neither
		{"", false},
		{"héllo hey", true},
		{"hey\xff", false}, // an invalid byte joins the word, as before
	} {
		if got := mockHasWord(tt.text, "hello", "hi", "hey"); got != tt.want {
			t.Errorf("mockHasWord(%q) = %v; want %v", tt.text, got, tt.want)
		}
	}
}

// TestMockAnswers: what the embedded model says to each kind of message,
// with the tools it may call.
func TestMockAnswers(t *testing.T) {
	p := newMockProvider(0, 0)
	specs := newToolRegistry(nil).Specs()
	for _, tt := range []struct{ text, wantTool, wantText string }{
		{"What is 12*7?", "calculator", ""},
		{"what is pi times 2", "calculator", ""},
		{"What time is it in Tokyo?", "current_time", ""},
		{"Hello there! Please give me a short summary of what you can do.", "", "Hello!"},
		{"Will it rain? What's the weather forecast", "", "can't check live weather"},
		{"Lorem ipsum dolor sit amet", "", "(5 words)"},
	} {
		resp, err := p.Complete(context.Background(), &LLMRequest{Messages: []Message{{Role: "user", Content: tt.text}}, Tools: specs})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tt.wantTool != "" && (len(resp.ToolCalls) != 1 || resp.ToolCalls[0].Name != tt.wantTool):
			t.Errorf("%q: tool calls %+v; want one %s call", tt.text, resp.ToolCalls, tt.wantTool)
		case tt.wantTool == "" && (len(resp.ToolCalls) != 0 || !strings.Contains(resp.Text, tt.wantText)):
			t.Errorf("%q: %q with %d tool calls; want text containing %q", tt.text, resp.Text, len(resp.ToolCalls), tt.wantText)
		}
		if resp.Usage.InputTokens <= 0 || resp.Usage.OutputTokens <= 0 {
			t.Errorf("%q: usage %+v; want both counts estimated", tt.text, resp.Usage)
		}
	}
}
