package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Errors of the perimeter, each with its answer (DESIGN §4).
var (
	errUnauthenticated = &apiError{Status: 401, Type: "unauthenticated",
		Message: "valid credentials are required: send Authorization: Bearer <API key or JWT>"}
	errAdminOnly = &apiError{Status: 403, Type: "forbidden", Message: "this route requires the admin role"}
)

// authenticate identifies the caller (anonymous when auth is off). A
// failure is audited, reported to the security monitor and answered 401.
func (a *app) authenticate(r *http.Request) (Principal, error) {
	ri := requestInfoFrom(r.Context())
	p, err := a.auth.Authenticate(r)
	if err != nil {
		var ae *AuthError
		reason, identity := "invalid", ""
		if errors.As(err, &ae) {
			reason, identity = ae.Reason, ae.Identity
		}
		switch {
		case errors.Is(err, ErrNoCredentials):
			a.monitor.Unauthenticated(ri.clientIP, ri.route)
		case reason == "bad_role":
			a.monitor.PrivilegeEscalation(ri.clientIP, identity, "token claims a role that is not issued: "+reason)
			a.monitor.AuthFailure(ri.clientIP, identity, reason)
		default:
			a.monitor.AuthFailure(ri.clientIP, identity, reason)
		}
		actor := identity
		if actor == "" {
			actor = "anonymous"
		}
		recordAudit(r.Context(), AuditEvent{EventType: EventAuthentication, Severity: SeverityWarning,
			Action: "auth.failure", Actor: actor, Resource: ri.route, ErrorMessage: reason,
			Metadata: map[string]string{"reason": reason}})
		return Principal{}, errUnauthenticated
	}
	ri.principal = p
	if p.Method != "anonymous" {
		ri.user = p.Subject
		recordAudit(r.Context(), AuditEvent{EventType: EventAuthentication, Severity: SeverityInfo,
			Action: "auth.success", Resource: ri.route, Success: true,
			Metadata: map[string]string{"method": p.Method, "role": p.Role, "key_id": p.KeyID}})
	}
	return p, nil
}

// checkBlocked answers 403 blocked while the security monitor blocks the
// caller's source address or principal.
func (a *app) checkBlocked(r *http.Request, p Principal) error {
	ri := requestInfoFrom(r.Context())
	blocked, retry := a.monitor.Blocked(ri.clientIP, p.Subject)
	if !blocked {
		return nil
	}
	recordAudit(r.Context(), AuditEvent{EventType: EventSecurity, Severity: SeverityWarning,
		Action: "request.blocked", Resource: ri.route, ErrorMessage: "source or principal blocked"})
	return &apiError{Status: 403, Type: "blocked", RetryAfter: retry,
		Message: "requests from this source or principal are blocked after a security incident"}
}

// rateLimit takes a token from key's bucket of lim (nil: limiting off). The
// RateLimit headers describe the bucket; an empty bucket answers 429.
func (a *app) rateLimit(w http.ResponseWriter, r *http.Request, lim *KeyedLimiter, scope, key string) error {
	if lim == nil {
		return nil
	}
	ri := requestInfoFrom(r.Context())
	d := lim.DecideAt(key, ri.start) // the clock was read once, when the request arrived
	setRateLimitHeaders(w.Header(), scope, d)
	if d.Allowed {
		return nil
	}
	a.metrics.rateLimited.WithLabelValues(scope).Inc()
	a.monitor.RateLimited(scope, key, ri.clientIP)
	recordAudit(r.Context(), AuditEvent{EventType: EventSecurity, Severity: SeverityWarning,
		Action: "rate_limit.rejected", Resource: ri.route, ErrorMessage: "token bucket empty",
		Metadata: map[string]string{"scope": scope}})
	return &apiError{Status: 429, Type: "rate_limited", RetryAfter: d.RetryAfter,
		Message: fmt.Sprintf("rate limit exceeded (%s); retry after the Retry-After delay", scope)}
}

// deny audits an authorization denial and returns its 403.
func (a *app) deny(r *http.Request, action, resource, msg string) error {
	recordAudit(r.Context(), AuditEvent{EventType: EventAuthorization, Severity: SeverityWarning,
		Action: action, Resource: resource, ErrorMessage: msg})
	return &apiError{Status: 403, Type: "forbidden", Message: msg}
}

// source is the client address the audit trail and the security monitor
// see. The body's source_ip counts only from a trusted proxy or a
// service/admin caller; otherwise it is kept as claimed_source_ip in the
// request's audit records and used for nothing else.
func (a *app) source(r *http.Request, p Principal, claimed netip.Addr) string {
	ri := requestInfoFrom(r.Context())
	if !claimed.IsValid() {
		return ri.clientIP
	}
	if ri.viaProxy || p.Role == "service" || p.Role == "admin" {
		ri.clientIP = claimed.String()
		return ri.clientIP
	}
	recordAudit(r.Context(), AuditEvent{EventType: EventSecurity, Severity: SeverityInfo,
		Action: "request.claimed_source_ip", Resource: ri.route, Success: true,
		Metadata: map[string]string{"claimed_source_ip": claimed.String()}})
	return ri.clientIP
}

// scanPrompt runs the prompt-injection detector. A detection is always an
// incident, an audit event and a metric; with action "block" it is also a
// 400 prompt_injection.
func (a *app) scanPrompt(r *http.Request, source, principal, message string) error {
	if !a.cfg.Security.Enabled {
		return nil
	}
	v := a.detector.Scan(message)
	if !v.Injection {
		return nil
	}
	action := a.cfg.Security.PromptInjectionAction
	a.monitor.PromptInjection(source, principal, v.Score, v.Signals, v.Invisible, v.Encoded, action)
	recordAudit(r.Context(), AuditEvent{EventType: EventSecurity, Severity: SeverityWarning,
		Action: "security.prompt_injection", Resource: "session:" + requestInfoFrom(r.Context()).sessionID,
		Success: action != "block", Metadata: map[string]string{
			"score": strconv.FormatFloat(v.Score, 'f', 3, 64), "signals": strings.Join(v.Signals, ","), "action": action,
		}})
	if action == "block" {
		return &apiError{Status: 400, Type: "prompt_injection",
			Message: "the message was rejected by the prompt-injection filter (signals: " + strings.Join(v.Signals, ", ") + ")"}
	}
	return nil
}

// requireAdmin guards the admin routes: with auth on, the caller must hold
// the admin role; a non-admin is a privilege-escalation attempt. Every
// successful admin read is audited as data_access.
func (a *app) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := requestInfoFrom(r.Context())
		p, err := a.authenticate(r)
		if err == nil {
			err = a.checkBlocked(r, p)
		}
		if err == nil && a.cfg.Auth.Enabled && p.Role != "admin" {
			a.monitor.PrivilegeEscalation(ri.clientIP, p.Subject, "role "+p.Role+" called "+ri.route)
			err = a.deny(r, "admin.denied", ri.route, errAdminOnly.Message)
		}
		if err != nil {
			a.flushAudit(r)
			writeError(w, r, a.logger, err)
			return
		}
		recordAudit(r.Context(), AuditEvent{EventType: EventDataAccess, Severity: SeverityInfo,
			Action: "admin." + r.Method, Resource: ri.route, Success: true,
			Metadata: map[string]string{"query": r.URL.RawQuery}})
		if err := a.flushAudit(r); err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
