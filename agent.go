package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// systemPrompt is sent with every model call.
const systemPrompt = "You are a helpful assistant served by production-agent. " +
	"Use the calculator tool for arithmetic and the current_time tool for the date or time. " +
	"Answer concisely."

// AgentSettings are the agent's knobs, taken from the configuration.
type AgentSettings struct {
	Model              string
	MaxTokens          int
	Temperature        float64
	MaxToolIterations  int
	MaxHistoryMessages int
	LLMTimeout         time.Duration // per model attempt
	ToolTimeout        time.Duration // per tool call
	InputCostPerMTok   float64       // < 0: price table
	OutputCostPerMTok  float64       // < 0: price table
}

// Agent is the environment of the reducer: it owns the sessions, runs the
// effects reduce asks for (model calls, tools) and feeds their outcomes back
// as actions until the turn ends. Safe for concurrent use; one turn at a
// time per session is enforced by the SessionStore.
type Agent struct {
	settings AgentSettings
	provider Provider
	tools    *ToolRegistry
	specs    []ToolSpec // tools.Specs(), computed once: the registry never changes
	sessions *SessionStore
	metrics  *Metrics
	logger   *slog.Logger
	now      func() time.Time
	newID    func() string

	// callLLM runs one model call through the resilience chain; it is the
	// provider itself when no guard is configured.
	callLLM func(ctx context.Context, req *LLMRequest, onEvent func(StreamEvent) error) (*LLMResponse, error)
	// runTool runs one tool call through the tool bulkhead and timeout.
	runTool func(ctx context.Context, call ToolCall) (string, error)
}

// TurnRequest is one user message for one session.
type TurnRequest struct {
	UserID    string
	SessionID string
	Message   string
	// OnEvent, when set, streams the turn: "text" deltas, "tool_call" when
	// a tool starts, "tool_result" (ToolCall.ID set, Text the output) when
	// it ends. An error from OnEvent (the client went away) aborts the turn.
	OnEvent func(TurnEvent) error
	Header  map[string]string // trace headers for outbound model calls
}

// TurnEvent is a streamed step of a turn.
type TurnEvent struct {
	Type   string // "delta", "tool_call", "tool_result"
	Text   string
	Tool   *ToolCallRecord
	Result *ToolCallRecord
}

// TurnResult is the answer to a turn.
type TurnResult struct {
	ConversationID string           `json:"conversation_id"`
	SessionID      string           `json:"session_id"`
	Message        string           `json:"message"`
	StopReason     string           `json:"stop_reason"`
	ToolCalls      []ToolCallRecord `json:"tool_calls"`
	Usage          Usage            `json:"usage"`
	CostUSD        float64          `json:"cost_usd"`
}

// ErrUpstreamInvalid is an LLM answer that breaks the protocol (for
// example a tool call without an id).
var ErrUpstreamInvalid = errors.New("invalid answer from the model")

// Turn runs one conversation turn to its end, in an "agent.turn" span
// (a child of the request's span when the trace is recorded).
func (a *Agent) Turn(ctx context.Context, req TurnRequest) (*TurnResult, error) {
	ctx, span := startSpan(ctx, "agent.turn", SpanKindInternal)
	defer span.End()
	span.SetAttr("session.id", req.SessionID)
	res, err := a.turn(ctx, req)
	if err != nil {
		span.SetError(err, classify(err).Type)
		return nil, err
	}
	span.SetAttr("gen_ai.conversation.id", res.ConversationID)
	span.SetAttr("gen_ai.usage.input_tokens", res.Usage.InputTokens)
	span.SetAttr("gen_ai.usage.output_tokens", res.Usage.OutputTokens)
	span.SetAttr("agent.tool_calls", len(res.ToolCalls))
	return res, nil
}

func (a *Agent) turn(ctx context.Context, req TurnRequest) (*TurnResult, error) {
	conv, finish, err := a.sessions.Begin(req.SessionID, req.UserID)
	if err != nil {
		return nil, err
	}
	defer func() { finish(conv) }()

	if conv.Status == StatusNew {
		conv, _, err = reduce(conv, StartConversation{
			ConversationID: a.newID(), SessionID: req.SessionID, UserID: req.UserID,
			MaxToolIterations: a.settings.MaxToolIterations, MaxHistoryMessages: a.settings.MaxHistoryMessages,
			At: a.now(),
		})
		if err != nil {
			return nil, err
		}
		recordAudit(ctx, AuditEvent{
			EventType: EventLLMInteraction, Severity: SeverityInfo, Action: "conversation.start",
			Resource: "session:" + req.SessionID, Success: true, Metadata: map[string]string{"conversation_id": conv.ID},
		})
	}
	recordAudit(ctx, AuditEvent{
		EventType: EventLLMInteraction, Severity: SeverityInfo, Action: "conversation.message",
		Resource: "session:" + req.SessionID, Success: true,
		Metadata: map[string]string{"conversation_id": conv.ID, "message_fingerprint": auditFingerprint(req.Message)},
	})
	var effects []Effect
	conv, effects, err = reduce(conv, SendMessage{Text: req.Message, At: a.now()})
	if err != nil {
		return nil, err
	}
	var cost float64
	for len(effects) > 0 {
		e := effects[0]
		effects = effects[1:]
		switch e := e.(type) {
		case CallLLM:
			resp, c, err := a.modelStep(ctx, conv, req)
			cost += c
			if err == nil {
				var more []Effect
				var next Conversation
				next, more, err = reduce(conv, ProcessResponse{Response: *resp, At: a.now()})
				if err != nil {
					err = fmt.Errorf("%w: %w", ErrUpstreamInvalid, err)
					// Keep the tokens spent on the rejected answer.
					conv.Usage = conv.Usage.Add(resp.Usage)
				} else {
					conv = next
					effects = append(effects, more...)
				}
			}
			if err != nil {
				conv, _, _ = reduce(conv, LLMFailed{Reason: err.Error(), At: a.now()})
				return nil, err
			}
			if conv.Status == StatusAwaitingTools {
				conv, effects, err = a.toolStep(ctx, conv, req)
				if err != nil {
					conv, _, _ = reduce(conv, LLMFailed{Reason: err.Error(), At: a.now()})
					return nil, err
				}
			}
		case Reply:
			return &TurnResult{
				ConversationID: conv.ID, SessionID: conv.SessionID, Message: e.Text, StopReason: e.StopReason,
				ToolCalls: nonNil(e.ToolCalls), Usage: e.Usage, CostUSD: cost,
			}, nil
		default:
			return nil, fmt.Errorf("agent: unexpected effect %s", e.effectName())
		}
	}
	return nil, errors.New("agent: turn ended without a reply")
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// modelStep makes the model call of one step and returns its cost in USD.
func (a *Agent) modelStep(ctx context.Context, conv Conversation, req TurnRequest) (*LLMResponse, float64, error) {
	llmReq := &LLMRequest{
		Model: a.settings.Model, System: systemPrompt, Messages: conv.Messages, Tools: a.specs,
		MaxTokens: a.settings.MaxTokens, Temperature: a.settings.Temperature, Header: req.Header,
	}
	var onEvent func(StreamEvent) error
	if req.OnEvent != nil {
		onEvent = func(ev StreamEvent) error {
			if ev.Type == "text" && ev.Text != "" {
				return req.OnEvent(TurnEvent{Type: "delta", Text: ev.Text})
			}
			return nil
		}
	}
	resp, err := a.callLLM(ctx, llmReq, onEvent)
	if resp == nil {
		return nil, 0, err
	}
	model := resp.Model
	if model == "" {
		model = a.settings.Model
	}
	return resp, llmCost(model, resp.Usage, a.settings.InputCostPerMTok, a.settings.OutputCostPerMTok), err
}

// toolStep starts every pending tool call, runs them concurrently and feeds
// the results back in call order. It returns the effects of the last result.
func (a *Agent) toolStep(ctx context.Context, conv Conversation, req TurnRequest) (Conversation, []Effect, error) {
	pending := conv.Pending
	runs := make([]ToolCall, 0, len(pending))
	for _, p := range pending {
		var eff []Effect
		var err error
		conv, eff, err = reduce(conv, ExecuteTool{CallID: p.Call.ID, At: a.now()})
		if err != nil {
			return conv, nil, err
		}
		runs = append(runs, eff[0].(RunTool).Call)
	}
	type outcome struct {
		out   string
		isErr bool
		err   error // fatal to the turn (timeout of the whole request, overload)
	}
	results := make([]outcome, len(runs))
	var wg sync.WaitGroup
	for i, call := range runs {
		if req.OnEvent != nil {
			rec := ToolCallRecord{ID: call.ID, Name: call.Name, Input: call.Input}
			if err := req.OnEvent(TurnEvent{Type: "tool_call", Tool: &rec}); err != nil {
				return conv, nil, err
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := a.runTool(ctx, call)
			switch {
			case err == nil:
				results[i] = outcome{out: out}
			case ctx.Err() != nil:
				results[i] = outcome{err: ctx.Err()}
			case errors.Is(err, ErrOverloaded):
				results[i] = outcome{err: err}
			default:
				results[i] = outcome{out: err.Error(), isErr: true}
			}
		}()
	}
	wg.Wait()
	var effects []Effect
	for i, call := range runs {
		r := results[i]
		if r.err != nil {
			return conv, nil, r.err
		}
		if req.OnEvent != nil {
			rec := ToolCallRecord{ID: call.ID, Name: call.Name, Input: call.Input, Output: r.out, IsError: r.isErr}
			if err := req.OnEvent(TurnEvent{Type: "tool_result", Result: &rec}); err != nil {
				return conv, nil, err
			}
		}
		var err error
		conv, effects, err = reduce(conv, ToolResult{CallID: call.ID, Output: r.out, IsError: r.isErr, At: a.now()})
		if err != nil {
			return conv, nil, err
		}
	}
	return conv, effects, nil
}

// ErrOverloaded: a bulkhead is full or its queue wait timed out.
var ErrOverloaded = errors.New("overloaded")

// executeTool runs one tool call with the tool timeout. Unknown tools,
// invalid input, tool failures and panics are tool errors (the model sees
// them); the tool's own timeout is a tool error too.
func (a *Agent) executeTool(ctx context.Context, call ToolCall) (out string, err error) {
	ctx, span := startSpan(ctx, "tool.execute", SpanKindInternal)
	defer span.End()
	span.SetAttr("gen_ai.operation.name", "execute_tool")
	span.SetAttr("gen_ai.tool.call.id", call.ID)
	tool, ok := a.tools.Get(call.Name)
	if !ok {
		a.metrics.toolExecutions.WithLabelValues("unknown", "error").Inc()
		err := fmt.Errorf("unknown tool %q", call.Name)
		span.SetAttr("gen_ai.tool.name", "unknown")
		span.SetError(err, "unknown_tool")
		return "", err
	}
	span.SetAttr("gen_ai.tool.name", call.Name)
	start := a.now()
	defer func() {
		if p := recover(); p != nil {
			a.logger.ErrorContext(ctx, "tool panicked", "tool", call.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out, err = "", errors.New("the tool failed unexpectedly")
		}
		outcome := "success"
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			outcome = "timeout"
			err = fmt.Errorf("the tool timed out after %s", a.settings.ToolTimeout)
		case err != nil:
			outcome = "error"
		}
		if err != nil {
			span.SetError(err, outcome)
		}
		a.metrics.toolExecutions.WithLabelValues(call.Name, outcome).Inc()
		recordAudit(ctx, AuditEvent{
			EventType: EventLLMInteraction, Severity: SeverityInfo, Action: "tool.execute", Resource: "tool:" + call.Name,
			Success: err == nil, Metadata: map[string]string{
				"tool": call.Name, "tool_call_id": call.ID, "outcome": outcome,
				"duration_ms": strconv.FormatInt(a.now().Sub(start).Milliseconds(), 10), "input_fingerprint": auditFingerprint(string(call.Input)),
			},
		})
		a.logger.DebugContext(ctx, "tool executed", "tool", call.Name, "outcome", outcome, "duration_ms", a.now().Sub(start).Milliseconds())
	}()
	input := call.Input
	if len(input) == 0 {
		input = json.RawMessage(`{}`)
	}
	return withTimeout(ctx, a.settings.ToolTimeout, func(ctx context.Context) (string, error) {
		return tool.Run(ctx, input)
	})
}

// directLLM is one model attempt with the per-attempt timeout, metrics,
// an audit record and an "llm.call" client span carrying OpenTelemetry's
// GenAI attributes; the outbound traceparent names that span.
func (a *Agent) directLLM(ctx context.Context, req *LLMRequest, onEvent func(StreamEvent) error) (*LLMResponse, error) {
	ctx, span := startSpan(ctx, "llm.call", SpanKindClient)
	defer span.End()
	if span != nil {
		r := *req // the caller's request (and header map) is reused by retries
		r.Header = make(map[string]string, len(req.Header)+1)
		maps.Copy(r.Header, req.Header)
		r.Header["traceparent"] = span.Traceparent()
		req = &r
		span.SetAttr("gen_ai.operation.name", "chat")
		span.SetAttr("gen_ai.system", a.provider.Name())
		span.SetAttr("gen_ai.request.model", req.Model)
		span.SetAttr("gen_ai.request.max_tokens", req.MaxTokens)
		span.SetAttr("gen_ai.request.temperature", req.Temperature)
	}
	start := a.now()
	// The provider clients honour their context, so the attempt's deadline
	// is a plain context deadline rather than withTimeout's abandoned
	// goroutine: a cancelled or timed-out call still returns what it had
	// received, and the tokens it used are counted and audited.
	actx, cancel := ctx, context.CancelFunc(func() {})
	if a.settings.LLMTimeout > 0 {
		actx, cancel = context.WithTimeoutCause(ctx, a.settings.LLMTimeout, ErrTimeout)
	}
	var resp *LLMResponse
	var err error
	if onEvent != nil {
		resp, err = a.provider.Stream(actx, req, onEvent)
	} else {
		resp, err = a.provider.Complete(actx, req)
	}
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), ErrTimeout) {
		err = fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	cancel()
	outcome := llmOutcome(ctx, err)
	var u Usage
	model := a.settings.Model
	if resp != nil {
		u = resp.Usage
		if resp.Model != "" {
			model = resp.Model
		}
	} else if pe := (*ProviderError)(nil); errors.As(err, &pe) && pe.Partial != nil {
		u = pe.Partial.Usage // a cut stream still used tokens
	}
	d := a.now().Sub(start)
	cost := llmCost(model, u, a.settings.InputCostPerMTok, a.settings.OutputCostPerMTok)
	a.metrics.observeLLM(a.provider.Name(), outcome, d, u, cost)
	recordAudit(ctx, llmAuditEvent(a.provider.Name(), model, outcome, err, d, u, cost))
	if err != nil {
		a.logger.WarnContext(ctx, "llm call failed", "provider", a.provider.Name(), "outcome", outcome, "error", err.Error())
	}
	if span != nil {
		span.SetAttr("gen_ai.usage.input_tokens", u.InputTokens+u.CacheCreationInputTokens+u.CacheReadInputTokens)
		span.SetAttr("gen_ai.usage.output_tokens", u.OutputTokens)
		if resp != nil {
			span.SetAttr("gen_ai.response.model", model)
			if resp.ID != "" {
				span.SetAttr("gen_ai.response.id", resp.ID)
			}
			if resp.StopReason != "" {
				span.SetAttr("gen_ai.response.finish_reasons", []string{resp.StopReason})
			}
		}
		span.SetError(err, llmErrorType(outcome, err))
	}
	return resp, err
}

// llmErrorType is the error.type of a failed model call: the outcome for
// timeouts and cancellations, else the provider's error type or HTTP
// status, else the outcome.
func llmErrorType(outcome string, err error) string {
	var pe *ProviderError
	if outcome == "error" && errors.As(err, &pe) {
		switch {
		case pe.Type != "":
			return pe.Type
		case pe.StatusCode != 0:
			return strconv.Itoa(pe.StatusCode)
		}
	}
	return outcome
}

// llmOutcome is the outcome label of one model call.
func llmOutcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "success"
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "error"
	}
}
