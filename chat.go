package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// chatRequest is the body of POST /chat (DESIGN §4). Pointers tell a
// missing field from an empty one.
type chatRequest struct {
	UserID    *string `json:"user_id"`
	SessionID *string `json:"session_id"`
	Message   *string `json:"message"`
	SourceIP  *string `json:"source_ip"`
	Stream    *bool   `json:"stream"`
}

// chatInput is a validated chatRequest.
type chatInput struct {
	UserID, SessionID, Message string
	SourceIP                   netip.Addr // zero when absent
	Stream                     bool
}

// chatResponse is the 200 body of POST /chat.
type chatResponse struct {
	*TurnResult
	TraceID string `json:"trace_id"`
}

// chatLimits bound what a /chat body may hold.
type chatLimits struct {
	MaxBodyBytes    int64
	MaxMessageBytes int
}

// decodeChat reads and validates a /chat request. Every failure is an
// *apiError naming the problem.
func decodeChat(w http.ResponseWriter, r *http.Request, lim chatLimits) (chatInput, error) {
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return chatInput{}, err
	}
	tooLarge := func() error {
		return &apiError{Status: 413, Type: "payload_too_large",
			Message: fmt.Sprintf("request body is larger than %d bytes", lim.MaxBodyBytes)}
	}
	if r.ContentLength > lim.MaxBodyBytes {
		return chatInput{}, tooLarge() // before reading, so "Expect: 100-continue" gets no 100
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lim.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return chatInput{}, tooLarge()
		}
		return chatInput{}, badRequest("could not read the request body")
	}
	return parseChatBody(body, lim)
}

// checkJSONContentType accepts application/json with optional parameters
// (charset must be utf-8 if given).
func checkJSONContentType(ct string) error {
	if ct == "application/json" { // what nearly every client sends
		return nil
	}
	unsupported := &apiError{Status: 415, Type: "unsupported_media_type",
		Message: "Content-Type must be application/json"}
	if ct == "" {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return unsupported
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &apiError{Status: 415, Type: "unsupported_media_type", Message: "charset must be utf-8"}
	}
	return nil
}

// parseChatBody validates a complete body (separate from I/O for fuzzing).
func parseChatBody(body []byte, lim chatLimits) (chatInput, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return chatInput{}, badRequest("request body is empty")
	}
	// encoding/json silently replaces invalid UTF-8 with U+FFFD; refuse it instead.
	if !utf8.Valid(body) {
		return chatInput{}, badRequest("request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req chatRequest
	if err := dec.Decode(&req); err != nil {
		return chatInput{}, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return chatInput{}, badRequest("request body must hold a single JSON object")
	}
	var in chatInput
	var err error
	if in.UserID, err = requiredID("user_id", req.UserID); err != nil {
		return chatInput{}, err
	}
	if in.SessionID, err = requiredID("session_id", req.SessionID); err != nil {
		return chatInput{}, err
	}
	switch {
	case req.Message == nil:
		return chatInput{}, badRequest("field message is required")
	case strings.TrimSpace(*req.Message) == "":
		return chatInput{}, badRequest("field message must not be blank")
	case strings.ContainsRune(*req.Message, 0):
		return chatInput{}, badRequest("field message must not contain NUL characters")
	case len(*req.Message) > lim.MaxMessageBytes:
		return chatInput{}, &apiError{Status: 413, Type: "payload_too_large",
			Message: fmt.Sprintf("field message is longer than %d bytes", lim.MaxMessageBytes)}
	}
	in.Message = *req.Message
	if req.SourceIP != nil {
		ip, err := netip.ParseAddr(*req.SourceIP)
		if err != nil || ip.Zone() != "" {
			return chatInput{}, badRequest("field source_ip must be an IP address")
		}
		in.SourceIP = ip.Unmap()
	}
	if req.Stream != nil {
		in.Stream = *req.Stream
	}
	return in, nil
}

// jsonError turns a decoding error into a client-facing message.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest("request body is not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("request body must be a JSON object")
		}
		return badRequest("field %s must be a %s", te.Field, jsonTypeName(te.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("request body is truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if len(name) > 64 { // never echo a huge key back
			name = strings.ToValidUTF8(name[:64], "") + "…"
		}
		return badRequest("unknown field %s", name)
	default:
		return badRequest("request body is not valid JSON")
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "bool":
		return "boolean"
	case "ptr", "string":
		return "string"
	}
	return kind
}

// requiredID validates user_id / session_id: 1–128 of [A-Za-z0-9._:@-].
func requiredID(name string, v *string) (string, error) {
	if v == nil {
		return "", badRequest("field %s is required", name)
	}
	if !validID(*v) {
		return "", badRequest("field %s must be 1-128 characters of A-Z a-z 0-9 . _ : @ -", name)
	}
	return *v, nil
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

// handleChat is POST /chat, in the order of DESIGN §2: authenticate,
// blocked?, token buckets (cheap checks first), body, authorization,
// prompt-injection scan, then the turn; audit records are written before
// the answer.
func (a *app) handleChat() http.Handler {
	lim := chatLimits{MaxBodyBytes: a.cfg.Server.MaxBodyBytes, MaxMessageBytes: a.cfg.LLM.MaxMessageBytes}
	timeout := seconds(a.cfg.Server.RequestTimeoutSeconds)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := a.serveChat(w, r, lim, timeout)
		a.metrics.observeChat(status)
	})
}

// serveChat answers one /chat request and returns its status.
func (a *app) serveChat(w http.ResponseWriter, r *http.Request, lim chatLimits, timeout time.Duration) int {
	ri := requestInfoFrom(r.Context())
	fail := func(err error) int {
		a.flushAudit(r) // best effort: the error answer goes out either way
		writeError(w, r, a.logger, err)
		return classify(err).Status
	}
	p, err := a.authenticate(r)
	if err != nil {
		return fail(err)
	}
	if err := a.checkBlocked(r, p); err != nil {
		return fail(err)
	}
	if err := a.rateLimit(w, r, a.guards.ipLimiter.Load(), "ip", ri.clientIP); err != nil {
		return fail(err)
	}
	if a.cfg.Auth.Enabled {
		if err := a.rateLimit(w, r, a.guards.principalLimiter.Load(), "principal", p.Subject); err != nil {
			return fail(err)
		}
	}
	in, err := decodeChat(w, r, lim)
	if err != nil {
		return fail(err)
	}
	ri.user, ri.sessionID = in.UserID, in.SessionID
	if !a.cfg.Auth.Enabled {
		// With auth off the principal is the body's user_id: a block on
		// it is known only now.
		if err := a.checkBlocked(r, Principal{Subject: in.UserID}); err != nil {
			return fail(err)
		}
		if err := a.rateLimit(w, r, a.guards.principalLimiter.Load(), "principal", in.UserID); err != nil {
			return fail(err)
		}
	}
	if !p.CanActFor(in.UserID) {
		return fail(a.deny(r, "chat.as_other_user", "user_id "+in.UserID, "you may only chat as your own user_id"))
	}
	source := a.source(r, p, in.SourceIP)
	principal := in.UserID
	if a.cfg.Auth.Enabled {
		principal = p.Subject
	}
	if err := a.audit.Healthy(); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrAuditUnavailable, err))
	}
	if err := a.scanPrompt(r, source, principal, in.Message); err != nil {
		return fail(err)
	}
	a.monitor.Access(source, principal)

	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	treq := TurnRequest{UserID: in.UserID, SessionID: in.SessionID, Message: in.Message,
		Header: map[string]string{"traceparent": ri.traceparent()}}
	if ri.trace.State != "" {
		treq.Header["tracestate"] = ri.trace.State
	}
	finish := func(res *TurnResult) error {
		a.redact(r, source, principal, res)
		return a.flushAudit(r)
	}
	if in.Stream || acceptsEventStream(r.Header.Get("Accept")) {
		return a.streamChat(ctx, w, r, treq, finish)
	}
	res, err := a.agent.Turn(ctx, treq)
	if err != nil {
		return fail(a.turnError(r, source, principal, in.SessionID, err))
	}
	if err := finish(res); err != nil {
		writeError(w, r, a.logger, err)
		return http.StatusServiceUnavailable
	}
	encode(w, http.StatusOK, chatResponse{TurnResult: res, TraceID: ri.traceID()})
	return http.StatusOK
}

// turnError reports what a failed turn means for security.
func (a *app) turnError(r *http.Request, source, principal, sessionID string, err error) error {
	if errors.Is(err, ErrSessionOwner) {
		a.monitor.SessionHijack(source, principal, sessionID, sessionOwner(err))
		recordAudit(r.Context(), AuditEvent{EventType: EventAuthorization, Severity: SeverityError,
			Action: "session.hijack_attempt", Resource: "session:" + sessionID, ErrorMessage: "session owned by another user"})
	}
	return err
}

// redact removes secrets from a turn's answer before it leaves the
// service (data_exfiltration).
func (a *app) redact(r *http.Request, source, principal string, res *TurnResult) {
	var found []string
	var kinds []string
	if res.Message, kinds = scanSecrets(res.Message); len(kinds) > 0 {
		found = append(found, kinds...)
	}
	for i := range res.ToolCalls {
		if res.ToolCalls[i].Output, kinds = scanSecrets(res.ToolCalls[i].Output); len(kinds) > 0 {
			found = append(found, kinds...)
		}
	}
	if len(found) == 0 {
		return
	}
	slices.Sort(found)
	found = slices.Compact(found)
	a.monitor.DataExfiltration(source, principal, found)
	recordAudit(r.Context(), AuditEvent{EventType: EventSecurity, Severity: SeverityError, Action: "security.output_redacted",
		Resource: "session:" + res.SessionID, Success: true, Metadata: map[string]string{"kinds": strings.Join(found, ",")}})
}

func acceptsEventStream(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		if mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// streamChat runs a turn as Server-Sent Events (DESIGN §4). The stream
// starts with the first event, so refusals before the model is reached
// (busy session, open breaker…) are still plain JSON answers with their
// status; a failure of the model itself always ends an SSE stream with
// "error", never "done". finish runs before "done" (redaction, audit); if it fails the
// stream ends with "error". It returns the status for the counters.
func (a *app) streamChat(ctx context.Context, w http.ResponseWriter, r *http.Request, treq TurnRequest, finish func(*TurnResult) error) int {
	ri := requestInfoFrom(r.Context())
	rc := http.NewResponseController(w)
	started := false
	send := func(event string, v any) error {
		if !started {
			started = true
			h := w.Header()
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no") // tell nginx-style proxies not to buffer the stream
			w.WriteHeader(http.StatusOK)
			if err := writeSSE(w, "start", map[string]string{"session_id": treq.SessionID, "trace_id": ri.traceID()}); err != nil {
				return err
			}
		}
		if err := writeSSE(w, event, v); err != nil {
			return err
		}
		return rc.Flush()
	}
	// Deltas pass through the redactor, so a secret split across them
	// never reaches the client; held text is released before other events.
	var sr streamRedactor
	flushText := func() error {
		if t := sr.flush(); t != "" {
			return send("delta", map[string]string{"text": t})
		}
		return nil
	}
	treq.OnEvent = func(ev TurnEvent) error {
		if ev.Type != "delta" {
			if err := flushText(); err != nil {
				return err
			}
		}
		switch ev.Type {
		case "delta":
			if t := sr.push(ev.Text); t != "" {
				return send("delta", map[string]string{"text": t})
			}
			return nil
		case "tool_call":
			return send("tool_call", toolCallEvent{ID: ev.Tool.ID, Name: ev.Tool.Name, Input: ev.Tool.Input})
		case "tool_result":
			rec := *ev.Result
			rec.Output, _ = scanSecrets(rec.Output)
			return send("tool_result", &rec)
		}
		return nil
	}
	res, err := a.agent.Turn(ctx, treq)
	if err == nil {
		err = finish(res)
	} else {
		a.flushAudit(r)
	}
	if err != nil {
		ae := classify(err)
		// Refusals before the model answered anything (busy, breaker open,
		// rate limits…) keep their status; once the model was reached, a
		// streaming client gets the failure as the stream's error event.
		upstream := ae.Type == "upstream_error" || ae.Type == "upstream_timeout"
		if !started && !upstream {
			writeError(w, r, a.logger, err)
			return ae.Status
		}
		ri.errType = ae.Type
		a.logger.ErrorContext(r.Context(), "stream failed", "error_type", ae.Type, "error", err.Error())
		// The error object of every error answer (DESIGN §4), as "done" carries the 200 body.
		send("error", errorBody{Error: errorDetail{Type: ae.Type, Message: ae.Message, TraceID: ri.traceID()}})
		return ae.Status
	}
	flushText()
	send("done", chatResponse{TurnResult: res, TraceID: ri.traceID()})
	return http.StatusOK
}

// toolCallEvent is the data of a "tool_call" event: the call, not yet run.
type toolCallEvent struct {
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// writeSSE writes one event; JSON never contains a raw newline, so one
// data line suffices.
func writeSSE(w io.Writer, event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
	return err
}

// sessionView is the body of GET /sessions/{id} (DESIGN §3).
type sessionView struct {
	SessionID      string    `json:"session_id"`
	ConversationID string    `json:"conversation_id"`
	UserID         string    `json:"user_id"`
	Status         string    `json:"status"`
	Messages       []Message `json:"messages"`
	Usage          Usage     `json:"usage"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// handleGetSession is GET /sessions/{id}; message text is shown redacted of secrets.
func (a *app) handleGetSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conv, owner, err := a.sessionAccess(r)
		if err == nil {
			recordAudit(r.Context(), AuditEvent{EventType: EventDataAccess, Severity: SeverityInfo,
				Action: "session.read", Resource: "session:" + conv.SessionID, Success: true})
			err = a.flushAudit(r)
		} else {
			a.flushAudit(r)
		}
		if err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		msgs := make([]Message, len(conv.Messages))
		for i, m := range conv.Messages {
			m.Content, _ = scanSecrets(m.Content)
			msgs[i] = m
		}
		encode(w, http.StatusOK, sessionView{
			SessionID: conv.SessionID, ConversationID: conv.ID, UserID: owner, Status: string(conv.Status),
			Messages: msgs, Usage: conv.Usage, CreatedAt: conv.CreatedAt, UpdatedAt: conv.UpdatedAt,
		})
	})
}

func (a *app) handleDeleteSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conv, _, err := a.sessionAccess(r)
		if err == nil {
			_, err = a.sessions.End(conv.SessionID, a.now(), nil)
		}
		if err == nil {
			recordAudit(r.Context(), AuditEvent{EventType: EventLLMInteraction, Severity: SeverityInfo,
				Action: "conversation.end", Resource: "session:" + conv.SessionID, Success: true,
				Metadata: map[string]string{"conversation_id": conv.ID}})
			err = a.flushAudit(r)
		} else {
			a.flushAudit(r)
		}
		if err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// sessionAccess authenticates the caller and loads the session it may see:
// its owner, a service or an admin caller (anyone with auth off).
func (a *app) sessionAccess(r *http.Request) (Conversation, string, error) {
	ri := requestInfoFrom(r.Context())
	p, err := a.authenticate(r)
	if err != nil {
		return Conversation{}, "", err
	}
	if err := a.checkBlocked(r, p); err != nil {
		return Conversation{}, "", err
	}
	id := r.PathValue("id")
	if !validID(id) {
		return Conversation{}, "", ErrSessionNotFound
	}
	ri.sessionID = id
	conv, owner, err := a.sessions.Get(id)
	if err != nil {
		return Conversation{}, "", err
	}
	if a.cfg.Auth.Enabled && !p.CanActFor(owner) {
		a.monitor.SessionHijack(ri.clientIP, p.Subject, id, owner)
		return Conversation{}, "", a.deny(r, "session.access_other_user", "session:"+id, "this session belongs to another user")
	}
	return conv, owner, nil
}
