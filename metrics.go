package main

import (
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every series of DESIGN §6 on a private registry. Label
// values always come from small fixed sets (route patterns, provider and
// tool names, outcome words), never from users, sessions, IPs or raw paths.
type Metrics struct {
	reg *prometheus.Registry

	requests           prometheus.Counter
	requestsSuccessful prometheus.Counter
	requestsFailed     prometheus.Counter
	requestDuration    *prometheus.HistogramVec // route

	llmTokens          *prometheus.CounterVec // direction
	llmCost            prometheus.Counter
	llmRequestDuration *prometheus.HistogramVec // provider, outcome
	toolExecutions     *prometheus.CounterVec   // tool, outcome

	// agent_circuit_breaker_state and agent_bulkhead_{in_flight,queued}
	// are read at scrape time by the guards collector (guard.go).
	breakerTransitions *prometheus.CounterVec // breaker, from, to
	rateLimited        *prometheus.CounterVec // scope
	bulkheadRejected   *prometheus.CounterVec // bulkhead, reason

	responses         *prometheus.CounterVec // route, code
	securityIncidents *prometheus.CounterVec // type, level
	auditEvents       *prometheus.CounterVec // event_type
	auditWriteErrors  prometheus.Counter
	auditEvicted      prometheus.Counter
	activeSessions    prometheus.Gauge

	spansDropped *prometheus.CounterVec // reason
}

// requestBuckets cover a fast embedded-model turn (sub-millisecond) up to
// a slow multi-step tool conversation with a real model (a minute).
var requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agent_requests_total", Help: "Chat requests received.",
		}),
		requestsSuccessful: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agent_requests_successful_total", Help: "Chat requests answered with a 2xx status.",
		}),
		requestsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agent_requests_failed_total", Help: "Chat requests answered with an error status.",
		}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "agent_request_duration_seconds", Help: "HTTP request duration by route pattern.", Buckets: requestBuckets,
		}, []string{"route"}),
		llmTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_llm_tokens_total", Help: "LLM tokens used, by direction.",
		}, []string{"direction"}),
		llmCost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agent_llm_cost_total", Help: "Estimated LLM cost in US dollars.",
		}),
		llmRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "agent_llm_request_duration_seconds", Help: "LLM call duration by provider and outcome.", Buckets: requestBuckets,
		}, []string{"provider", "outcome"}),
		toolExecutions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_tool_executions_total", Help: "Tool executions by tool and outcome.",
		}, []string{"tool", "outcome"}),
		breakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_circuit_breaker_transitions_total", Help: "Circuit breaker state transitions.",
		}, []string{"breaker", "from", "to"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_rate_limited_total", Help: "Requests rejected by a token bucket, by scope (ip, principal).",
		}, []string{"scope"}),
		bulkheadRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_bulkhead_rejected_total", Help: "Calls rejected by a bulkhead, by reason (queue_full, queue_timeout).",
		}, []string{"bulkhead", "reason"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_responses_total", Help: "API answers by route pattern and HTTP status code.",
		}, []string{"route", "code"}),
		securityIncidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_security_incidents_total", Help: "Security incidents raised or escalated, by type and the threat level reached.",
		}, []string{"type", "level"}),
		auditEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_audit_events_total", Help: "Audit events recorded, by event type.",
		}, []string{"event_type"}),
		auditWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agent_audit_write_errors_total", Help: "Failed audit writes.",
		}),
		auditEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agent_audit_events_evicted_total", Help: "Audit events dropped from the bounded in-memory ring.",
		}),
		activeSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agent_active_sessions", Help: "Sessions held in memory.",
		}),
		spansDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agent_spans_dropped_total",
			Help: "Trace spans not exported, by reason (queue_full: the bounded export queue was full; export_failed: the collector failed or rejected them).",
		}, []string{"reason"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "agent_build_info", Help: "Build information; always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)

	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.requests, m.requestsSuccessful, m.requestsFailed, m.requestDuration,
		m.llmTokens, m.llmCost, m.llmRequestDuration, m.toolExecutions,
		m.breakerTransitions, m.rateLimited, m.bulkheadRejected,
		m.responses, m.securityIncidents, m.auditEvents, m.auditWriteErrors, m.auditEvicted, m.activeSessions,
		m.spansDropped,
	)
	// Series that exist from the start, so dashboards and alerts see zeros
	// rather than absent data.
	for _, d := range []string{"input", "output"} {
		m.llmTokens.WithLabelValues(d)
	}
	for _, s := range []string{"ip", "principal"} {
		m.rateLimited.WithLabelValues(s)
	}
	for _, r := range []string{"queue_full", "export_failed"} {
		m.spansDropped.WithLabelValues(r)
	}
	// 10 types × 4 levels: increase() sees an incident type's first one.
	for _, typ := range []string{IncidentBruteForce, IncidentPromptInjection, IncidentRateLimitAbuse,
		IncidentAnomalousAccess, IncidentDataExfiltration, IncidentPrivilegeEscalation,
		IncidentUnauthorizedAccess, IncidentConfigTampering, IncidentCredentialStuffing, IncidentSessionHijacking} {
		for _, lvl := range []string{"low", "medium", "high", "critical"} {
			m.securityIncidents.WithLabelValues(typ, lvl)
		}
	}
	return m
}

// codeLabels holds the code label of every HTTP status, so counting an
// answer allocates nothing.
var codeLabels = func() (t [600]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

// observeResponse counts one API answer.
func (m *Metrics) observeResponse(route string, status int) {
	code := "other"
	if status >= 100 && status < len(codeLabels) {
		code = codeLabels[status]
	}
	m.responses.WithLabelValues(route, code).Inc()
}

// handler serves the registry. Errors while gathering are logged and the
// rest is still served; slow or piled-up scrapes are bounded.
func (m *Metrics) handler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
		// A scrape is cheap; more than a few at once means something is wrong.
		MaxRequestsInFlight: 4,
		// Prometheus' default scrape timeout is 10s; answer before it gives up.
		Timeout: 9 * time.Second,
	})
}

// observeChat counts one finished /chat request by its status.
func (m *Metrics) observeChat(status int) {
	m.requests.Inc()
	if status >= 200 && status < 300 {
		m.requestsSuccessful.Inc()
	} else {
		m.requestsFailed.Inc()
	}
}

// observeLLM records one LLM call (one attempt).
func (m *Metrics) observeLLM(provider, outcome string, d time.Duration, u Usage, cost float64) {
	m.llmRequestDuration.WithLabelValues(provider, outcome).Observe(d.Seconds())
	m.llmTokens.WithLabelValues("input").Add(float64(u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens))
	m.llmTokens.WithLabelValues("output").Add(float64(u.OutputTokens))
	if cost > 0 {
		m.llmCost.Add(cost)
	}
}
