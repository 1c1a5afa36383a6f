package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// cfgField ties one configuration key to its Config field. It is the only
// list of keys: the file, the environment, the flags, WriteTOML and the
// tests all go through it. ptr returns a pointer to the field (*string,
// *int, *int64, *float64, *bool or *[]string), whose type is the key's type.
type cfgField struct {
	key  string // "section.key"
	ptr  func(*Config) any
	help string // one line, printed as a comment by WriteTOML
}

// cfgSections lists the configuration tables in DESIGN §5 order.
func cfgSections() []string {
	return []string{"server", "llm", "sessions", "observability", "resilience", "audit", "security", "auth"}
}

// cfgFields lists every key in DESIGN §5 order.
func cfgFields() []cfgField {
	return []cfgField{
		{"server.host", func(c *Config) any { return &c.Server.Host }, "address the API listener binds"},
		{"server.port", func(c *Config) any { return &c.Server.Port }, "API port (0: any free port)"},
		{"server.request_timeout_seconds", func(c *Config) any { return &c.Server.RequestTimeoutSeconds }, "deadline for one request, seconds"},
		{"server.shutdown_timeout_seconds", func(c *Config) any { return &c.Server.ShutdownTimeoutSeconds }, "time to finish in-flight requests on shutdown, seconds"},
		{"server.shutdown_delay_seconds", func(c *Config) any { return &c.Server.ShutdownDelaySeconds }, "wait after readiness turns 503 before closing listeners, seconds"},
		{"server.max_body_bytes", func(c *Config) any { return &c.Server.MaxBodyBytes }, "largest accepted request body, bytes"},
		{"server.max_header_bytes", func(c *Config) any { return &c.Server.MaxHeaderBytes }, "largest accepted request header block, bytes"},
		{"server.trusted_proxies", func(c *Config) any { return &c.Server.TrustedProxies }, "IPs or CIDRs whose X-Forwarded-For is believed"},
		{"server.cors_allowed_origins", func(c *Config) any { return &c.Server.CORSAllowedOrigins }, `"*" or scheme://host[:port] origins allowed by CORS`},
		{"server.tls_cert_file", func(c *Config) any { return &c.Server.TLSCertFile }, "PEM certificate; set with tls_key_file to serve HTTPS"},
		{"server.tls_key_file", func(c *Config) any { return &c.Server.TLSKeyFile }, "PEM private key for tls_cert_file"},

		{"llm.provider", func(c *Config) any { return &c.LLM.Provider }, "auto|mock|anthropic|openai (auto: by which API key is set)"},
		{"llm.model", func(c *Config) any { return &c.LLM.Model }, "model name sent to the provider"},
		{"llm.max_tokens", func(c *Config) any { return &c.LLM.MaxTokens }, "output token limit per LLM call"},
		{"llm.temperature", func(c *Config) any { return &c.LLM.Temperature }, "sampling temperature, 0 to 2"},
		{"llm.timeout_seconds", func(c *Config) any { return &c.LLM.TimeoutSeconds }, "deadline for one LLM call, seconds"},
		{"llm.base_url", func(c *Config) any { return &c.LLM.BaseURL }, "provider base URL (Anthropic without /v1, OpenAI-compatible with /v1); empty: provider default"},
		{"llm.max_retries", func(c *Config) any { return &c.LLM.MaxRetries }, "retries of a failed LLM call (0: none)"},
		{"llm.max_tool_iterations", func(c *Config) any { return &c.LLM.MaxToolIterations }, "LLM calls allowed in one turn"},
		{"llm.max_message_bytes", func(c *Config) any { return &c.LLM.MaxMessageBytes }, "largest accepted user message, bytes"},
		{"llm.input_cost_per_mtok", func(c *Config) any { return &c.LLM.InputCostPerMTok }, "USD per million input tokens (-1: built-in price table)"},
		{"llm.output_cost_per_mtok", func(c *Config) any { return &c.LLM.OutputCostPerMTok }, "USD per million output tokens (-1: built-in price table)"},
		{"llm.mock_latency_ms", func(c *Config) any { return &c.LLM.MockLatencyMS }, "added latency of the mock provider, milliseconds"},
		{"llm.mock_failure_rate", func(c *Config) any { return &c.LLM.MockFailureRate }, "fraction of mock calls that fail, 0 to 1"},

		{"sessions.max_sessions", func(c *Config) any { return &c.Sessions.MaxSessions }, "sessions held at once"},
		{"sessions.idle_timeout_seconds", func(c *Config) any { return &c.Sessions.IdleTimeoutSeconds }, "idle time after which a session is dropped, seconds"},
		{"sessions.max_history_messages", func(c *Config) any { return &c.Sessions.MaxHistoryMessages }, "messages kept per session (at least 2)"},

		{"observability.tracing_enabled", func(c *Config) any { return &c.Observability.TracingEnabled }, "record spans"},
		{"observability.tracing_level", func(c *Config) any { return &c.Observability.TracingLevel }, "verbosity: trace|debug|info|warn|error"},
		{"observability.opentelemetry_endpoint", func(c *Config) any { return &c.Observability.OpenTelemetryEndpoint }, "OTLP/HTTP base URL, e.g. http://collector:4318 (empty: no export)"},
		{"observability.tracing_sample_ratio", func(c *Config) any { return &c.Observability.TracingSampleRatio }, "fraction of traces sampled, 0 to 1"},
		{"observability.metrics_enabled", func(c *Config) any { return &c.Observability.MetricsEnabled }, "serve /metrics on the admin listener"},
		{"observability.metrics_port", func(c *Config) any { return &c.Observability.MetricsPort }, "admin listener port (0: any free port)"},
		{"observability.pprof_enabled", func(c *Config) any { return &c.Observability.PprofEnabled }, "serve /debug/pprof on the admin listener"},

		{"resilience.circuit_breaker_enabled", func(c *Config) any { return &c.Resilience.CircuitBreakerEnabled }, "guard LLM calls with a circuit breaker"},
		{"resilience.circuit_breaker_failure_threshold", func(c *Config) any { return &c.Resilience.CircuitBreakerFailureThreshold }, "failures that open the breaker"},
		{"resilience.circuit_breaker_success_threshold", func(c *Config) any { return &c.Resilience.CircuitBreakerSuccessThreshold }, "half-open successes that close the breaker"},
		{"resilience.circuit_breaker_timeout_seconds", func(c *Config) any { return &c.Resilience.CircuitBreakerTimeoutSeconds }, "time open before a half-open probe, seconds"},
		{"resilience.rate_limit_enabled", func(c *Config) any { return &c.Resilience.RateLimitEnabled }, "per-principal token bucket"},
		{"resilience.rate_limit_requests_per_second", func(c *Config) any { return &c.Resilience.RateLimitRequestsPerSecond }, "per-principal refill rate, requests per second"},
		{"resilience.rate_limit_burst", func(c *Config) any { return &c.Resilience.RateLimitBurst }, "per-principal bucket size"},
		{"resilience.ip_rate_limit_enabled", func(c *Config) any { return &c.Resilience.IPRateLimitEnabled }, "per-client-IP token bucket"},
		{"resilience.ip_rate_limit_requests_per_second", func(c *Config) any { return &c.Resilience.IPRateLimitRequestsPerSecond }, "per-IP refill rate, requests per second"},
		{"resilience.ip_rate_limit_burst", func(c *Config) any { return &c.Resilience.IPRateLimitBurst }, "per-IP bucket size"},
		{"resilience.bulkhead_enabled", func(c *Config) any { return &c.Resilience.BulkheadEnabled }, "bound concurrent tool executions"},
		{"resilience.bulkhead_max_concurrent", func(c *Config) any { return &c.Resilience.BulkheadMaxConcurrent }, "tools running at once"},
		{"resilience.bulkhead_max_queued", func(c *Config) any { return &c.Resilience.BulkheadMaxQueued }, "tools waiting for a slot (0: reject when full)"},
		{"resilience.bulkhead_queue_timeout_seconds", func(c *Config) any { return &c.Resilience.BulkheadQueueTimeoutSeconds }, "longest wait for a slot, seconds"},
		{"resilience.tool_timeout_seconds", func(c *Config) any { return &c.Resilience.ToolTimeoutSeconds }, "deadline for one tool execution, seconds"},
		{"resilience.llm_max_concurrent", func(c *Config) any { return &c.Resilience.LLMMaxConcurrent }, "LLM calls in flight at once"},
		{"resilience.llm_max_queued", func(c *Config) any { return &c.Resilience.LLMMaxQueued }, "LLM calls waiting for a slot (0: reject when full)"},

		{"audit.enabled", func(c *Config) any { return &c.Audit.Enabled }, "record audit events"},
		{"audit.backend", func(c *Config) any { return &c.Audit.Backend }, "in_memory|file"},
		{"audit.file_path", func(c *Config) any { return &c.Audit.FilePath }, "JSON-lines file of the file backend"},
		{"audit.max_events", func(c *Config) any { return &c.Audit.MaxEvents }, "events kept by the in-memory backend"},
		{"audit.fsync", func(c *Config) any { return &c.Audit.Fsync }, "always|never: fsync each file event before answering"},

		{"security.enabled", func(c *Config) any { return &c.Security.Enabled }, "detect security incidents"},
		{"security.brute_force_threshold", func(c *Config) any { return &c.Security.BruteForceThreshold }, "failed authentications from one source that raise an incident"},
		{"security.brute_force_window_seconds", func(c *Config) any { return &c.Security.BruteForceWindowSeconds }, "window for brute_force_threshold, seconds"},
		{"security.rate_limit_threshold", func(c *Config) any { return &c.Security.RateLimitThreshold }, "rate-limited requests from one source that raise an incident"},
		{"security.prompt_injection_action", func(c *Config) any { return &c.Security.PromptInjectionAction }, "block|flag a detected prompt injection"},
		{"security.auto_block", func(c *Config) any { return &c.Security.AutoBlock }, "block the source of an incident automatically"},
		{"security.block_duration_seconds", func(c *Config) any { return &c.Security.BlockDurationSeconds }, "how long an auto-block lasts, seconds"},
		{"security.anomalous_access_sources", func(c *Config) any { return &c.Security.AnomalousAccessSources }, "distinct source IPs of one principal that raise an incident"},
		{"security.anomalous_access_window_seconds", func(c *Config) any { return &c.Security.AnomalousAccessWindowSeconds }, "window for anomalous_access_sources, seconds"},

		{"auth.enabled", func(c *Config) any { return &c.Auth.Enabled }, "require an API key or JWT (off: anonymous)"},
		{"auth.api_keys_file", func(c *Config) any { return &c.Auth.APIKeysFile }, "API keys file; append the lines printed by production-agent keygen"},
		{"auth.jwt_issuer", func(c *Config) any { return &c.Auth.JWTIssuer }, "required JWT iss (empty: not checked)"},
		{"auth.jwt_audience", func(c *Config) any { return &c.Auth.JWTAudience }, "required JWT aud (empty: not checked)"},
		{"auth.jwt_public_key_file", func(c *Config) any { return &c.Auth.JWTPublicKeyFile }, "PEM public key that verifies JWT signatures"},
		{"auth.jwks_url", func(c *Config) any { return &c.Auth.JWKSURL }, "JWKS URL whose keys verify JWT signatures"},
		{"auth.jwt_role_claim", func(c *Config) any { return &c.Auth.JWTRoleClaim }, "JWT claim holding the role"},
	}
}

// cfgFieldIndex maps each key to its field.
func cfgFieldIndex() map[string]cfgField {
	fields := cfgFields()
	idx := make(map[string]cfgField, len(fields))
	for _, f := range fields {
		idx[f.key] = f
	}
	return idx
}

// cfgSecretLines returns, per section, the secrets WriteTOML mentions there
// (environment variable name and whether it is set). Values never leave.
func (c *Config) cfgSecretLines(section string) []string {
	status := func(name, v string) string {
		if v == "" {
			return "# " + name + " = (unset)"
		}
		return "# " + name + " = (set, redacted)"
	}
	switch section {
	case "llm":
		return []string{status("ANTHROPIC_API_KEY", c.AnthropicAPIKey), status("OPENAI_API_KEY", c.OpenAIAPIKey)}
	case "auth":
		return []string{status("AGENT_AUTH_JWT_SECRET", c.JWTSecret)}
	}
	return nil
}

// WriteTOML writes the configuration as TOML that loadConfig reads back to
// the same values: tables and keys in DESIGN §5 order, each key after a
// comment saying what it does. Secrets appear only as comments saying
// whether they are set; their values are never written.
func (c *Config) WriteTOML(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString("# production-agent effective configuration.\n")
	if c.Path != "" {
		fmt.Fprintf(&b, "# File: %s (sha256 %s); environment and flags applied on top.\n", tomlQuote(c.Path), c.FileSHA256)
	} else {
		b.WriteString("# No config file; defaults with environment and flags applied on top.\n")
	}
	b.WriteString("# Secrets come from the environment only and are never printed.\n")
	fields := cfgFields()
	for _, section := range cfgSections() {
		fmt.Fprintf(&b, "\n[%s]\n", section)
		for _, f := range fields {
			s, name, _ := strings.Cut(f.key, ".")
			if s == section {
				fmt.Fprintf(&b, "# %s\n%s = %s\n", f.help, name, cfgFormat(f.ptr(c)))
			}
		}
		for _, l := range c.cfgSecretLines(section) {
			b.WriteString(l + "\n")
		}
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// cfgFormat renders a field value as a TOML value.
func cfgFormat(v any) string {
	switch p := v.(type) {
	case *string:
		return tomlQuote(*p)
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *bool:
		return strconv.FormatBool(*p)
	case *float64:
		f := *p
		switch {
		case math.IsNaN(f):
			return "nan"
		case math.IsInf(f, 1):
			return "inf"
		case math.IsInf(f, -1):
			return "-inf"
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return s
	case *[]string:
		items := make([]string, len(*p))
		for i, s := range *p {
			items[i] = tomlQuote(s)
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return tomlQuote(fmt.Sprint(v))
}

// tomlQuote returns s as a TOML basic string, escaping quotes, backslashes
// and control characters.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
