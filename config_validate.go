package main

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// ResolvedProvider applies DESIGN §5's provider rule: an explicit provider
// is returned as is; "auto" means "anthropic" when ANTHROPIC_API_KEY is set,
// else "openai" when OPENAI_API_KEY or llm.base_url is set, else "mock".
func (c *Config) ResolvedProvider() string {
	if c.LLM.Provider != "auto" {
		return c.LLM.Provider
	}
	switch {
	case c.AnthropicAPIKey != "":
		return "anthropic"
	case c.OpenAIAPIKey != "" || c.LLM.BaseURL != "":
		return "openai"
	}
	return "mock"
}

// Validate checks every value and the rules between values. It returns nil
// or one *ConfigError per problem (joined with errors.Join when there are
// several), each naming its key; File and Line are filled in by loadConfig,
// which knows where each value came from.
func (c *Config) Validate() error {
	return cfgJoin(c.cfgProblems())
}

// cfgJoin returns nil, the single problem, or all problems joined.
func cfgJoin(problems []*ConfigError) error {
	switch len(problems) {
	case 0:
		return nil
	case 1:
		return problems[0]
	}
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// cfgProblems lists every invalid setting in DESIGN §5 key order.
func (c *Config) cfgProblems() []*ConfigError {
	var errs []*ConfigError
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	atLeast := func(key string, v, lo int) {
		if v < lo {
			bad(key, "must be at least %d, got %d", lo, v)
		}
	}
	port := func(key string, v int) {
		if v < 0 || v > 65535 {
			bad(key, "must be between 0 and 65535, got %d", v)
		}
	}
	between := func(key string, v, lo, hi float64) {
		if !(v >= lo && v <= hi) { // written so that NaN fails
			bad(key, "must be between %g and %g, got %g", lo, hi, v)
		}
	}
	positive := func(key string, v float64) {
		if !(v > 0) || math.IsInf(v, 1) {
			bad(key, "must be a positive number, got %g", v)
		}
	}
	cost := func(key string, v float64) {
		if !(v == -1 || v >= 0 && !math.IsInf(v, 1)) {
			bad(key, "must be -1 (built-in price table) or a price of at least 0, got %g", v)
		}
	}
	oneOf := func(key, v string, allowed ...string) {
		if !slices.Contains(allowed, v) {
			bad(key, "must be one of %s, got %q", strings.Join(allowed, "|"), v)
		}
	}
	httpURL := func(key, v string) {
		if v != "" && !cfgIsHTTPURL(v) {
			bad(key, "must be empty or an absolute http or https URL")
		}
	}

	s := &c.Server
	port("server.port", s.Port)
	atLeast("server.request_timeout_seconds", s.RequestTimeoutSeconds, 1)
	atLeast("server.shutdown_timeout_seconds", s.ShutdownTimeoutSeconds, 1)
	atLeast("server.shutdown_delay_seconds", s.ShutdownDelaySeconds, 0)
	if s.MaxBodyBytes < 1 {
		bad("server.max_body_bytes", "must be at least 1, got %d", s.MaxBodyBytes)
	}
	atLeast("server.max_header_bytes", s.MaxHeaderBytes, 1)
	for _, p := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("server.trusted_proxies", "%q is neither an IP address nor a CIDR prefix", p)
			}
		}
	}
	for _, o := range s.CORSAllowedOrigins {
		if !cfgIsOrigin(o) {
			bad("server.cors_allowed_origins", `%q must be "*" or scheme://host[:port] without a path`, o)
		}
	}
	switch {
	case s.TLSCertFile != "" && s.TLSKeyFile == "":
		bad("server.tls_cert_file", "set without server.tls_key_file; set both or neither")
	case s.TLSCertFile == "" && s.TLSKeyFile != "":
		bad("server.tls_key_file", "set without server.tls_cert_file; set both or neither")
	}

	l := &c.LLM
	oneOf("llm.provider", l.Provider, "auto", "mock", "anthropic", "openai")
	if l.Provider == "anthropic" && c.AnthropicAPIKey == "" {
		bad("llm.provider", "provider anthropic needs ANTHROPIC_API_KEY in the environment")
	}
	if l.Provider == "openai" && c.OpenAIAPIKey == "" {
		bad("llm.provider", "provider openai needs OPENAI_API_KEY in the environment")
	}
	if strings.TrimSpace(l.Model) == "" {
		bad("llm.model", "must not be empty")
	}
	atLeast("llm.max_tokens", l.MaxTokens, 1)
	between("llm.temperature", l.Temperature, 0, 2)
	atLeast("llm.timeout_seconds", l.TimeoutSeconds, 1)
	httpURL("llm.base_url", l.BaseURL)
	atLeast("llm.max_retries", l.MaxRetries, 0)
	atLeast("llm.max_tool_iterations", l.MaxToolIterations, 1)
	atLeast("llm.max_message_bytes", l.MaxMessageBytes, 1)
	cost("llm.input_cost_per_mtok", l.InputCostPerMTok)
	cost("llm.output_cost_per_mtok", l.OutputCostPerMTok)
	atLeast("llm.mock_latency_ms", l.MockLatencyMS, 0)
	between("llm.mock_failure_rate", l.MockFailureRate, 0, 1)

	atLeast("sessions.max_sessions", c.Sessions.MaxSessions, 1)
	atLeast("sessions.idle_timeout_seconds", c.Sessions.IdleTimeoutSeconds, 1)
	atLeast("sessions.max_history_messages", c.Sessions.MaxHistoryMessages, 2)

	o := &c.Observability
	oneOf("observability.tracing_level", o.TracingLevel, "trace", "debug", "info", "warn", "error")
	httpURL("observability.opentelemetry_endpoint", o.OpenTelemetryEndpoint)
	between("observability.tracing_sample_ratio", o.TracingSampleRatio, 0, 1)
	port("observability.metrics_port", o.MetricsPort)
	if o.MetricsPort != 0 && o.MetricsPort == s.Port {
		bad("observability.metrics_port", "must differ from server.port (%d) unless either is 0", s.Port)
	}

	r := &c.Resilience
	atLeast("resilience.circuit_breaker_failure_threshold", r.CircuitBreakerFailureThreshold, 1)
	atLeast("resilience.circuit_breaker_success_threshold", r.CircuitBreakerSuccessThreshold, 1)
	atLeast("resilience.circuit_breaker_timeout_seconds", r.CircuitBreakerTimeoutSeconds, 1)
	if r.RateLimitEnabled {
		positive("resilience.rate_limit_requests_per_second", r.RateLimitRequestsPerSecond)
		atLeast("resilience.rate_limit_burst", r.RateLimitBurst, 1)
	}
	if r.IPRateLimitEnabled {
		positive("resilience.ip_rate_limit_requests_per_second", r.IPRateLimitRequestsPerSecond)
		atLeast("resilience.ip_rate_limit_burst", r.IPRateLimitBurst, 1)
	}
	atLeast("resilience.bulkhead_max_concurrent", r.BulkheadMaxConcurrent, 1)
	atLeast("resilience.bulkhead_max_queued", r.BulkheadMaxQueued, 0)
	atLeast("resilience.bulkhead_queue_timeout_seconds", r.BulkheadQueueTimeoutSeconds, 1)
	atLeast("resilience.tool_timeout_seconds", r.ToolTimeoutSeconds, 1)
	atLeast("resilience.llm_max_concurrent", r.LLMMaxConcurrent, 1)
	atLeast("resilience.llm_max_queued", r.LLMMaxQueued, 0)

	a := &c.Audit
	oneOf("audit.backend", a.Backend, "in_memory", "file")
	if a.Backend == "file" && strings.TrimSpace(a.FilePath) == "" {
		bad("audit.file_path", "must be set when audit.backend is file")
	}
	atLeast("audit.max_events", a.MaxEvents, 1)
	oneOf("audit.fsync", a.Fsync, "always", "never")

	sec := &c.Security
	atLeast("security.brute_force_threshold", sec.BruteForceThreshold, 1)
	atLeast("security.brute_force_window_seconds", sec.BruteForceWindowSeconds, 1)
	atLeast("security.rate_limit_threshold", sec.RateLimitThreshold, 1)
	oneOf("security.prompt_injection_action", sec.PromptInjectionAction, "block", "flag")
	atLeast("security.block_duration_seconds", sec.BlockDurationSeconds, 1)
	atLeast("security.anomalous_access_sources", sec.AnomalousAccessSources, 1)
	atLeast("security.anomalous_access_window_seconds", sec.AnomalousAccessWindowSeconds, 1)

	au := &c.Auth
	httpURL("auth.jwks_url", au.JWKSURL)
	if strings.TrimSpace(au.JWTRoleClaim) == "" {
		bad("auth.jwt_role_claim", "must not be empty")
	}
	if au.Enabled && au.APIKeysFile == "" && au.JWTPublicKeyFile == "" && au.JWKSURL == "" && c.JWTSecret == "" {
		bad("auth.enabled", "needs api_keys_file, jwt_public_key_file, jwks_url or AGENT_AUTH_JWT_SECRET")
	}
	return errs
}

// cfgIsHTTPURL reports whether s is an absolute http or https URL with a host.
func cfgIsHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Hostname() != ""
}

// cfgIsOrigin reports whether s is "*" or a CORS origin scheme://host[:port]
// (no user info, path, query or fragment; a trailing slash is a path).
func cfgIsOrigin(s string) bool {
	if s == "*" {
		return true
	}
	if strings.Contains(s, "*") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.User != nil || u.Hostname() == "" ||
		u.Path != "" || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		return err == nil && n >= 1 && n <= 65535
	}
	return !strings.HasSuffix(u.Host, ":")
}
