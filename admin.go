package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// handleAuditQuery is GET /audit: {"events": [...]}, newest first.
func (a *app) handleAuditQuery() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := parseAuditQuery(r.URL.Query())
		if err != nil {
			writeError(w, r, a.logger, badRequest("%s", err.Error()))
			return
		}
		events, err := a.audit.Query(q)
		if err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		encode(w, http.StatusOK, map[string][]AuditEvent{"events": nonNil(events)})
	})
}

// handleIncidents is GET /security/incidents: {"incidents": [...]}.
func (a *app) handleIncidents() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := parseIncidentFilter(r.URL.Query())
		if err != nil {
			writeError(w, r, a.logger, badRequest("%s", err.Error()))
			return
		}
		encode(w, http.StatusOK, map[string][]Incident{"incidents": nonNil(a.monitor.Incidents(f))})
	})
}

// handlePatchIncident is PATCH /security/incidents/{id} with
// {"status": "investigating|resolved|false_positive"}; the change is audited.
func (a *app) handlePatchIncident() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		var body struct {
			Status *string `json:"status"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeError(w, r, a.logger, jsonError(err))
			return
		}
		if body.Status == nil {
			writeError(w, r, a.logger, badRequest("field status is required"))
			return
		}
		id := r.PathValue("id")
		inc, err := a.monitor.UpdateStatus(id, *body.Status)
		switch {
		case errors.Is(err, ErrIncidentNotFound):
			writeError(w, r, a.logger, &apiError{Status: 404, Type: "not_found", Message: "incident not found"})
			return
		case err != nil:
			writeError(w, r, a.logger, badRequest("%s", err.Error()))
			return
		}
		recordAudit(r.Context(), AuditEvent{EventType: EventSecurity, Severity: SeverityInfo,
			Action: "security.incident_status", Resource: "incident:" + id, Success: true,
			Metadata: map[string]string{"status": inc.Status, "incident_type": inc.IncidentType}})
		if err := a.flushAudit(r); err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		encode(w, http.StatusOK, inc)
	})
}

// handleDashboard is GET /security/dashboard.
func (a *app) handleDashboard() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, a.monitor.Dashboard())
	})
}
