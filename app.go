package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"
)

// app is the assembled service: every long-lived component, built once by
// newApp and shared by the handlers.
type app struct {
	cfg      *Config
	logger   *slog.Logger
	metrics  *Metrics
	provider Provider
	model    string
	sessions *SessionStore
	agent    *Agent
	guards   *guards
	audit    AuditLog
	auth     *Authenticator
	trusted  []netip.Prefix
	cors     *CORS
	detector *InjectionDetector
	monitor  *SecurityMonitor
	health   *Health
	tracer   *Tracer
	now      func() time.Time
}

// defaultOpenAIModel replaces the Anthropic default model name when the
// provider is OpenAI-compatible and no model was configured.
const defaultOpenAIModel = "gpt-4o-mini"

// newProvider picks the LLM backend (DESIGN §5) and the model to ask for.
func newProvider(cfg *Config, logger *slog.Logger) (Provider, string) {
	model := cfg.LLM.Model
	switch cfg.ResolvedProvider() {
	case "anthropic":
		return newAnthropicClient(cfg.LLM.BaseURL, cfg.AnthropicAPIKey, newLLMHTTPClient(cfg.Resilience.LLMMaxConcurrent)), model
	case "openai":
		if model == defaultConfig().LLM.Model {
			model = defaultOpenAIModel
		}
		return newOpenAIClient(cfg.LLM.BaseURL, cfg.OpenAIAPIKey, newLLMHTTPClient(cfg.Resilience.LLMMaxConcurrent)), model
	default:
		if cfg.LLM.Provider == "auto" {
			logger.Warn("no ANTHROPIC_API_KEY, OPENAI_API_KEY or llm.base_url: using the embedded offline model")
		}
		return newMockProvider(time.Duration(cfg.LLM.MockLatencyMS)*time.Millisecond, cfg.LLM.MockFailureRate), mockModel
	}
}

// newAuditLog opens the configured audit backend. With audit disabled it
// returns a log that keeps nothing and never fails.
func newAuditLog(cfg *Config, m *Metrics, now func() time.Time) (AuditLog, error) {
	hooks := AuditHooks{
		OnEvent:      func(t string) { m.auditEvents.WithLabelValues(t).Inc() },
		OnWriteError: func(error) { m.auditWriteErrors.Inc() },
		OnEvict:      func() { m.auditEvicted.Inc() },
	}
	switch {
	case !cfg.Audit.Enabled:
		return discardAudit{}, nil
	case cfg.Audit.Backend == "file":
		// The most recent 10k records answer GET /audit; the file holds all.
		return openFileAudit(cfg.Audit.FilePath, cfg.Audit.Fsync == "always", 10_000, hooks, now)
	default:
		return newMemoryAudit(cfg.Audit.MaxEvents, hooks, now), nil
	}
}

// discardAudit is the audit log when audit.enabled = false.
type discardAudit struct{}

func (discardAudit) Append(context.Context, ...AuditEvent) error { return nil }
func (discardAudit) Query(AuditQuery) ([]AuditEvent, error)      { return []AuditEvent{}, nil }
func (discardAudit) Healthy() error                              { return nil }
func (discardAudit) Close() error                                { return nil }

func newApp(cfg *Config, logger *slog.Logger, now func() time.Time) (*app, error) {
	a := &app{cfg: cfg, logger: logger, now: now, metrics: newMetrics(version)}
	a.provider, a.model = newProvider(cfg, logger)
	var err error
	if a.audit, err = newAuditLog(cfg, a.metrics, now); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if fa, ok := a.audit.(*FileAudit); ok && fa.RepairedTail() != "" {
		logger.Warn("audit file tail repaired", "detail", fa.RepairedTail())
	}
	if a.trusted, err = parseTrustedProxies(cfg.Server.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	if a.auth, err = newAuthenticator(AuthSettings{
		Enabled: cfg.Auth.Enabled, APIKeysFile: cfg.Auth.APIKeysFile, JWTIssuer: cfg.Auth.JWTIssuer,
		JWTAudience: cfg.Auth.JWTAudience, JWTPublicKeyFile: cfg.Auth.JWTPublicKeyFile, JWKSURL: cfg.Auth.JWKSURL,
		JWTRoleClaim: cfg.Auth.JWTRoleClaim, JWTSecret: cfg.JWTSecret, Now: now,
	}); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if !cfg.Auth.Enabled {
		logger.Warn("authentication is off: anyone who reaches the API may chat, and the admin listener must stay private")
	}
	a.cors = newCORS(cfg.Server.CORSAllowedOrigins)
	a.detector = sharedDetector()
	a.monitor = newSecurityMonitor(MonitorSettings{
		Enabled: cfg.Security.Enabled, BruteForceThreshold: cfg.Security.BruteForceThreshold,
		BruteForceWindow: seconds(cfg.Security.BruteForceWindowSeconds), RateLimitThreshold: cfg.Security.RateLimitThreshold,
		AutoBlock: cfg.Security.AutoBlock, BlockDuration: seconds(cfg.Security.BlockDurationSeconds),
		AnomalousSources: cfg.Security.AnomalousAccessSources, AnomalousWindow: seconds(cfg.Security.AnomalousAccessWindowSeconds),
	}, MonitorHooks{OnIncident: a.onIncident, OnBlock: a.onBlock}, now)

	// Created after the last error return: it may start the exporter goroutine.
	oc := cfg.Observability
	a.tracer = newTracer(TracerSettings{
		Enabled: oc.TracingEnabled, SampleRatio: oc.TracingSampleRatio,
		ServiceName: "production-agent", ServiceVersion: version, Endpoint: oc.OpenTelemetryEndpoint,
		Logger: logger.With("component", "tracing"), Now: now,
		OnDrop: func(reason string, n int) { a.metrics.spansDropped.WithLabelValues(reason).Add(float64(n)) },
	})

	a.sessions = newSessionStore(cfg.Sessions.MaxSessions, seconds(cfg.Sessions.IdleTimeoutSeconds), now,
		func(n int) { a.metrics.activeSessions.Set(float64(n)) })
	a.guards = newGuards(cfg, a.provider.Name(), a.metrics, logger, now)
	a.guards.onBreakerChange = a.onBreakerChange
	tools := newToolRegistry(now)
	a.agent = &Agent{
		settings: AgentSettings{
			Model: a.model, MaxTokens: cfg.LLM.MaxTokens, Temperature: cfg.LLM.Temperature,
			MaxToolIterations: cfg.LLM.MaxToolIterations, MaxHistoryMessages: cfg.Sessions.MaxHistoryMessages,
			LLMTimeout: seconds(cfg.LLM.TimeoutSeconds), ToolTimeout: seconds(cfg.Resilience.ToolTimeoutSeconds),
			InputCostPerMTok: cfg.LLM.InputCostPerMTok, OutputCostPerMTok: cfg.LLM.OutputCostPerMTok,
		},
		provider: a.provider,
		tools:    tools,
		specs:    tools.Specs(),
		sessions: a.sessions,
		metrics:  a.metrics,
		logger:   logger.With("component", "agent"),
		now:      now,
		newID:    newUUID,
	}
	a.agent.callLLM = a.guards.callLLM(a.agent.directLLM)
	a.agent.runTool = a.guards.runTool(a.agent.executeTool)
	desc := "provider " + a.provider.Name() + ", model " + a.model
	a.health = &Health{
		version: version, started: now(), now: now,
		llm: func() componentStatus { return a.guards.llmHealth(desc) },
		audit: func() error {
			if err := a.audit.Healthy(); err != nil {
				// The cause (it may name a path) is logged, not shown.
				return errors.New("audit records cannot be written")
			}
			return nil
		},
		sessions: sessionsComponent(a.sessions, cfg.Sessions.MaxSessions),
	}
	return a, nil
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// apiHandler lists the whole public API, one line per route (DESIGN §3).
func (a *app) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /chat", a.handleChat())
	mux.Handle("GET /sessions/{id}", a.handleGetSession())
	mux.Handle("DELETE /sessions/{id}", a.handleDeleteSession())
	mux.Handle("GET /health", a.health.handleHealth())
	mux.Handle("GET /health/live", a.health.handleLive())
	mux.Handle("GET /health/ready", a.health.handleReady())
	return a.withRequestInfo(a.metrics, a.tracer, a.cors.Middleware(router(mux, a.logger)))
}

// adminHandler serves the operators' listener (DESIGN §3). With auth on,
// everything but /metrics needs the admin role.
func (a *app) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.handler(a.logger))
	mux.Handle("GET /audit", a.requireAdmin(a.handleAuditQuery()))
	mux.Handle("GET /security/incidents", a.requireAdmin(a.handleIncidents()))
	mux.Handle("PATCH /security/incidents/{id}", a.requireAdmin(a.handlePatchIncident()))
	mux.Handle("GET /security/dashboard", a.requireAdmin(a.handleDashboard()))
	mux.Handle("GET /{$}", a.requireAdmin(handleLanding())) // DESIGN §3: every admin route but /metrics
	if a.cfg.Observability.PprofEnabled {
		// Profiles expose internals and cost CPU: off by default, admin
		// only when auth is on, and never on the API listener.
		mux.Handle("GET /debug/pprof/", a.requireAdmin(http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/cmdline", a.requireAdmin(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("GET /debug/pprof/profile", a.requireAdmin(http.HandlerFunc(pprof.Profile)))
		mux.Handle("GET /debug/pprof/symbol", a.requireAdmin(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("GET /debug/pprof/trace", a.requireAdmin(http.HandlerFunc(pprof.Trace)))
	}
	// Not traced: scrapes every few seconds would drown the traces.
	return a.withRequestInfo(nil, nil, router(mux, a.logger))
}

// withRequestInfo is the outermost layer of both listeners.
func (a *app) withRequestInfo(m *Metrics, tr *Tracer, next http.Handler) http.Handler {
	return withRequestInfo(a.logger, m, tr, a.now, a.trusted, next)
}

// adminRoutes is what the landing page lists.
var adminRoutes = map[string]string{
	"GET /metrics":                   "Prometheus metrics",
	"GET /audit":                     "audit events (filters: event_type, actor, action, success, min_severity, source_ip, session_id, since, until, limit)",
	"GET /security/incidents":        "security incidents (filters: type, level, status, since, limit)",
	"PATCH /security/incidents/{id}": `set an incident's status: {"status": "investigating|resolved|false_positive"}`,
	"GET /security/dashboard":        "incident totals, top sources, recent critical incidents",
}

func handleLanding() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]any{"service": "production-agent", "version": version, "routes": adminRoutes})
	})
}

// close flushes what must survive the process: the spans not yet
// exported (within ctx) and the audit trail.
func (a *app) close(ctx context.Context) {
	a.recordSystem(ctx, AuditEvent{EventType: EventConfiguration, Severity: SeverityInfo, Action: "service.stop", Resource: "service", Success: true})
	if err := a.tracer.Shutdown(ctx); err != nil {
		a.logger.Warn("exporting the last spans failed", "error", err.Error())
	}
	if err := a.audit.Close(); err != nil {
		a.logger.Error("closing the audit log failed", "error", err.Error())
	}
}

// recordSystem appends an event that belongs to no request (startup,
// shutdown, breaker transitions, incidents raised outside a request).
func (a *app) recordSystem(ctx context.Context, ev AuditEvent) {
	if ev.Actor == "" {
		ev.Actor = "system"
	}
	if ev.SourceIP == "" {
		ev.SourceIP = "local"
	}
	if ev.UserAgent == "" {
		ev.UserAgent = "production-agent/" + version
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.audit.Append(ctx, ev); err != nil {
		a.logger.Error("audit write failed", "action", ev.Action, "error", err.Error())
	}
}

func (a *app) onBreakerChange(from, to BreakerState) {
	sev := SeverityWarning
	if to == StateClosed {
		sev = SeverityInfo
	}
	a.recordSystem(context.Background(), AuditEvent{
		EventType: EventLLMInteraction, Severity: sev, Action: "circuit_breaker.transition",
		Resource: "llm:" + a.provider.Name(), Success: to == StateClosed,
		Metadata: map[string]string{"from": from.String(), "to": to.String()},
	})
}
