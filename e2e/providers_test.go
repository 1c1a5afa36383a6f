package e2e

// Real LLM providers and streaming, black-box: the official Go SDKs are
// pointed at the fakes of fakellm_test.go to prove the fakes speak the
// wire formats real clients accept (TestProvSDK*); then the binary is run
// against the same fakes: a multi-step tool conversation through /chat
// with each provider, streamed and not, checking what the binary sent on
// every call (TestProvChatToolConversation); every upstream error class
// (TestProvChatUpstreamErrors); streams cut by the upstream
// (TestProvChatStreamCut); and a client that disconnects
// (TestProvChatClientDisconnect).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// provKinds are the two wire formats under test.
var provKinds = []string{"anthropic", "openai"}

// provSDKTimeout bounds one SDK call against a fake.
const provSDKTimeout = 20 * time.Second

func provAnthSDK(f *provFake) *anthropic.Client {
	c := anthropic.NewClient(aoption.WithBaseURL(f.BaseURL()), aoption.WithAPIKey("test-key"), aoption.WithMaxRetries(0))
	return &c
}

func provOAISDK(f *provFake) *openai.Client {
	c := openai.NewClient(ooption.WithBaseURL(f.BaseURL()), ooption.WithAPIKey("test-key"), ooption.WithMaxRetries(0))
	return &c
}

func provSDKCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), provSDKTimeout)
	t.Cleanup(cancel)
	return ctx
}

// provSameJSON reports whether a and b are the same JSON value.
func provSameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Errorf("not JSON: %q: %v", a, err)
		return false
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Errorf("not JSON: %q: %v", b, err)
		return false
	}
	return reflect.DeepEqual(va, vb)
}

const provCalcInput = `{"expression":"12*7"}`

// ---- SDK conformance: the fakes are what real clients accept ----

func TestProvSDKAnthropic(t *testing.T) {
	anthParams := func(stream bool) anthropic.MessageNewParams {
		return anthropic.MessageNewParams{
			Model: anthropic.Model("claude-sonnet-4-5"), MaxTokens: 1024,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What is 12*7?"))},
		}
	}
	type want struct {
		text     string
		toolID   string
		stop     string
		in, out  int64
		blockCnt int
	}
	check := func(t *testing.T, m *anthropic.Message, w want) {
		t.Helper()
		if m.Model != provAnthModel || m.Role != "assistant" {
			t.Errorf("model %q role %q", m.Model, m.Role)
		}
		if string(m.StopReason) != w.stop {
			t.Errorf("stop_reason %q, want %q", m.StopReason, w.stop)
		}
		if m.Usage.InputTokens != w.in || m.Usage.OutputTokens != w.out {
			t.Errorf("usage %d/%d, want %d/%d", m.Usage.InputTokens, m.Usage.OutputTokens, w.in, w.out)
		}
		if len(m.Content) != w.blockCnt {
			t.Fatalf("%d content blocks, want %d: %+v", len(m.Content), w.blockCnt, m.Content)
		}
		var text string
		for _, b := range m.Content {
			switch b.Type {
			case "text":
				text += b.Text
			case "tool_use":
				if b.ID != w.toolID || b.Name != "calculator" || !provSameJSON(t, b.Input, []byte(provCalcInput)) {
					t.Errorf("tool_use %q %q %s, want %q calculator %s", b.ID, b.Name, b.Input, w.toolID, provCalcInput)
				}
			default:
				t.Errorf("unexpected block type %q", b.Type)
			}
		}
		if text != w.text {
			t.Errorf("text %q, want %q", text, w.text)
		}
	}
	// sdkStream runs a streaming call and accumulates the events as the
	// SDK documents, also returning the event types in order.
	sdkStream := func(t *testing.T, f *provFake) (*anthropic.Message, []string, error) {
		c := provAnthSDK(f)
		stream := c.Messages.NewStreaming(provSDKCtx(t), anthParams(true))
		defer stream.Close()
		var acc anthropic.Message
		var types []string
		for stream.Next() {
			ev := stream.Current()
			types = append(types, ev.Type)
			if err := acc.Accumulate(ev); err != nil {
				return nil, types, fmt.Errorf("accumulate %s: %w", ev.Type, err)
			}
		}
		return &acc, types, stream.Err()
	}
	calc := provCalcTool("toolu_01E2E")

	t.Run("text", func(t *testing.T) {
		f := provNewFake(t, "anthropic", provAnthReply("Hello there.", nil, 11, 4))
		c := provAnthSDK(f)
		m, err := c.Messages.New(provSDKCtx(t), anthParams(false))
		if err != nil {
			t.Fatal(err)
		}
		check(t, m, want{text: "Hello there.", stop: "end_turn", in: 11, out: 4, blockCnt: 1})
		reqs := f.Requests()
		if len(reqs) != 1 || reqs[0].Path != "/v1/messages" {
			t.Fatalf("SDK requests %+v, want one POST /v1/messages (base URL without /v1)", reqs)
		}
		// The SDK sends a dated anthropic-version (newer SDKs a newer date
		// than the binary's 2023-06-01; the answers above parse either way).
		if v := reqs[0].Header.Get("Anthropic-Version"); !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(v) {
			t.Errorf("SDK anthropic-version %q", v)
		}
		t.Logf("SDK sent anthropic-version %s", reqs[0].Header.Get("Anthropic-Version"))
	})
	t.Run("tool_use", func(t *testing.T) {
		f := provNewFake(t, "anthropic", provAnthReply("I'll use the calculator.", calc, 30, 20),
			provAnthReply("12*7 is 84.", nil, 60, 8))
		c := provAnthSDK(f)
		ctx := provSDKCtx(t)
		p := anthParams(false)
		m, err := c.Messages.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		check(t, m, want{text: "I'll use the calculator.", toolID: calc.id, stop: "tool_use", in: 30, out: 20, blockCnt: 2})
		// The SDK's own follow-up: what a tool_result turn looks like on
		// the wire, the shape TestProvChatToolConversation requires of
		// the binary.
		p.Messages = append(p.Messages, m.ToParam(),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock(calc.id, "84", false)))
		m2, err := c.Messages.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		check(t, m2, want{text: "12*7 is 84.", stop: "end_turn", in: 60, out: 8, blockCnt: 1})
		reqs := f.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests", len(reqs))
		}
		provCheckAnthToolTurn(t, reqs[1].Body, calc.id)
	})
	t.Run("stream_text", func(t *testing.T) {
		f := provNewFake(t, "anthropic", provAnthStream([]string{"Hello", " there", "."}, nil, 11, 4))
		m, types, err := sdkStream(t, f)
		if err != nil {
			t.Fatal(err)
		}
		check(t, m, want{text: "Hello there.", stop: "end_turn", in: 11, out: 4, blockCnt: 1})
		// The SDK consumes the ping event the fake sends after content_block_start.
		wantTypes := []string{"message_start", "content_block_start", "content_block_delta", "content_block_delta",
			"content_block_delta", "content_block_stop", "message_delta", "message_stop"}
		if !reflect.DeepEqual(types, wantTypes) {
			t.Errorf("event types %v, want %v", types, wantTypes)
		}
		if !provBool(f.Requests()[0].Body, "stream") {
			t.Errorf("SDK streaming request without stream:true: %s", f.Requests()[0].Raw)
		}
	})
	t.Run("stream_tool_use", func(t *testing.T) {
		f := provNewFake(t, "anthropic", provAnthStream([]string{"I'll use ", "the calculator."}, calc, 30, 20))
		m, _, err := sdkStream(t, f)
		if err != nil {
			t.Fatal(err)
		}
		check(t, m, want{text: "I'll use the calculator.", toolID: calc.id, stop: "tool_use", in: 30, out: 20, blockCnt: 2})
		// The SDK's accumulation equals the complete answer of the same content.
		g := provNewFake(t, "anthropic", provAnthReply("I'll use the calculator.", calc, 30, 20))
		whole, err := provAnthSDK(g).Messages.New(provSDKCtx(t), anthParams(false))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(provAnthBlocks(m), provAnthBlocks(whole)) {
			t.Errorf("streamed blocks %v, complete blocks %v", provAnthBlocks(m), provAnthBlocks(whole))
		}
	})
	t.Run("stream_error_event", func(t *testing.T) {
		frames := provAnthFrames([]string{"Hel"}, nil, 11, 4)
		frames = append(frames[:4:4], provAnthErrorEvent("overloaded_error", "Overloaded"))
		f := provNewFake(t, "anthropic", provReply{frames: frames})
		_, _, err := sdkStream(t, f)
		if err == nil || !strings.Contains(err.Error(), "overloaded_error") {
			t.Fatalf("SDK stream error %v, want the overloaded_error event", err)
		}
	})
	for _, e := range []struct {
		status int
		typ    string
	}{
		{400, "invalid_request_error"}, {401, "authentication_error"}, {403, "permission_error"},
		{404, "not_found_error"}, {429, "rate_limit_error"}, {500, "api_error"}, {529, "overloaded_error"},
	} {
		t.Run(fmt.Sprintf("error_%d", e.status), func(t *testing.T) {
			f := provNewFake(t, "anthropic", provAnthError(e.status, e.typ, "scripted "+e.typ, "0"))
			_, err := provAnthSDK(f).Messages.New(provSDKCtx(t), anthParams(false))
			var ae *anthropic.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T), want *anthropic.Error", err, err)
			}
			if ae.StatusCode != e.status || string(ae.Type()) != e.typ || ae.Message != "scripted "+e.typ {
				t.Errorf("SDK error status %d type %q message %q, want %d %q", ae.StatusCode, ae.Type(), ae.Message, e.status, e.typ)
			}
		})
	}
}

// provAnthBlocks summarises content blocks for comparison.
func provAnthBlocks(m *anthropic.Message) []string {
	var out []string
	for _, b := range m.Content {
		in := ""
		if len(b.Input) > 0 {
			var v any
			json.Unmarshal(b.Input, &v)
			in = provJSON(v)
		}
		out = append(out, b.Type+"|"+b.Text+"|"+b.ID+"|"+b.Name+"|"+in)
	}
	return out
}

func TestProvSDKOpenAI(t *testing.T) {
	params := func() openai.ChatCompletionNewParams {
		return openai.ChatCompletionNewParams{
			Model:    "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is 12*7?")},
		}
	}
	type want struct {
		text, toolID, finish string
		in, out              int64
	}
	check := func(t *testing.T, cc *openai.ChatCompletion, w want) {
		t.Helper()
		if cc.Model != provOAIModel {
			t.Errorf("model %q", cc.Model)
		}
		if len(cc.Choices) != 1 {
			t.Fatalf("%d choices", len(cc.Choices))
		}
		ch := cc.Choices[0]
		if ch.FinishReason != w.finish || ch.Message.Content != w.text {
			t.Errorf("finish %q content %q, want %q %q", ch.FinishReason, ch.Message.Content, w.finish, w.text)
		}
		if w.toolID == "" {
			if len(ch.Message.ToolCalls) != 0 {
				t.Errorf("tool calls %+v", ch.Message.ToolCalls)
			}
		} else {
			if len(ch.Message.ToolCalls) != 1 {
				t.Fatalf("tool calls %+v", ch.Message.ToolCalls)
			}
			tc := ch.Message.ToolCalls[0]
			if tc.ID != w.toolID || tc.Type != "function" || tc.Function.Name != "calculator" ||
				!provSameJSON(t, []byte(tc.Function.Arguments), []byte(provCalcInput)) {
				t.Errorf("tool call %q %q %q %q", tc.ID, tc.Type, tc.Function.Name, tc.Function.Arguments)
			}
		}
		if cc.Usage.PromptTokens != w.in || cc.Usage.CompletionTokens != w.out || cc.Usage.TotalTokens != w.in+w.out {
			t.Errorf("usage %+v, want %d/%d", cc.Usage, w.in, w.out)
		}
	}
	sdkStream := func(t *testing.T, f *provFake) (*openai.ChatCompletion, int, error) {
		p := params()
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := provOAISDK(f).Chat.Completions.NewStreaming(provSDKCtx(t), p)
		defer stream.Close()
		var acc openai.ChatCompletionAccumulator
		n := 0
		for stream.Next() {
			n++
			if !acc.AddChunk(stream.Current()) {
				return nil, n, fmt.Errorf("chunk %d rejected by the accumulator", n)
			}
		}
		return &acc.ChatCompletion, n, stream.Err()
	}
	calc := provCalcTool("call_E2E01")

	t.Run("text", func(t *testing.T) {
		f := provNewFake(t, "openai", provOAIReply("Hello there.", nil, 11, 4))
		cc, err := provOAISDK(f).Chat.Completions.New(provSDKCtx(t), params())
		if err != nil {
			t.Fatal(err)
		}
		check(t, cc, want{text: "Hello there.", finish: "stop", in: 11, out: 4})
		reqs := f.Requests()
		if len(reqs) != 1 || reqs[0].Path != "/v1/chat/completions" {
			t.Fatalf("SDK requests %+v, want one POST /v1/chat/completions (base URL with /v1)", reqs)
		}
		if v := reqs[0].Header.Get("Authorization"); v != "Bearer test-key" {
			t.Errorf("SDK Authorization %q", v)
		}
	})
	t.Run("tool_calls", func(t *testing.T) {
		f := provNewFake(t, "openai", provOAIReply("", calc, 30, 20), provOAIReply("12*7 is 84.", nil, 60, 8))
		c := provOAISDK(f)
		ctx := provSDKCtx(t)
		p := params()
		p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: "calculator", Parameters: shared.FunctionParameters{"type": "object",
				"properties": map[string]any{"expression": map[string]any{"type": "string"}}}})}
		cc, err := c.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		check(t, cc, want{toolID: calc.id, finish: "tool_calls", in: 30, out: 20})
		// The SDK's own follow-up, the shape required of the binary.
		p.Messages = append(p.Messages, cc.Choices[0].Message.ToParam(), openai.ToolMessage("84", calc.id))
		cc2, err := c.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		check(t, cc2, want{text: "12*7 is 84.", finish: "stop", in: 60, out: 8})
		reqs := f.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests", len(reqs))
		}
		provCheckOAIToolTurn(t, reqs[1].Body, calc.id)
		provCheckOAITools(t, reqs[1].Body)
	})
	t.Run("stream_text", func(t *testing.T) {
		f := provNewFake(t, "openai", provOAIStream([]string{"Hello", " there", "."}, nil, 11, 4))
		cc, n, err := sdkStream(t, f)
		if err != nil {
			t.Fatal(err)
		}
		check(t, cc, want{text: "Hello there.", finish: "stop", in: 11, out: 4})
		// role chunk, 3 content chunks, finish chunk, usage chunk.
		if n != 6 {
			t.Errorf("%d chunks, want 6", n)
		}
		body := f.Requests()[0].Body
		if !provBool(body, "stream") || !provBool(body, "stream_options", "include_usage") {
			t.Errorf("SDK request %s", f.Requests()[0].Raw)
		}
	})
	t.Run("stream_tool_calls", func(t *testing.T) {
		f := provNewFake(t, "openai", provOAIStream(nil, calc, 30, 20))
		cc, _, err := sdkStream(t, f)
		if err != nil {
			t.Fatal(err)
		}
		check(t, cc, want{toolID: calc.id, finish: "tool_calls", in: 30, out: 20})
	})
	t.Run("stream_without_usage", func(t *testing.T) {
		// Without stream_options.include_usage the fake sends no usage chunk.
		f := provNewFake(t, "openai", provOAIStream([]string{"Hi"}, nil, 11, 4))
		stream := provOAISDK(f).Chat.Completions.NewStreaming(provSDKCtx(t), params())
		defer stream.Close()
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if acc.Choices[0].Message.Content != "Hi" || acc.Usage.TotalTokens != 0 {
			t.Errorf("content %q usage %+v", acc.Choices[0].Message.Content, acc.Usage)
		}
	})
	for _, e := range []struct {
		status    int
		typ, code string
	}{
		{400, "invalid_request_error", ""}, {401, "invalid_request_error", "invalid_api_key"},
		{403, "invalid_request_error", "unsupported_country_region_territory"}, {404, "invalid_request_error", "model_not_found"},
		{429, "requests", "rate_limit_exceeded"}, {429, "insufficient_quota", "insufficient_quota"},
		{500, "server_error", ""}, {503, "server_error", ""},
	} {
		t.Run(fmt.Sprintf("error_%d_%s", e.status, e.typ), func(t *testing.T) {
			f := provNewFake(t, "openai", provOAIError(e.status, e.typ, e.code, "scripted "+e.typ, "0"))
			_, err := provOAISDK(f).Chat.Completions.New(provSDKCtx(t), params())
			var oe *openai.Error
			if !errors.As(err, &oe) {
				t.Fatalf("error %v (%T), want *openai.Error", err, err)
			}
			if oe.StatusCode != e.status || oe.Type != e.typ || oe.Code != e.code || oe.Message != "scripted "+e.typ {
				t.Errorf("SDK error %d %q %q %q, want %d %q %q", oe.StatusCode, oe.Type, oe.Code, oe.Message, e.status, e.typ, e.code)
			}
		})
	}
}

// ---- request-shape checks shared by the SDK and binary tests ----

// provPath walks a decoded JSON value by object keys and array indexes.
func provPath(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			o, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = o[k]
		case int:
			a, ok := v.([]any)
			if !ok {
				return nil
			}
			if k < 0 {
				k += len(a)
			}
			if k < 0 || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// provCheckAnthToolTurn checks an Anthropic request that returns a tool
// result: the assistant message holds the tool_use block (input an
// object), the last message is a user message with a tool_result block
// referencing it.
func provCheckAnthToolTurn(t *testing.T, body map[string]any, toolID string) {
	t.Helper()
	msgs, _ := body["messages"].([]any)
	if len(msgs) < 3 {
		t.Fatalf("tool turn with %d messages: %v", len(msgs), body["messages"])
	}
	asst := msgs[len(msgs)-2]
	if provPath(asst, "role") != "assistant" {
		t.Errorf("message before the tool result is %v", asst)
	}
	var use any
	blocks, _ := provPath(asst, "content").([]any)
	for _, b := range blocks {
		if provPath(b, "type") == "tool_use" {
			use = b
		}
	}
	if provPath(use, "id") != toolID || provPath(use, "name") != "calculator" || provPath(use, "input", "expression") != "12*7" {
		t.Errorf("assistant tool_use block %v, want id %s calculator %s", use, toolID, provCalcInput)
	}
	last := msgs[len(msgs)-1]
	if provPath(last, "role") != "user" {
		t.Errorf("last message %v, want role user", last)
	}
	res := provPath(last, "content", 0)
	if provPath(res, "type") != "tool_result" || provPath(res, "tool_use_id") != toolID {
		t.Errorf("tool result block %v, want type tool_result tool_use_id %s", res, toolID)
	}
	if c := provPath(res, "content"); c != "84" && provPath(c, 0, "text") != "84" {
		t.Errorf("tool_result content %v, want 84", c)
	}
}

// provCheckOAIToolTurn checks an OpenAI request that returns a tool
// result: an assistant message with tool_calls (arguments a JSON string),
// then a role "tool" message with tool_call_id.
func provCheckOAIToolTurn(t *testing.T, body map[string]any, toolID string) {
	t.Helper()
	msgs, _ := body["messages"].([]any)
	if len(msgs) < 3 {
		t.Fatalf("tool turn with %d messages: %v", len(msgs), body["messages"])
	}
	asst := msgs[len(msgs)-2]
	tc := provPath(asst, "tool_calls", 0)
	if provPath(asst, "role") != "assistant" || provPath(tc, "id") != toolID || provPath(tc, "type") != "function" ||
		provPath(tc, "function", "name") != "calculator" {
		t.Errorf("assistant message %v, want tool_calls[0] %s function calculator", asst, toolID)
	}
	args, ok := provPath(tc, "function", "arguments").(string)
	if !ok || !provSameJSON(t, []byte(args), []byte(provCalcInput)) {
		t.Errorf("tool call arguments %#v, want the JSON string %s", provPath(tc, "function", "arguments"), provCalcInput)
	}
	last := msgs[len(msgs)-1]
	if provPath(last, "role") != "tool" || provPath(last, "tool_call_id") != toolID || provPath(last, "content") != "84" {
		t.Errorf("last message %v, want role tool tool_call_id %s content 84", last, toolID)
	}
}

// provCheckOAITools checks tools are sent as functions with a schema.
func provCheckOAITools(t *testing.T, body map[string]any) {
	t.Helper()
	tools, _ := body["tools"].([]any)
	found := false
	for _, tl := range tools {
		if provPath(tl, "function", "name") == "calculator" {
			found = true
			if provPath(tl, "type") != "function" || provPath(tl, "function", "parameters", "type") != "object" {
				t.Errorf("calculator tool %v, want type function with an object schema", tl)
			}
		}
	}
	if !found {
		t.Errorf("tools %v: no calculator function", body["tools"])
	}
}

// ---- the binary against the fakes ----

// provModel is the model id configured for kind (priced in the binary's table).
func provModel(kind string) string {
	if kind == "openai" {
		return "gpt-4o-mini"
	}
	return "claude-sonnet-4-5"
}

// provPrice is USD per million input and output tokens of provModel
// (Anthropic and OpenAI pricing pages).
func provPrice(kind string) (in, out float64) {
	if kind == "openai" {
		return 0.15, 0.60
	}
	return 3, 15
}

// provStartAgent runs the binary against f with its provider's key.
func provStartAgent(t *testing.T, f *provFake, extra ...string) *agentProc {
	t.Helper()
	env := map[string]string{"ANTHROPIC_API_KEY": "test-key"}
	if f.kind == "openai" {
		env = map[string]string{"OPENAI_API_KEY": "test-key"}
	}
	args := append([]string{"-set", "llm.provider=" + f.kind, "-set", "llm.base_url=" + f.BaseURL(),
		"-set", "llm.model=" + provModel(f.kind), "-set", "llm.max_retries=1"}, extra...)
	return startAgent(t, env, args...)
}

// provChatResult is the 200 body of /chat (also the done event's data).
type provChatResult struct {
	Message        string `json:"message"`
	ConversationID string `json:"conversation_id"`
	SessionID      string `json:"session_id"`
	StopReason     string `json:"stop_reason"`
	ToolCalls      []struct {
		ID      string          `json:"id"`
		Name    string          `json:"name"`
		Input   json.RawMessage `json:"input"`
		Output  string          `json:"output"`
		IsError bool            `json:"is_error"`
	} `json:"tool_calls"`
	Usage struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
	CostUSD float64 `json:"cost_usd"`
	TraceID string  `json:"trace_id"`
}

// provErrorBody is an error answer (also the error event's data, unwrapped).
type provErrorBody struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		TraceID string `json:"trace_id"`
	} `json:"error"`
}

// provSSE is one event of a /chat stream.
type provSSE struct {
	Event, Data string
}

// provReadSSE reads events until EOF or until each returns false.
func provReadSSE(r io.Reader, each func(provSSE) bool) ([]provSSE, error) {
	var out []provSSE
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var cur provSSE
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event == "" && len(data) == 0 {
				continue
			}
			cur.Data = strings.Join(data, "\n")
			out = append(out, cur)
			if each != nil && !each(cur) {
				return out, nil
			}
			cur, data = provSSE{}, nil
		case strings.HasPrefix(line, "event:"):
			cur.Event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return out, sc.Err()
}

// provPostChat sends a /chat request and returns the open response.
func provPostChat(t *testing.T, ctx context.Context, p *agentProc, session string, stream bool) *http.Response {
	t.Helper()
	body := provJSON(map[string]any{"user_id": "prov-user", "session_id": session,
		"message": "What is 12*7? Use the calculator.", "stream": stream})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.API+"/chat", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST /chat: %v", err)
	}
	return resp
}

// provChat runs one /chat turn; for a stream it returns the events.
func provChat(t *testing.T, p *agentProc, session string, stream bool) (status int, body []byte, events []provSSE) {
	t.Helper()
	resp := provPostChat(t, t.Context(), p, session, stream)
	defer resp.Body.Close()
	if stream && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		events, err := provReadSSE(resp.Body, nil)
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		return resp.StatusCode, nil, events
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, nil
}

var provTraceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$`)

func TestProvChatToolConversation(t *testing.T) {
	const lead, final = "I'll use the calculator.", "12 times 7 is 84."
	const in1, out1, in2, out2 = 412, 57, 498, 23
	for _, kind := range provKinds {
		for _, stream := range []bool{false, true} {
			name := kind + "/complete"
			if stream {
				name = kind + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				toolID := "toolu_01A09q90qw90lq917835lq9"
				leadText := []string{"I'll use ", "the calculator."}
				if kind == "openai" {
					toolID, leadText = "call_abc123DEF456", nil // OpenAI models usually call tools without text
				}
				f := provNewFake(t, kind,
					provAnswer(kind, stream, leadText, provCalcTool(toolID), in1, out1),
					provAnswer(kind, stream, []string{"12 times 7", " is 84."}, nil, in2, out2))
				p := provStartAgent(t, f)
				status, body, events := provChat(t, p, "prov-tools-"+strings.ReplaceAll(name, "/", "-"), stream)
				if status != http.StatusOK {
					t.Fatalf("/chat status %d: %s %v", status, body, events)
				}
				if stream {
					body = provCheckToolStream(t, events, toolID, strings.Join(leadText, "")+final)
				}
				var res provChatResult
				if err := json.Unmarshal(body, &res); err != nil {
					t.Fatalf("decode %s: %v", body, err)
				}
				if res.Message != final || res.StopReason != "end_turn" {
					t.Errorf("message %q stop %q, want %q end_turn", res.Message, res.StopReason, final)
				}
				if len(res.ToolCalls) != 1 {
					t.Fatalf("tool_calls %+v", res.ToolCalls)
				}
				tc := res.ToolCalls[0]
				if tc.ID != toolID || tc.Name != "calculator" || tc.Output != "84" || tc.IsError ||
					!provSameJSON(t, tc.Input, []byte(provCalcInput)) {
					t.Errorf("tool call %+v (input %s), want %s calculator output 84", tc, tc.Input, toolID)
				}
				if res.Usage.InputTokens != in1+in2 || res.Usage.OutputTokens != out1+out2 {
					t.Errorf("usage %+v, want %d/%d", res.Usage, in1+in2, out1+out2)
				}
				pin, pout := provPrice(kind)
				wantCost := (float64(in1+in2)*pin + float64(out1+out2)*pout) / 1e6
				if res.CostUSD <= 0 || math.Abs(res.CostUSD-wantCost) > wantCost*1e-6 {
					t.Errorf("cost_usd %v, want %v", res.CostUSD, wantCost)
				}
				reqs := f.Requests()
				if len(reqs) != 2 {
					t.Fatalf("%d upstream calls, want 2", len(reqs))
				}
				for i, r := range reqs {
					m := provTraceparentRE.FindStringSubmatch(r.Header.Get("Traceparent"))
					if m == nil {
						t.Errorf("call %d: traceparent %q", i+1, r.Header.Get("Traceparent"))
					} else if m[1] != res.TraceID {
						t.Errorf("call %d: traceparent trace id %s, /chat trace_id %s", i+1, m[1], res.TraceID)
					}
					if kind == "anthropic" {
						provCheckAnthRequest(t, i+1, r, stream)
					} else {
						provCheckOAIRequest(t, i+1, r, stream)
					}
				}
				if kind == "anthropic" {
					provCheckAnthToolTurn(t, reqs[1].Body, toolID)
				} else {
					provCheckOAIToolTurn(t, reqs[1].Body, toolID)
				}
			})
		}
	}
}

// provCheckToolStream checks the SSE events of a tool turn and returns the
// done event's data.
func provCheckToolStream(t *testing.T, events []provSSE, toolID, wantText string) []byte {
	t.Helper()
	if len(events) == 0 || events[0].Event != "start" {
		t.Fatalf("stream does not begin with start: %v", events)
	}
	last := events[len(events)-1]
	if last.Event != "done" {
		t.Fatalf("stream ends with %q, want done: %v", last.Event, events)
	}
	var text strings.Builder
	order := []string{}
	for _, ev := range events[1 : len(events)-1] {
		switch ev.Event {
		case "delta":
			var d struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				t.Errorf("delta %q: %v", ev.Data, err)
			}
			text.WriteString(d.Text)
			if len(order) == 0 || order[len(order)-1] != "delta" {
				order = append(order, "delta")
			}
		case "tool_call", "tool_result":
			var rec struct {
				ID     string `json:"id"`
				Name   string `json:"name"`
				Output string `json:"output"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &rec); err != nil {
				t.Errorf("%s %q: %v", ev.Event, ev.Data, err)
			}
			if rec.ID != toolID || rec.Name != "calculator" || (ev.Event == "tool_result" && rec.Output != "84") {
				t.Errorf("%s %s, want %s calculator (output 84)", ev.Event, ev.Data, toolID)
			}
			order = append(order, ev.Event)
		default:
			t.Errorf("unexpected event %q in %v", ev.Event, events)
		}
	}
	if text.String() != wantText {
		t.Errorf("streamed text %q, want %q", text.String(), wantText)
	}
	if i := strings.Index(strings.Join(order, ","), "tool_call,tool_result,delta"); i < 0 {
		t.Errorf("event order %v, want tool_call, tool_result, then the answer's deltas", order)
	}
	return []byte(last.Data)
}

// provCheckAnthRequest checks one Messages API request the binary sent.
func provCheckAnthRequest(t *testing.T, n int, r provRequest, stream bool) {
	t.Helper()
	if r.Method != http.MethodPost || r.Path != "/v1/messages" {
		t.Errorf("call %d: %s %s, want POST /v1/messages", n, r.Method, r.Path)
	}
	h := r.Header
	if h.Get("X-Api-Key") != "test-key" || h.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("call %d: x-api-key %q anthropic-version %q", n, h.Get("X-Api-Key"), h.Get("Anthropic-Version"))
	}
	if h.Get("Authorization") != "" {
		t.Errorf("call %d: unexpected Authorization header", n)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("call %d: content-type %q", n, ct)
	}
	b := r.Body
	if b == nil {
		t.Fatalf("call %d: body is not a JSON object: %s", n, r.Raw)
	}
	if b["model"] != "claude-sonnet-4-5" {
		t.Errorf("call %d: model %v", n, b["model"])
	}
	if mt, ok := b["max_tokens"].(float64); !ok || mt < 1 {
		t.Errorf("call %d: max_tokens %v", n, b["max_tokens"])
	}
	if s, ok := b["system"].(string); !ok || s == "" {
		t.Errorf("call %d: system %#v, want a top-level string", n, b["system"])
	}
	msgs, _ := b["messages"].([]any)
	for i, m := range msgs {
		if role := provPath(m, "role"); role != "user" && role != "assistant" {
			t.Errorf("call %d: message %d role %v", n, i, role)
		}
	}
	if provPath(msgs, 0, "role") != "user" || provPath(msgs, 0, "content", 0, "text") != "What is 12*7? Use the calculator." {
		t.Errorf("call %d: first message %v", n, provPath(msgs, 0))
	}
	found := false
	for _, tl := range b["tools"].([]any) {
		if provPath(tl, "name") == "calculator" {
			found = provPath(tl, "input_schema", "type") == "object"
		}
	}
	if !found {
		t.Errorf("call %d: tools %v, want calculator with an object input_schema", n, b["tools"])
	}
	if provBool(b, "stream") != stream {
		t.Errorf("call %d: stream %v, want %v", n, b["stream"], stream)
	}
	if stream && h.Get("Accept") != "text/event-stream" {
		t.Errorf("call %d: Accept %q", n, h.Get("Accept"))
	}
}

// provCheckOAIRequest checks one Chat Completions request the binary sent.
func provCheckOAIRequest(t *testing.T, n int, r provRequest, stream bool) {
	t.Helper()
	if r.Method != http.MethodPost || r.Path != "/v1/chat/completions" {
		t.Errorf("call %d: %s %s, want POST /v1/chat/completions", n, r.Method, r.Path)
	}
	if v := r.Header.Get("Authorization"); v != "Bearer test-key" {
		t.Errorf("call %d: Authorization %q", n, v)
	}
	if r.Header.Get("X-Api-Key") != "" {
		t.Errorf("call %d: unexpected x-api-key", n)
	}
	b := r.Body
	if b == nil {
		t.Fatalf("call %d: body is not a JSON object: %s", n, r.Raw)
	}
	if b["model"] != "gpt-4o-mini" {
		t.Errorf("call %d: model %v", n, b["model"])
	}
	msgs, _ := b["messages"].([]any)
	if provPath(msgs, 0, "role") != "system" || provPath(msgs, 1, "role") != "user" ||
		provPath(msgs, 1, "content") != "What is 12*7? Use the calculator." {
		t.Errorf("call %d: messages start %v %v, want system then user", n, provPath(msgs, 0), provPath(msgs, 1))
	}
	provCheckOAITools(t, b)
	if provBool(b, "stream") != stream {
		t.Errorf("call %d: stream %v, want %v", n, b["stream"], stream)
	}
	if stream && !provBool(b, "stream_options", "include_usage") {
		t.Errorf("call %d: stream_options %v, want include_usage true", n, b["stream_options"])
	}
}

func TestProvChatUpstreamErrors(t *testing.T) {
	type tc struct {
		name       string
		replies    []provReply
		always     *provReply
		stream     bool
		minElapsed time.Duration // a lower bound: Retry-After honoured
		wantStatus int
		wantCalls  int
	}
	anthOverloaded := provAnthFrames(nil, nil, 40, 1)[:1] // message_start, then the error event
	anthOverloaded = append(anthOverloaded, provAnthErrorEvent("overloaded_error", "Overloaded"))
	oaiServerError := []provFrame{{data: provJSON(map[string]any{"error": map[string]any{
		"message": "The server had an error while processing your request", "type": "server_error", "param": nil, "code": nil}})}}
	garbage := provReply{body: `{"id": "msg_x", "type": "mess`}
	cases := map[string][]tc{
		"anthropic": {
			{name: "400", replies: []provReply{provAnthError(400, "invalid_request_error", "messages: field required", "")}, wantStatus: 502, wantCalls: 1},
			{name: "401", replies: []provReply{provAnthError(401, "authentication_error", "invalid x-api-key", "")}, wantStatus: 502, wantCalls: 1},
			{name: "403", replies: []provReply{provAnthError(403, "permission_error", "no access", "")}, wantStatus: 502, wantCalls: 1},
			{name: "404", replies: []provReply{provAnthError(404, "not_found_error", "model: claude-x", "")}, wantStatus: 502, wantCalls: 1},
			{name: "429_then_ok", replies: []provReply{provAnthError(429, "rate_limit_error", "slow down", "0"),
				provText("anthropic", false, []string{"84"}, 10, 2)}, wantStatus: 200, wantCalls: 2},
			{name: "429_retry_after_2", replies: []provReply{provAnthError(429, "rate_limit_error", "slow down", "2"),
				provText("anthropic", false, []string{"84"}, 10, 2)}, minElapsed: 2 * time.Second, wantStatus: 200, wantCalls: 2},
			{name: "stream_overloaded_event_then_ok", stream: true, replies: []provReply{{frames: anthOverloaded},
				provText("anthropic", true, []string{"84"}, 10, 2)}, wantStatus: 200, wantCalls: 2},
			{name: "500", always: &provReply{status: 500, body: provAnthError(500, "api_error", "Internal server error", "").body}, wantStatus: 502, wantCalls: 2},
			{name: "529", always: &provReply{status: 529, body: provAnthError(529, "overloaded_error", "Overloaded", "").body}, wantStatus: 502, wantCalls: 2},
			{name: "garbage_200", replies: []provReply{garbage}, wantStatus: 502, wantCalls: 1},
		},
		"openai": {
			{name: "400", replies: []provReply{provOAIError(400, "invalid_request_error", "", "bad messages", "")}, wantStatus: 502, wantCalls: 1},
			{name: "401", replies: []provReply{provOAIError(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided", "")}, wantStatus: 502, wantCalls: 1},
			{name: "403", replies: []provReply{provOAIError(403, "invalid_request_error", "unsupported_country_region_territory", "not supported", "")}, wantStatus: 502, wantCalls: 1},
			{name: "404", replies: []provReply{provOAIError(404, "invalid_request_error", "model_not_found", "model does not exist", "")}, wantStatus: 502, wantCalls: 1},
			{name: "429_then_ok", replies: []provReply{provOAIError(429, "requests", "rate_limit_exceeded", "Rate limit reached", "0"),
				provText("openai", false, []string{"84"}, 10, 2)}, wantStatus: 200, wantCalls: 2},
			{name: "429_quota", replies: []provReply{provOAIError(429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota", "")}, wantStatus: 502, wantCalls: 1},
			{name: "429_retry_after_2", replies: []provReply{provOAIError(429, "requests", "rate_limit_exceeded", "Rate limit reached", "2"),
				provText("openai", false, []string{"84"}, 10, 2)}, minElapsed: 2 * time.Second, wantStatus: 200, wantCalls: 2},
			{name: "stream_error_chunk_then_ok", stream: true, replies: []provReply{{frames: oaiServerError},
				provText("openai", true, []string{"84"}, 10, 2)}, wantStatus: 200, wantCalls: 2},
			{name: "500", always: &provReply{status: 500, body: provOAIError(500, "server_error", "", "The server had an error", "").body}, wantStatus: 502, wantCalls: 2},
			{name: "503", always: &provReply{status: 503, body: provOAIError(503, "server_error", "", "The engine is currently overloaded", "").body}, wantStatus: 502, wantCalls: 2},
			{name: "garbage_200", replies: []provReply{{body: `<html>502 Bad Gateway</html>`}}, wantStatus: 502, wantCalls: 1},
		},
	}
	for _, kind := range provKinds {
		for _, c := range cases[kind] {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				f := provNewFake(t, kind, c.replies...)
				if c.always != nil {
					f.Always(*c.always)
				}
				p := provStartAgent(t, f)
				start := time.Now()
				status, body, events := provChat(t, p, "prov-err-"+c.name, c.stream)
				elapsed := time.Since(start)
				if c.stream && len(events) > 0 {
					last := events[len(events)-1]
					if last.Event != "done" {
						t.Fatalf("stream events %v, want … done", events)
					}
					status, body = 200, []byte(last.Data)
				}
				if elapsed < c.minElapsed {
					t.Errorf("answered after %v, want ≥ %v (upstream Retry-After)", elapsed, c.minElapsed)
				}
				if status != c.wantStatus {
					t.Fatalf("/chat status %d, want %d: %s", status, c.wantStatus, body)
				}
				if status != 200 {
					var e provErrorBody
					if err := json.Unmarshal(body, &e); err != nil || e.Error.Type != "upstream_error" || e.Error.TraceID == "" {
						t.Errorf("error body %s, want type upstream_error with a trace_id", body)
					}
				} else {
					var res provChatResult
					if err := json.Unmarshal(body, &res); err != nil || res.Message != "84" || res.Usage.InputTokens != 10 {
						t.Errorf("body %s, want the answer after the retry", body)
					}
				}
				if bytes.Contains(body, []byte("test-key")) {
					t.Errorf("answer leaks the API key: %s", body)
				}
				if n := len(f.Requests()); n != c.wantCalls {
					t.Errorf("%d upstream calls, want %d", n, c.wantCalls)
				}
			})
		}
	}
}

// provLongText is an answer streamed in ten pieces, 310 bytes in all.
var provLongText = strings.SplitAfter(strings.TrimSuffix(strings.Repeat("The answer needs some thought. ", 10), " "), ". ")

func TestProvChatStreamCut(t *testing.T) {
	type tc struct {
		name  string
		reply provReply
	}
	// Long enough that the binary's stream redactor (which holds back the
	// last 64+ bytes) releases text before the cut.
	anth := provAnthFrames(provLongText, nil, 40, 9)
	oai := provOAIFrames(provLongText, nil, 40, 9)
	// Anthropic: everything before message_delta / message_stop; OpenAI:
	// the text chunks, without finish_reason, usage and [DONE].
	anthCut, oaiCut := anth[:len(anth)-2], oai[:len(oai)-3]
	cases := map[string][]tc{
		"anthropic": {
			{"eof_before_message_stop", provReply{frames: anthCut}},
			{"reset_before_message_stop", provReply{frames: anthCut, end: provEndAbort}},
			{"eof_after_message_delta", provReply{frames: anth[:len(anth)-1]}},
			{"error_event", provReply{frames: append(append([]provFrame(nil), anthCut...), provAnthErrorEvent("overloaded_error", "Overloaded"))}},
		},
		"openai": {
			{"eof_before_done", provReply{frames: oaiCut}},
			{"reset_before_done", provReply{frames: oaiCut, end: provEndAbort}},
			{"eof_after_usage", provReply{frames: oai[:len(oai)-1]}},
			{"error_chunk", provReply{frames: append(append([]provFrame(nil), oaiCut...),
				provFrame{data: provJSON(map[string]any{"error": map[string]any{"message": "The server had an error", "type": "server_error", "param": nil, "code": nil}})})}},
		},
	}
	for _, kind := range provKinds {
		for _, c := range cases[kind] {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				f := provNewFake(t, kind, c.reply)
				p := provStartAgent(t, f)
				status, body, events := provChat(t, p, "prov-cut-"+c.name, true)
				if status != http.StatusOK || len(events) == 0 {
					t.Fatalf("/chat status %d body %s events %v, want a stream", status, body, events)
				}
				names := []string{}
				for _, ev := range events {
					names = append(names, ev.Event)
				}
				last := events[len(events)-1]
				if events[0].Event != "start" || last.Event != "error" || strings.Contains(strings.Join(names, ","), "done") {
					t.Fatalf("events %v, want start … error and never done", names)
				}
				if typ, trace, ok := errorObject([]byte(last.Data)); !ok || typ != "upstream_error" || trace == "" {
					t.Errorf("error event %s, want type upstream_error with a trace_id", last.Data)
				}
				var text strings.Builder
				for _, ev := range events {
					var d struct {
						Text string `json:"text"`
					}
					if ev.Event == "delta" && json.Unmarshal([]byte(ev.Data), &d) == nil {
						text.WriteString(d.Text)
					}
				}
				if text.Len() == 0 || !strings.HasPrefix(strings.Join(provLongText, ""), text.String()) {
					t.Errorf("streamed text %q, want a non-empty prefix of the text sent before the cut", text.String())
				}
				// Text already went to the client: the call is not retried.
				if n := len(f.Requests()); n != 1 {
					t.Errorf("%d upstream calls, want 1", n)
				}
			})
		}
	}
}

// provMetric returns the value of the sample name{labels} on /metrics (0
// when absent).
func provMetric(t *testing.T, p *agentProc, sample string) float64 {
	t.Helper()
	status, body := doJSON(t, http.MethodGet, p.Admin+"/metrics", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics status %d", status)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

func TestProvChatClientDisconnect(t *testing.T) {
	const inputTokens = 1234
	const sample = `agent_llm_tokens_total{direction="input"}`
	for _, kind := range provKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var frames []provFrame
			if kind == "anthropic" {
				frames = provAnthFrames([]string{strings.Join(provLongText, "")}, nil, inputTokens, 50)
				frames = frames[:4] // message_start, content_block_start, ping, one text_delta
			} else {
				frames = provOAIFrames([]string{strings.Join(provLongText, "")}, nil, inputTokens, 50)[:2] // role chunk, one content chunk
			}
			f := provNewFake(t, kind, provReply{frames: frames, end: provEndHang})
			p := provStartAgent(t, f)
			before := provMetric(t, p, sample)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			resp := provPostChat(t, ctx, p, "prov-disconnect", true)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("/chat status %d: %s", resp.StatusCode, b)
			}
			events, _ := provReadSSE(resp.Body, func(ev provSSE) bool { return ev.Event != "delta" })
			if len(events) == 0 || events[len(events)-1].Event != "delta" {
				t.Fatalf("events %v, want a delta before disconnecting", events)
			}
			cancel() // the client goes away after the first delta
			select {
			case <-f.cancelled:
			case <-time.After(15 * time.Second):
				t.Fatal("the upstream call was not cancelled within 15s of the client disconnecting")
			}
			if kind != "anthropic" {
				return // OpenAI reports usage only at the end of the stream
			}
			// message_start reported the input tokens: they are counted.
			if !pollUntil(t.Context(), 15*time.Second, func() bool { return provMetric(t, p, sample) >= before+inputTokens }) {
				t.Fatalf("%s = %v, want %v (input tokens of the cancelled call)", sample, provMetric(t, p, sample), before+inputTokens)
			}
			if got := provMetric(t, p, sample); got != before+inputTokens {
				t.Errorf("%s = %v, want exactly %v", sample, got, before+inputTokens)
			}
		})
	}
}
