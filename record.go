package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// recordAudit adds ev to the current request's batch. Fields common to the
// request (actor, source, user agent, ids) are filled in when the batch is
// flushed. Outside a request it does nothing.
func recordAudit(ctx context.Context, ev AuditEvent) {
	ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo)
	if !ok {
		return
	}
	ri.mu.Lock()
	if ri.events == nil {
		ri.events = make([]AuditEvent, 0, 4) // a /chat turn records three or four
	}
	ri.events = append(ri.events, ev)
	ri.mu.Unlock()
}

// flushAudit writes the request's batch in one Append, so the records are
// durable (fsync = "always") before the answer is sent. It runs even when
// the client has gone: the tokens a cancelled turn used are still audited.
func (a *app) flushAudit(r *http.Request) error {
	ri := requestInfoFrom(r.Context())
	ri.mu.Lock()
	events := ri.events
	ri.events = nil
	ri.mu.Unlock()
	if len(events) == 0 {
		return nil
	}
	actor := ri.principal.Subject
	if actor == "" {
		actor = ri.user
	}
	if actor == "" {
		actor = "anonymous"
	}
	ua := ri.userAgent
	if ua == "" {
		ua = "(none)"
	}
	requestID, traceID := ri.requestID(), ri.traceID()
	for i := range events {
		ev := &events[i]
		if ev.Actor == "" {
			ev.Actor = actor
		}
		if ev.SourceIP == "" {
			ev.SourceIP = ri.clientIP
		}
		ev.UserAgent = ua
		if ev.SessionID == "" {
			ev.SessionID = ri.sessionID
		}
		ev.RequestID, ev.TraceID = requestID, traceID
	}
	// A client that went away must not cut the write short; the file
	// backend bounds its own wait for a stuck disk (auditMaxWait).
	err := a.audit.Append(context.WithoutCancel(r.Context()), events...)
	if err != nil {
		a.logger.ErrorContext(r.Context(), "audit write failed; answering 503", "events", len(events), "error", err.Error())
	}
	return err
}

// incidentSeverity maps a threat level to an audit severity.
func incidentSeverity(level string) string {
	switch level {
	case "critical":
		return SeverityCritical
	case "high":
		return SeverityError
	case "medium":
		return SeverityWarning
	default:
		return SeverityInfo
	}
}

// onIncident counts and audits incidents raised by the security monitor.
func (a *app) onIncident(inc Incident, isNew bool) {
	// Called for new incidents and for escalations: both count at the level
	// reached, so alerts on high/critical see an incident that grew into it.
	a.metrics.securityIncidents.WithLabelValues(inc.IncidentType, inc.ThreatLevel).Inc()
	action := "security.incident"
	if !isNew {
		action = "security.incident_escalated"
	}
	a.logger.Warn("security incident", "incident_id", inc.ID, "type", inc.IncidentType, "level", inc.ThreatLevel,
		"source", inc.Source, "new", isNew)
	a.recordSystem(context.Background(), AuditEvent{
		EventType: EventSecurity, Severity: incidentSeverity(inc.ThreatLevel), Action: action,
		Actor: inc.Metadata["principal"], Resource: "incident:" + inc.ID, Success: true, SourceIP: inc.Source,
		Metadata: map[string]string{
			"incident_id": inc.ID, "incident_type": inc.IncidentType, "threat_level": inc.ThreatLevel,
			"action_taken": inc.ActionTaken, "count": inc.Metadata["count"],
		},
	})
}

func (a *app) onBlock(source, principal string, until time.Time) {
	a.logger.Warn("blocking source", slog.String("source", source), slog.String("principal", principal),
		slog.Time("until", until))
}

// llmAuditEvent describes one model call for the audit trail.
func llmAuditEvent(provider, model, outcome string, err error, d time.Duration, u Usage, cost float64) AuditEvent {
	sev := SeverityInfo
	if outcome != "success" {
		sev = SeverityWarning
	}
	return AuditEvent{
		EventType: EventLLMInteraction, Severity: sev, Action: "llm.call", Resource: "llm:" + provider,
		Success: outcome == "success", ErrorMessage: llmAuditError(outcome, err),
		Metadata: map[string]string{
			"provider": provider, "model": model, "outcome": outcome,
			"input_tokens":  strconv.Itoa(u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens),
			"output_tokens": strconv.Itoa(u.OutputTokens),
			"cost_usd":      strconv.FormatFloat(cost, 'f', -1, 64),
			"latency_ms":    strconv.FormatInt(d.Milliseconds(), 10),
		},
	}
}

// llmAuditError says why an LLM call failed ("" when it did not), in
// words of ours: never the provider's message, which may quote the
// request, and message text never enters the audit trail.
func llmAuditError(outcome string, err error) string {
	var pe *ProviderError
	switch {
	case err == nil:
		return ""
	case outcome == "timeout":
		return "the call timed out"
	case outcome == "cancelled":
		return "the caller went away"
	case errors.As(err, &pe):
		s := "provider error"
		if pe.StatusCode != 0 {
			s += " status " + strconv.Itoa(pe.StatusCode)
		}
		if pe.Type != "" {
			s += " " + pe.Type
		} else if pe.StatusCode == 0 {
			s += ": request failed" // transport error: no answer
		}
		return s
	default:
		return classify(err).Type
	}
}
