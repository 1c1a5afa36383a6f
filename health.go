package main

import (
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"time"
)

// Readiness phases of the process.
const (
	phaseStarting int32 = iota
	phaseReady
	phaseShuttingDown
)

// componentStatus is one entry of /health's components.
type componentStatus struct {
	Status  string `json:"status"` // healthy | degraded | unhealthy
	Message string `json:"message"`
}

// Health answers the probes of DESIGN §7. None of them calls the LLM:
// the llm component reports the breaker's view of it.
type Health struct {
	version string
	started time.Time
	now     func() time.Time
	phase   atomic.Int32

	// Component checks; each is cheap and never blocks on the network.
	llm      func() componentStatus
	audit    func() error // nil when audit records can be written
	sessions func() componentStatus
}

// SetReady marks startup complete.
func (h *Health) SetReady() { h.phase.CompareAndSwap(phaseStarting, phaseReady) }

// SetShuttingDown makes readiness fail from now on.
func (h *Health) SetShuttingDown() { h.phase.Store(phaseShuttingDown) }

type healthBody struct {
	Status        string                     `json:"status"`
	Components    map[string]componentStatus `json:"components"`
	Version       string                     `json:"version"`
	UptimeSeconds float64                    `json:"uptime_seconds"`
}

func (h *Health) report() (int, healthBody) {
	comps := map[string]componentStatus{
		"llm":      h.llm(),
		"sessions": h.sessions(),
		"audit":    {Status: "healthy", Message: "records are being written"},
	}
	if err := h.audit(); err != nil {
		comps["audit"] = componentStatus{Status: "unhealthy", Message: err.Error()}
	}
	status := "healthy"
	for _, c := range comps {
		if c.Status == "unhealthy" {
			status = "unhealthy"
		} else if c.Status == "degraded" && status == "healthy" {
			status = "degraded"
		}
	}
	code := http.StatusOK
	if status == "unhealthy" {
		code = http.StatusServiceUnavailable
	}
	if h.phase.Load() == phaseStarting {
		code = http.StatusServiceUnavailable
		comps["process"] = componentStatus{Status: "unhealthy", Message: "starting"}
		status = "unhealthy"
	}
	uptime := math.Round(h.now().Sub(h.started).Seconds()*1000) / 1000
	return code, healthBody{Status: status, Components: comps, Version: h.version, UptimeSeconds: uptime}
}

func (h *Health) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, body := h.report()
		encode(w, code, body)
	})
}

func (h *Health) handleLive() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "alive"})
	})
}

// handleReady never looks at the LLM: if it did, an upstream outage would
// take every replica out of the load balancer at once.
func (h *Health) handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reason := ""
		switch h.phase.Load() {
		case phaseStarting:
			reason = "starting"
		case phaseShuttingDown:
			reason = "shutting_down"
		default:
			if h.audit() != nil {
				reason = "audit_unavailable"
			}
		}
		if reason != "" {
			encode(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready", "reason": reason})
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// sessionsComponent reports the session store's fill level.
func sessionsComponent(st *SessionStore, max int) func() componentStatus {
	return func() componentStatus {
		n := st.Len()
		msg := fmt.Sprintf("%d of %d sessions in use", n, max)
		if n >= max {
			return componentStatus{Status: "degraded", Message: msg + "; least recently used sessions are being evicted"}
		}
		return componentStatus{Status: "healthy", Message: msg}
	}
}
