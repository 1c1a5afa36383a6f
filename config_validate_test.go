package main

import (
	"strings"
	"testing"
)

// TestValidation has one row per rule: settings (as flags and environment)
// and the key the error must name, or "" when the settings are valid.
func TestValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		overrides []string
		env       map[string]string
		wantKey   string
	}{
		{"port too small", []string{"server.port=-1"}, nil, "server.port"},
		{"port too large", []string{"server.port=65536"}, nil, "server.port"},
		{"port 0 picks any", []string{"server.port=0", "observability.metrics_port=0"}, nil, ""},
		{"request timeout 0", []string{"server.request_timeout_seconds=0"}, nil, "server.request_timeout_seconds"},
		{"shutdown timeout 0", []string{"server.shutdown_timeout_seconds=0"}, nil, "server.shutdown_timeout_seconds"},
		{"shutdown delay negative", []string{"server.shutdown_delay_seconds=-1"}, nil, "server.shutdown_delay_seconds"},
		{"max body 0", []string{"server.max_body_bytes=0"}, nil, "server.max_body_bytes"},
		{"max header 0", []string{"server.max_header_bytes=0"}, nil, "server.max_header_bytes"},
		{"trusted proxies valid", []string{"server.trusted_proxies=10.0.0.0/8,::1,192.168.1.7,fd00::/8"}, nil, ""},
		{"trusted proxy bad prefix", []string{"server.trusted_proxies=10.0.0.0/33"}, nil, "server.trusted_proxies"},
		{"trusted proxy hostname", []string{"server.trusted_proxies=proxy.local"}, nil, "server.trusted_proxies"},
		{"cors valid", []string{"server.cors_allowed_origins=*,https://app.example.com,http://localhost:3000"}, nil, ""},
		{"cors trailing slash", []string{"server.cors_allowed_origins=https://app.example.com/"}, nil, "server.cors_allowed_origins"},
		{"cors path", []string{"server.cors_allowed_origins=https://app.example.com/x"}, nil, "server.cors_allowed_origins"},
		{"cors no scheme", []string{"server.cors_allowed_origins=app.example.com"}, nil, "server.cors_allowed_origins"},
		{"cors wildcard host", []string{"server.cors_allowed_origins=https://*.example.com"}, nil, "server.cors_allowed_origins"},
		{"cors query", []string{"server.cors_allowed_origins=https://a.example?x=1"}, nil, "server.cors_allowed_origins"},
		{"cors bad port", []string{"server.cors_allowed_origins=https://a.example:0"}, nil, "server.cors_allowed_origins"},
		{"tls cert only", []string{"server.tls_cert_file=c.pem"}, nil, "server.tls_cert_file"},
		{"tls key only", []string{"server.tls_key_file=k.pem"}, nil, "server.tls_key_file"},
		{"tls both", []string{"server.tls_cert_file=c.pem", "server.tls_key_file=k.pem"}, nil, ""},
		{"unknown provider", []string{"llm.provider=gpt"}, nil, "llm.provider"},
		{"anthropic without key", []string{"llm.provider=anthropic"}, nil, "llm.provider"},
		{"anthropic with key", []string{"llm.provider=anthropic"}, map[string]string{"ANTHROPIC_API_KEY": "k"}, ""},
		{"openai without key", []string{"llm.provider=openai"}, map[string]string{"ANTHROPIC_API_KEY": "k"}, "llm.provider"},
		{"openai with key", []string{"llm.provider=openai"}, map[string]string{"OPENAI_API_KEY": "k"}, ""},
		{"empty model", []string{"llm.model="}, nil, "llm.model"},
		{"max tokens 0", []string{"llm.max_tokens=0"}, nil, "llm.max_tokens"},
		{"temperature negative", []string{"llm.temperature=-0.1"}, nil, "llm.temperature"},
		{"temperature above 2", []string{"llm.temperature=2.01"}, nil, "llm.temperature"},
		{"temperature bounds", []string{"llm.temperature=2"}, nil, ""},
		{"llm timeout 0", []string{"llm.timeout_seconds=0"}, nil, "llm.timeout_seconds"},
		{"base url not http", []string{"llm.base_url=ftp://x.example"}, nil, "llm.base_url"},
		{"base url relative", []string{"llm.base_url=/v1"}, nil, "llm.base_url"},
		{"base url valid", []string{"llm.base_url=http://localhost:11434/v1"}, nil, ""},
		{"max retries negative", []string{"llm.max_retries=-1"}, nil, "llm.max_retries"},
		{"max tool iterations 0", []string{"llm.max_tool_iterations=0"}, nil, "llm.max_tool_iterations"},
		{"max message bytes 0", []string{"llm.max_message_bytes=0"}, nil, "llm.max_message_bytes"},
		{"input cost negative", []string{"llm.input_cost_per_mtok=-0.5"}, nil, "llm.input_cost_per_mtok"},
		{"output cost negative", []string{"llm.output_cost_per_mtok=-2"}, nil, "llm.output_cost_per_mtok"},
		{"costs zero", []string{"llm.input_cost_per_mtok=0", "llm.output_cost_per_mtok=15"}, nil, ""},
		{"mock latency negative", []string{"llm.mock_latency_ms=-1"}, nil, "llm.mock_latency_ms"},
		{"mock failure rate above 1", []string{"llm.mock_failure_rate=1.5"}, nil, "llm.mock_failure_rate"},
		{"mock failure rate negative", []string{"llm.mock_failure_rate=-0.1"}, nil, "llm.mock_failure_rate"},
		{"max sessions 0", []string{"sessions.max_sessions=0"}, nil, "sessions.max_sessions"},
		{"idle timeout 0", []string{"sessions.idle_timeout_seconds=0"}, nil, "sessions.idle_timeout_seconds"},
		{"history 1", []string{"sessions.max_history_messages=1"}, nil, "sessions.max_history_messages"},
		{"history 2", []string{"sessions.max_history_messages=2"}, nil, ""},
		{"tracing level", []string{"observability.tracing_level=verbose"}, nil, "observability.tracing_level"},
		{"otel endpoint without scheme", []string{"observability.opentelemetry_endpoint=collector:4318"}, nil, "observability.opentelemetry_endpoint"},
		{"otel endpoint valid", []string{"observability.opentelemetry_endpoint=http://collector:4318"}, nil, ""},
		{"sample ratio above 1", []string{"observability.tracing_sample_ratio=1.1"}, nil, "observability.tracing_sample_ratio"},
		{"metrics port too large", []string{"observability.metrics_port=70000"}, nil, "observability.metrics_port"},
		{"metrics port equals server port", []string{"observability.metrics_port=8080"}, nil, "observability.metrics_port"},
		{"failure threshold 0", []string{"resilience.circuit_breaker_failure_threshold=0"}, nil, "resilience.circuit_breaker_failure_threshold"},
		{"success threshold 0", []string{"resilience.circuit_breaker_success_threshold=0"}, nil, "resilience.circuit_breaker_success_threshold"},
		{"breaker timeout 0", []string{"resilience.circuit_breaker_timeout_seconds=0"}, nil, "resilience.circuit_breaker_timeout_seconds"},
		{"rate 0 when enabled", []string{"resilience.rate_limit_requests_per_second=0"}, nil, "resilience.rate_limit_requests_per_second"},
		{"rate 0 when disabled", []string{"resilience.rate_limit_enabled=false", "resilience.rate_limit_requests_per_second=0", "resilience.rate_limit_burst=0"}, nil, ""},
		{"burst 0 when enabled", []string{"resilience.rate_limit_burst=0"}, nil, "resilience.rate_limit_burst"},
		{"fractional rate", []string{"resilience.rate_limit_requests_per_second=0.5"}, nil, ""},
		{"ip rate negative", []string{"resilience.ip_rate_limit_requests_per_second=-1"}, nil, "resilience.ip_rate_limit_requests_per_second"},
		{"ip burst 0", []string{"resilience.ip_rate_limit_burst=0"}, nil, "resilience.ip_rate_limit_burst"},
		{"ip limiter disabled", []string{"resilience.ip_rate_limit_enabled=0", "resilience.ip_rate_limit_burst=0"}, nil, ""},
		{"bulkhead concurrent 0", []string{"resilience.bulkhead_max_concurrent=0"}, nil, "resilience.bulkhead_max_concurrent"},
		{"bulkhead queue negative", []string{"resilience.bulkhead_max_queued=-1"}, nil, "resilience.bulkhead_max_queued"},
		{"bulkhead queue 0", []string{"resilience.bulkhead_max_queued=0", "resilience.llm_max_queued=0"}, nil, ""},
		{"bulkhead queue timeout 0", []string{"resilience.bulkhead_queue_timeout_seconds=0"}, nil, "resilience.bulkhead_queue_timeout_seconds"},
		{"tool timeout 0", []string{"resilience.tool_timeout_seconds=0"}, nil, "resilience.tool_timeout_seconds"},
		{"llm concurrent 0", []string{"resilience.llm_max_concurrent=0"}, nil, "resilience.llm_max_concurrent"},
		{"llm queue negative", []string{"resilience.llm_max_queued=-1"}, nil, "resilience.llm_max_queued"},
		{"audit backend", []string{"audit.backend=s3"}, nil, "audit.backend"},
		{"audit file without path", []string{"audit.backend=file", "audit.file_path="}, nil, "audit.file_path"},
		{"audit file with path", []string{"audit.backend=file"}, nil, ""},
		{"audit max events 0", []string{"audit.max_events=0"}, nil, "audit.max_events"},
		{"audit fsync", []string{"audit.fsync=sometimes"}, nil, "audit.fsync"},
		{"brute force threshold 0", []string{"security.brute_force_threshold=0"}, nil, "security.brute_force_threshold"},
		{"brute force window 0", []string{"security.brute_force_window_seconds=0"}, nil, "security.brute_force_window_seconds"},
		{"rate limit threshold 0", []string{"security.rate_limit_threshold=0"}, nil, "security.rate_limit_threshold"},
		{"injection action", []string{"security.prompt_injection_action=drop"}, nil, "security.prompt_injection_action"},
		{"injection action flag", []string{"security.prompt_injection_action=flag"}, nil, ""},
		{"block duration 0", []string{"security.block_duration_seconds=0"}, nil, "security.block_duration_seconds"},
		{"anomalous sources 0", []string{"security.anomalous_access_sources=0"}, nil, "security.anomalous_access_sources"},
		{"anomalous window 0", []string{"security.anomalous_access_window_seconds=0"}, nil, "security.anomalous_access_window_seconds"},
		{"role claim empty", []string{"auth.jwt_role_claim="}, nil, "auth.jwt_role_claim"},
		{"jwks url invalid", []string{"auth.jwks_url=keys.json"}, nil, "auth.jwks_url"},
		{"auth without any method", []string{"auth.enabled=true"}, nil, "auth.enabled"},
		{"auth with api keys", []string{"auth.enabled=true", "auth.api_keys_file=keys.txt"}, nil, ""},
		{"auth with jwt secret", []string{"auth.enabled=true"}, map[string]string{"AGENT_AUTH_JWT_SECRET": "s"}, ""},
		{"auth with jwks", []string{"auth.enabled=true", "auth.jwks_url=https://idp.example/.well-known/jwks.json"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(cfgTestFile(t, ""), cfgTestEnv(tt.env), tt.overrides)
			if tt.wantKey == "" {
				if err != nil {
					t.Errorf("loadConfig(%v) error: %v; want nil", tt.overrides, err)
				}
				return
			}
			ce := cfgTestFindKey(err, tt.wantKey)
			if ce == nil {
				t.Fatalf("loadConfig(%v) error = %v; want one naming %s", tt.overrides, err, tt.wantKey)
			}
			if ce.File != "flag" {
				t.Errorf("error source = %q; want flag", ce.File)
			}
			if !strings.Contains(err.Error(), tt.wantKey+": ") {
				t.Errorf("error text %q does not name %s", err, tt.wantKey)
			}
		})
	}
}

func TestValidationErrorNamesFileLineAndEnv(t *testing.T) {
	t.Parallel()
	path := cfgTestFile(t, "[server]\n# comment\nport = 70000\n[sessions]\nmax_sessions = 0\n")
	_, err := loadConfig(path, cfgTestEnv(map[string]string{"AGENT_LLM_TEMPERATURE": "3"}), nil)
	for _, want := range []string{
		path + ":3: server.port: must be between 0 and 65535, got 70000",
		"environment AGENT_LLM_TEMPERATURE: llm.temperature: must be between 0 and 2, got 3",
		path + ":5: sessions.max_sessions: must be at least 1, got 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loadConfig error = %v; want it to contain %q", err, want)
		}
	}
}
