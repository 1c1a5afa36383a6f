package main

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func startAction() StartConversation {
	return StartConversation{ConversationID: "c1", SessionID: "s1", UserID: "u1", MaxToolIterations: 2, MaxHistoryMessages: 50, At: t0}
}

// mustReduce applies actions in order and fails the test on any error.
func mustReduce(t *testing.T, s Conversation, actions ...Action) (Conversation, []Effect) {
	t.Helper()
	var effects []Effect
	for _, a := range actions {
		var err error
		s, effects, err = reduce(s, a)
		if err != nil {
			t.Fatalf("reduce(%s) in %q: %v", a.actionName(), s.Status, err)
		}
	}
	return s, effects
}

func calcCall(id string) ToolCall {
	return ToolCall{ID: id, Name: "calculator", Input: json.RawMessage(`{"expression":"12*7"}`)}
}

// Each state reachable in a turn, built through valid transitions.
func states(t *testing.T) map[string]Conversation {
	t.Helper()
	active, _ := mustReduce(t, Conversation{}, startAction())
	awaitLLM, _ := mustReduce(t, active, SendMessage{Text: "hi", At: t0})
	awaitTools, _ := mustReduce(t, awaitLLM, ProcessResponse{Response: LLMResponse{ToolCalls: []ToolCall{calcCall("a")}, StopReason: "tool_use"}})
	running, _ := mustReduce(t, awaitTools, ExecuteTool{CallID: "a"})
	ended, _ := mustReduce(t, active, EndConversation{At: t0})
	return map[string]Conversation{
		"new": {}, "active": active, "awaiting_llm": awaitLLM, "awaiting_tools": awaitTools,
		"tool_running": running, "ended": ended,
	}
}

func TestReduceTransitionMatrix(t *testing.T) {
	st := states(t)
	actions := map[string]Action{
		"StartConversation": startAction(),
		"SendMessage":       SendMessage{Text: "again", At: t0},
		"ProcessResponse":   ProcessResponse{Response: LLMResponse{Text: "ok", StopReason: "end_turn"}},
		"ExecuteTool":       ExecuteTool{CallID: "a"},
		"ToolResult":        ToolResult{CallID: "a", Output: "84"},
		"LLMFailed":         LLMFailed{Reason: "boom"},
		"EndConversation":   EndConversation{},
	}
	// want[state][action] = resulting status, or "" when the transition is invalid.
	want := map[string]map[string]ConversationStatus{
		"new": {"StartConversation": StatusActive},
		"active": {
			"SendMessage": StatusAwaitingLLM, "EndConversation": StatusEnded,
		},
		"awaiting_llm": {
			"ProcessResponse": StatusActive, "LLMFailed": StatusActive, "EndConversation": StatusEnded,
		},
		"awaiting_tools": {
			"ExecuteTool": StatusAwaitingTools, "LLMFailed": StatusActive, "EndConversation": StatusEnded,
		},
		"tool_running": {
			"ToolResult": StatusAwaitingLLM, "LLMFailed": StatusActive, "EndConversation": StatusEnded,
		},
		"ended": {},
	}
	for sname, s := range st {
		for aname, a := range actions {
			got, effects, err := reduce(s, a)
			wantStatus, ok := want[sname][aname]
			if !ok {
				if !errors.Is(err, ErrInvalidTransition) {
					t.Errorf("reduce(%s, %s) error = %v; want ErrInvalidTransition", sname, aname, err)
				}
				if !reflect.DeepEqual(got, s) || effects != nil {
					t.Errorf("reduce(%s, %s) changed state or returned effects on error", sname, aname)
				}
				continue
			}
			if err != nil {
				t.Errorf("reduce(%s, %s) = %v; want status %q", sname, aname, err, wantStatus)
				continue
			}
			if got.Status != wantStatus {
				t.Errorf("reduce(%s, %s).Status = %q; want %q", sname, aname, got.Status, wantStatus)
			}
		}
	}
}

func TestReduceFullToolTurn(t *testing.T) {
	s, _ := mustReduce(t, Conversation{}, startAction())
	s, eff := mustReduce(t, s, SendMessage{Text: "What is 12*7?", At: t0})
	if !reflect.DeepEqual(eff, []Effect{CallLLM{}}) {
		t.Fatalf("SendMessage effects = %#v; want [CallLLM]", eff)
	}
	s, eff = mustReduce(t, s, ProcessResponse{Response: LLMResponse{
		Text: "Let me calculate.", ToolCalls: []ToolCall{calcCall("a"), calcCall("b")}, StopReason: "tool_use",
		Usage: Usage{InputTokens: 10, OutputTokens: 5},
	}})
	if eff != nil || len(s.Pending) != 2 || s.ToolIterations != 1 {
		t.Fatalf("after tool_use: effects %v, pending %d, iterations %d", eff, len(s.Pending), s.ToolIterations)
	}
	s, eff = mustReduce(t, s, ExecuteTool{CallID: "b"})
	if !reflect.DeepEqual(eff, []Effect{RunTool{Call: calcCall("b")}}) {
		t.Fatalf("ExecuteTool effects = %#v", eff)
	}
	s, _ = mustReduce(t, s, ExecuteTool{CallID: "a"})
	// Results arrive out of order; history records them in call order.
	s, eff = mustReduce(t, s, ToolResult{CallID: "b", Output: "84"})
	if eff != nil || s.Status != StatusAwaitingTools {
		t.Fatalf("after first result: effects %v, status %q", eff, s.Status)
	}
	s, eff = mustReduce(t, s, ToolResult{CallID: "a", Output: "division by zero", IsError: true})
	if !reflect.DeepEqual(eff, []Effect{CallLLM{}}) || s.Status != StatusAwaitingLLM {
		t.Fatalf("after last result: effects %v, status %q", eff, s.Status)
	}
	s, eff = mustReduce(t, s, ProcessResponse{Response: LLMResponse{Text: "84", StopReason: "end_turn", Usage: Usage{InputTokens: 20, OutputTokens: 2}}})
	want := Reply{
		Text: "84", StopReason: "end_turn", Usage: Usage{InputTokens: 30, OutputTokens: 7},
		ToolCalls: []ToolCallRecord{
			{ID: "a", Name: "calculator", Input: calcCall("a").Input, Output: "division by zero", IsError: true},
			{ID: "b", Name: "calculator", Input: calcCall("b").Input, Output: "84"},
		},
	}
	if !reflect.DeepEqual(eff, []Effect{want}) {
		t.Fatalf("final effects = %#v; want %#v", eff, want)
	}
	roles := []string{}
	for _, m := range s.Messages {
		roles = append(roles, m.Role+":"+m.ToolCallID)
	}
	wantRoles := []string{"user:", "assistant:", "tool:a", "tool:b", "assistant:"}
	if !reflect.DeepEqual(roles, wantRoles) {
		t.Errorf("history = %v; want %v", roles, wantRoles)
	}
	if s.LLMCalls != 2 || s.Usage != (Usage{InputTokens: 30, OutputTokens: 7}) {
		t.Errorf("LLMCalls %d usage %+v", s.LLMCalls, s.Usage)
	}
}

func TestReduceToolIterationCap(t *testing.T) {
	for _, max := range []int{0, 1, 3} {
		s, _ := mustReduce(t, Conversation{}, StartConversation{ConversationID: "c", SessionID: "s", UserID: "u", MaxToolIterations: max, MaxHistoryMessages: 100})
		s, _ = mustReduce(t, s, SendMessage{Text: "loop"})
		rounds := 0
		for {
			var eff []Effect
			s, eff = mustReduce(t, s, ProcessResponse{Response: LLMResponse{ToolCalls: []ToolCall{calcCall("x")}, StopReason: "tool_use"}})
			if s.Status == StatusActive {
				r := eff[0].(Reply)
				if r.StopReason != StopMaxToolIterations || r.Text == "" {
					t.Errorf("max=%d: reply %+v; want stop %q with text", max, r, StopMaxToolIterations)
				}
				break
			}
			rounds++
			s, _ = mustReduce(t, s, ExecuteTool{CallID: "x"}, ToolResult{CallID: "x", Output: "1"})
		}
		if rounds != max {
			t.Errorf("max=%d: ran %d tool rounds", max, rounds)
		}
		last := s.Messages[len(s.Messages)-1]
		if last.Role != "assistant" || len(last.ToolCalls) != 0 {
			t.Errorf("max=%d: history ends with %+v; want a plain assistant message", max, last)
		}
	}
}

func TestReduceLLMFailedRollsBackTurn(t *testing.T) {
	s, _ := mustReduce(t, Conversation{}, startAction(), SendMessage{Text: "one"},
		ProcessResponse{Response: LLMResponse{Text: "first"}})
	before := len(s.Messages)
	s, _ = mustReduce(t, s, SendMessage{Text: "two"},
		ProcessResponse{Response: LLMResponse{ToolCalls: []ToolCall{calcCall("a")}, Usage: Usage{InputTokens: 9}}},
		ExecuteTool{CallID: "a"}, ToolResult{CallID: "a", Output: "84"}, LLMFailed{Reason: "timeout"})
	if len(s.Messages) != before || s.Status != StatusActive || s.Pending != nil {
		t.Errorf("after LLMFailed: %d messages (want %d), status %q", len(s.Messages), before, s.Status)
	}
	if s.Usage.InputTokens != 9 {
		t.Errorf("usage after failure = %+v; spent tokens must be kept", s.Usage)
	}
	// The conversation goes on normally.
	mustReduce(t, s, SendMessage{Text: "three"})
}

func TestReduceInvalidInputs(t *testing.T) {
	st := states(t)
	tests := []struct {
		name  string
		state string
		a     Action
	}{
		{"start without ids", "new", StartConversation{MaxHistoryMessages: 10}},
		{"start with tiny history", "new", StartConversation{ConversationID: "c", SessionID: "s", UserID: "u", MaxHistoryMessages: 1}},
		{"start with negative iterations", "new", StartConversation{ConversationID: "c", SessionID: "s", UserID: "u", MaxToolIterations: -1, MaxHistoryMessages: 10}},
		{"empty message", "active", SendMessage{}},
		{"tool call without id", "awaiting_llm", ProcessResponse{Response: LLMResponse{ToolCalls: []ToolCall{{Name: "calculator"}}}}},
		{"duplicate tool call ids", "awaiting_llm", ProcessResponse{Response: LLMResponse{ToolCalls: []ToolCall{calcCall("a"), calcCall("a")}}}},
		{"execute unknown call", "awaiting_tools", ExecuteTool{CallID: "zz"}},
		{"execute twice", "tool_running", ExecuteTool{CallID: "a"}},
		{"result before execute", "awaiting_tools", ToolResult{CallID: "a"}},
		{"result for unknown call", "tool_running", ToolResult{CallID: "zz"}},
		{"nil action", "active", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := st[tt.state]
			got, eff, err := reduce(s, tt.a)
			if !errors.Is(err, ErrInvalidTransition) {
				t.Fatalf("reduce = %v; want ErrInvalidTransition", err)
			}
			if !reflect.DeepEqual(got, s) || eff != nil {
				t.Errorf("state changed or effects returned on error")
			}
		})
	}
	// A second result for the same call is rejected too.
	s, _ := mustReduce(t, st["new"], startAction(), SendMessage{Text: "x"},
		ProcessResponse{Response: LLMResponse{ToolCalls: []ToolCall{calcCall("a"), calcCall("b")}}},
		ExecuteTool{CallID: "a"}, ToolResult{CallID: "a", Output: "1"})
	if _, _, err := reduce(s, ToolResult{CallID: "a", Output: "2"}); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("duplicate ToolResult = %v; want ErrInvalidTransition", err)
	}
}

func TestReduceDoesNotMutateInput(t *testing.T) {
	s, _ := mustReduce(t, Conversation{}, startAction(), SendMessage{Text: "a"},
		ProcessResponse{Response: LLMResponse{ToolCalls: []ToolCall{calcCall("a"), calcCall("b")}}})
	snapshot := s
	snapshotPending := append([]PendingTool(nil), s.Pending...)
	s2, _ := mustReduce(t, s, ExecuteTool{CallID: "a"}, ExecuteTool{CallID: "b"},
		ToolResult{CallID: "a"}, ToolResult{CallID: "b"})
	if !reflect.DeepEqual(s.Pending, snapshotPending) || len(snapshot.Messages) != len(s.Messages) {
		t.Errorf("reduce modified its input state")
	}
	// Appending to the old state must not clobber the new one.
	_, _ = mustReduce(t, s, LLMFailed{})
	if s2.Messages[len(s2.Messages)-1].ToolCallID != "b" {
		t.Errorf("new state's history was overwritten through a shared array")
	}
}

func TestPruneHistoryKeepsToolPairs(t *testing.T) {
	turn := func(tools int) []Message {
		m := []Message{{Role: "user"}}
		if tools > 0 {
			m = append(m, Message{Role: "assistant", ToolCalls: make([]ToolCall, tools)})
			for i := 0; i < tools; i++ {
				m = append(m, Message{Role: "tool"})
			}
		}
		return append(m, Message{Role: "assistant"})
	}
	var hist []Message
	hist = append(hist, turn(2)...) // 5 messages
	hist = append(hist, turn(0)...) // 2
	hist = append(hist, turn(1)...) // 4
	tests := []struct{ max, want int }{{11, 11}, {10, 6}, {6, 6}, {5, 4}, {4, 4}, {3, 4}, {0, 4}}
	for _, tt := range tests {
		got := pruneHistory(hist, tt.max)
		if len(got) != tt.want {
			t.Errorf("pruneHistory(11 msgs, %d) kept %d; want %d", tt.max, len(got), tt.want)
		}
		if len(got) > 0 && got[0].Role != "user" {
			t.Errorf("pruneHistory(%d) starts with %q; want a user message", tt.max, got[0].Role)
		}
	}
	// Through the reducer: history never exceeds the bound.
	s, _ := mustReduce(t, Conversation{}, StartConversation{ConversationID: "c", SessionID: "s", UserID: "u", MaxToolIterations: 1, MaxHistoryMessages: 6})
	for i := 0; i < 10; i++ {
		s, _ = mustReduce(t, s, SendMessage{Text: "q"},
			ProcessResponse{Response: LLMResponse{ToolCalls: []ToolCall{calcCall("a")}}},
			ExecuteTool{CallID: "a"}, ToolResult{CallID: "a"}, ProcessResponse{Response: LLMResponse{Text: "r"}})
		if len(s.Messages) > 6 {
			t.Fatalf("turn %d: %d messages kept with max 6", i, len(s.Messages))
		}
		if s.Messages[0].Role != "user" {
			t.Fatalf("turn %d: history starts with %q", i, s.Messages[0].Role)
		}
	}
}
