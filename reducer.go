package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The conversation state machine. reduce is pure: the same state and action
// always give the same result, and it never reads a clock, does I/O or draws
// random numbers — times and ids arrive inside actions. The agent (agent.go)
// runs the effects reduce returns and feeds their outcomes back as actions.
//
//	""            --StartConversation--> active
//	active        --SendMessage-->       awaiting_llm    [CallLLM]
//	awaiting_llm  --ProcessResponse-->   awaiting_tools  (the answer asked for tools)
//	                                     active          [Reply] (the turn is over)
//	awaiting_tools--ExecuteTool-->       awaiting_tools  [RunTool] (one pending call starts)
//	awaiting_tools--ToolResult-->        awaiting_tools  (results outstanding)
//	                                     awaiting_llm    [CallLLM] (all results in)
//	awaiting_*    --LLMFailed-->         active          (the turn is rolled back)
//	any but ""/ended --EndConversation--> ended

// ConversationStatus is where a conversation stands between actions.
type ConversationStatus string

const (
	StatusNew           ConversationStatus = ""
	StatusActive        ConversationStatus = "active"
	StatusAwaitingLLM   ConversationStatus = "awaiting_llm"
	StatusAwaitingTools ConversationStatus = "awaiting_tools"
	StatusEnded         ConversationStatus = "ended"
)

// StopMaxToolIterations is the stop reason of a turn cut short because the
// model kept asking for tools past max_tool_iterations.
const StopMaxToolIterations = "max_tool_iterations"

// ToolCallRecord is one executed tool call as reported in a /chat answer.
type ToolCallRecord struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Input   json.RawMessage `json:"input"`
	Output  string          `json:"output"`
	IsError bool            `json:"is_error"`
}

// PendingTool is a tool call the model asked for in the current step.
type PendingTool struct {
	Call    ToolCall
	Started bool
	Done    bool
	Output  string
	IsError bool
	At      time.Time
}

// Conversation is the whole state of one session's conversation.
// Values are treated as immutable: reduce returns a new one and never
// modifies the slices of the one it was given.
type Conversation struct {
	ID        string
	SessionID string
	UserID    string
	Status    ConversationStatus
	Messages  []Message
	Pending   []PendingTool

	MaxToolIterations  int
	MaxHistoryMessages int

	// Per turn: where the turn's messages start, how many tool rounds it
	// used, what tools it ran and what it cost.
	TurnStart      int
	ToolIterations int
	TurnToolCalls  []ToolCallRecord
	TurnUsage      Usage

	Usage          Usage // whole conversation
	LLMCalls       int
	LastStopReason string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Action is an input to reduce.
type Action interface{ actionName() string }

// StartConversation opens a conversation.
type StartConversation struct {
	ConversationID, SessionID, UserID string
	MaxToolIterations                 int // ≥ 0; 0 forbids tool use
	MaxHistoryMessages                int // ≥ 2
	At                                time.Time
}

// SendMessage starts a turn with the user's text.
type SendMessage struct {
	Text string
	At   time.Time
}

// ProcessResponse feeds the model's answer back.
type ProcessResponse struct {
	Response LLMResponse
	At       time.Time
}

// ExecuteTool marks one pending call as started.
type ExecuteTool struct {
	CallID string
	At     time.Time
}

// ToolResult delivers the outcome of a started call.
type ToolResult struct {
	CallID  string
	Output  string
	IsError bool
	At      time.Time
}

// LLMFailed abandons the current turn (model or tool stage): the turn's
// messages are rolled back so the history stays a valid alternation; the
// usage already spent is kept.
type LLMFailed struct {
	Reason string
	At     time.Time
}

// EndConversation closes the conversation for good.
type EndConversation struct{ At time.Time }

func (StartConversation) actionName() string { return "StartConversation" }
func (SendMessage) actionName() string       { return "SendMessage" }
func (ProcessResponse) actionName() string   { return "ProcessResponse" }
func (ExecuteTool) actionName() string       { return "ExecuteTool" }
func (ToolResult) actionName() string        { return "ToolResult" }
func (LLMFailed) actionName() string         { return "LLMFailed" }
func (EndConversation) actionName() string   { return "EndConversation" }

// Effect is work reduce asks the agent to do.
type Effect interface{ effectName() string }

// CallLLM asks for a model call over the conversation's messages.
type CallLLM struct{}

// RunTool asks for one tool call to run.
type RunTool struct{ Call ToolCall }

// Reply ends the turn with an answer for the user.
type Reply struct {
	Text       string
	StopReason string
	ToolCalls  []ToolCallRecord
	Usage      Usage
}

func (CallLLM) effectName() string { return "CallLLM" }
func (RunTool) effectName() string { return "RunTool" }
func (Reply) effectName() string   { return "Reply" }

// ErrInvalidTransition is wrapped by every error reduce returns.
var ErrInvalidTransition = errors.New("invalid transition")

func invalid(s Conversation, a Action, why string) error {
	status := s.Status
	if status == StatusNew {
		status = "new"
	}
	return fmt.Errorf("%s in state %s: %s: %w", a.actionName(), status, why, ErrInvalidTransition)
}

// reduce applies action a to state s. On error s is returned unchanged
// with no effects.
func reduce(s Conversation, a Action) (Conversation, []Effect, error) {
	switch a := a.(type) {
	case StartConversation:
		return reduceStart(s, a)
	case SendMessage:
		return reduceSend(s, a)
	case ProcessResponse:
		return reduceResponse(s, a)
	case ExecuteTool:
		return reduceExecute(s, a)
	case ToolResult:
		return reduceToolResult(s, a)
	case LLMFailed:
		if s.Status != StatusAwaitingLLM && s.Status != StatusAwaitingTools {
			return s, nil, invalid(s, a, "no turn in progress")
		}
		s.Messages = slices.Clone(s.Messages[:s.TurnStart])
		s.Pending = nil
		s.Status = StatusActive
		s.LastStopReason = "error"
		s.UpdatedAt = a.At
		return s, nil, nil
	case EndConversation:
		if s.Status == StatusNew || s.Status == StatusEnded {
			return s, nil, invalid(s, a, "conversation is not open")
		}
		s.Status = StatusEnded
		s.Pending = nil
		s.UpdatedAt = a.At
		return s, nil, nil
	case nil:
		return s, nil, fmt.Errorf("nil action: %w", ErrInvalidTransition)
	default:
		return s, nil, invalid(s, a, "unknown action")
	}
}

func reduceStart(s Conversation, a StartConversation) (Conversation, []Effect, error) {
	switch {
	case s.Status != StatusNew:
		return s, nil, invalid(s, a, "conversation already started")
	case a.ConversationID == "" || a.SessionID == "" || a.UserID == "":
		return s, nil, invalid(s, a, "conversation, session and user ids are required")
	case a.MaxToolIterations < 0:
		return s, nil, invalid(s, a, "max tool iterations must not be negative")
	case a.MaxHistoryMessages < 2:
		return s, nil, invalid(s, a, "max history messages must be at least 2")
	}
	return Conversation{
		ID:                 a.ConversationID,
		SessionID:          a.SessionID,
		UserID:             a.UserID,
		Status:             StatusActive,
		MaxToolIterations:  a.MaxToolIterations,
		MaxHistoryMessages: a.MaxHistoryMessages,
		CreatedAt:          a.At,
		UpdatedAt:          a.At,
	}, nil, nil
}

func reduceSend(s Conversation, a SendMessage) (Conversation, []Effect, error) {
	if s.Status != StatusActive {
		return s, nil, invalid(s, a, "a turn is already in progress or the conversation is not open")
	}
	if a.Text == "" {
		return s, nil, invalid(s, a, "empty message")
	}
	msgs := append(slices.Clip(s.Messages), Message{Role: "user", Content: a.Text, Timestamp: a.At})
	s.Messages = pruneHistory(msgs, s.MaxHistoryMessages)
	s.TurnStart = len(s.Messages) - 1
	s.ToolIterations = 0
	s.TurnToolCalls = nil
	s.TurnUsage = Usage{}
	s.Status = StatusAwaitingLLM
	s.UpdatedAt = a.At
	return s, []Effect{CallLLM{}}, nil
}

// pruneHistory drops the oldest whole turns until at most max messages
// remain, but never the last turn: a turn starts at a user message, so a
// tool call is never separated from its result and the turn in progress is
// kept whole even when it alone is longer than max. It returns a sub-slice
// of msgs.
func pruneHistory(msgs []Message, max int) []Message {
	for len(msgs) > max {
		next := slices.IndexFunc(msgs[1:], func(m Message) bool { return m.Role == "user" })
		if next < 0 {
			return msgs
		}
		msgs = msgs[next+1:]
	}
	return msgs
}

func reduceResponse(s Conversation, a ProcessResponse) (Conversation, []Effect, error) {
	if s.Status != StatusAwaitingLLM {
		return s, nil, invalid(s, a, "no model call is outstanding")
	}
	r := a.Response
	seen := make(map[string]bool, len(r.ToolCalls))
	for _, c := range r.ToolCalls {
		if c.ID == "" || c.Name == "" {
			return s, nil, invalid(s, a, "tool call without id or name")
		}
		if seen[c.ID] {
			return s, nil, invalid(s, a, "duplicate tool call id "+c.ID)
		}
		seen[c.ID] = true
	}
	s.Usage = s.Usage.Add(r.Usage)
	s.TurnUsage = s.TurnUsage.Add(r.Usage)
	s.LLMCalls++
	s.UpdatedAt = a.At

	if len(r.ToolCalls) > 0 && s.ToolIterations < s.MaxToolIterations {
		s.Messages = append(slices.Clip(s.Messages), Message{
			Role: "assistant", Content: r.Text, ToolCalls: slices.Clone(r.ToolCalls), Timestamp: a.At,
		})
		s.ToolIterations++
		s.Pending = make([]PendingTool, len(r.ToolCalls))
		for i, c := range r.ToolCalls {
			s.Pending[i] = PendingTool{Call: c}
		}
		s.Status = StatusAwaitingTools
		return s, nil, nil
	}

	stop := r.StopReason
	text := r.Text
	if len(r.ToolCalls) > 0 {
		// The model wants yet another tool round past the cap. Its tool
		// calls are not kept: an unanswered call would make the history
		// invalid for every provider.
		stop = StopMaxToolIterations
		if text == "" {
			text = "I stopped because this turn reached the tool-use limit."
		}
	}
	if stop == "" {
		stop = "end_turn"
	}
	msgs := append(slices.Clip(s.Messages), Message{Role: "assistant", Content: text, Timestamp: a.At})
	s.Messages = pruneHistory(msgs, s.MaxHistoryMessages)
	s.TurnStart = 0
	s.Status = StatusActive
	s.LastStopReason = stop
	return s, []Effect{Reply{Text: text, StopReason: stop, ToolCalls: s.TurnToolCalls, Usage: s.TurnUsage}}, nil
}

func reduceExecute(s Conversation, a ExecuteTool) (Conversation, []Effect, error) {
	if s.Status != StatusAwaitingTools {
		return s, nil, invalid(s, a, "no tool calls are pending")
	}
	i := slices.IndexFunc(s.Pending, func(p PendingTool) bool { return p.Call.ID == a.CallID })
	if i < 0 {
		return s, nil, invalid(s, a, "unknown tool call "+a.CallID)
	}
	if s.Pending[i].Started {
		return s, nil, invalid(s, a, "tool call "+a.CallID+" already started")
	}
	s.Pending = slices.Clone(s.Pending)
	s.Pending[i].Started = true
	s.UpdatedAt = a.At
	return s, []Effect{RunTool{Call: s.Pending[i].Call}}, nil
}

func reduceToolResult(s Conversation, a ToolResult) (Conversation, []Effect, error) {
	if s.Status != StatusAwaitingTools {
		return s, nil, invalid(s, a, "no tool calls are pending")
	}
	i := slices.IndexFunc(s.Pending, func(p PendingTool) bool { return p.Call.ID == a.CallID })
	switch {
	case i < 0:
		return s, nil, invalid(s, a, "unknown tool call "+a.CallID)
	case !s.Pending[i].Started:
		return s, nil, invalid(s, a, "tool call "+a.CallID+" was never started")
	case s.Pending[i].Done:
		return s, nil, invalid(s, a, "tool call "+a.CallID+" already has a result")
	}
	s.Pending = slices.Clone(s.Pending)
	s.Pending[i].Done, s.Pending[i].Output, s.Pending[i].IsError, s.Pending[i].At = true, a.Output, a.IsError, a.At
	s.UpdatedAt = a.At
	for _, p := range s.Pending {
		if !p.Done {
			return s, nil, nil
		}
	}
	// All results are in: record them in call order, then ask the model again.
	msgs := slices.Clip(s.Messages)
	calls := slices.Clip(s.TurnToolCalls)
	for _, p := range s.Pending {
		msgs = append(msgs, Message{
			Role: "tool", Content: p.Output, ToolCallID: p.Call.ID, ToolName: p.Call.Name,
			IsError: p.IsError, Timestamp: p.At,
		})
		calls = append(calls, ToolCallRecord{
			ID: p.Call.ID, Name: p.Call.Name, Input: p.Call.Input, Output: p.Output, IsError: p.IsError,
		})
	}
	s.Messages, s.TurnToolCalls, s.Pending = msgs, calls, nil
	s.Status = StatusAwaitingLLM
	return s, []Effect{CallLLM{}}, nil
}
