package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// cfgTestEnv returns a getenv over a fixed map.
func cfgTestEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// cfgTestFile writes content to a config file in a fresh temp dir.
func cfgTestFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cfgTestFindKey returns the *ConfigError for key inside a possibly joined error.
func cfgTestFindKey(err error, key string) *ConfigError {
	var ce *ConfigError
	if errors.As(err, &ce) && ce.Key == key {
		return ce
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if ce := cfgTestFindKey(e, key); ce != nil {
				return ce
			}
		}
	}
	return nil
}

// cfgTestGet returns the value of key in c.
func cfgTestGet(t *testing.T, c *Config, key string) any {
	t.Helper()
	f, ok := cfgFieldIndex()[key]
	if !ok {
		t.Fatalf("no field %q", key)
	}
	return reflect.ValueOf(f.ptr(c)).Elem().Interface()
}

func TestDefaultConfigIsValid(t *testing.T) {
	t.Parallel()
	if err := defaultConfig().Validate(); err != nil {
		t.Errorf("defaultConfig().Validate() = %v; want nil", err)
	}
}

// TestFieldTableCoversConfig checks that every section field has exactly one
// key, that keys are unique, and that each key is section.snake_name.
func TestFieldTableCoversConfig(t *testing.T) {
	t.Parallel()
	c := defaultConfig()
	seen := map[any]string{}
	keys := map[string]bool{}
	for _, f := range cfgFields() {
		p := f.ptr(c)
		if prev, dup := seen[p]; dup {
			t.Errorf("%s and %s point to the same field", prev, f.key)
		}
		seen[p] = f.key
		if keys[f.key] {
			t.Errorf("duplicate key %s", f.key)
		}
		keys[f.key] = true
		if strings.HasPrefix(cfgTypeName(p), "unsupported") {
			t.Errorf("%s has %s", f.key, cfgTypeName(p))
		}
		section, _, _ := strings.Cut(f.key, ".")
		if !strings.Contains(strings.Join(cfgSections(), " "), section) {
			t.Errorf("%s is in no known section", f.key)
		}
	}
	v := reflect.ValueOf(c).Elem()
	total := 0
	for i := range v.NumField() {
		sec := v.Field(i)
		if sec.Kind() != reflect.Struct {
			continue
		}
		for j := range sec.NumField() {
			total++
			if _, ok := seen[sec.Field(j).Addr().Interface()]; !ok {
				t.Errorf("field %s.%s has no key", v.Type().Field(i).Name, sec.Type().Field(j).Name)
			}
		}
	}
	if total != len(cfgFields()) {
		t.Errorf("%d section fields, %d keys; want equal", total, len(cfgFields()))
	}
}

func TestSeedConfigLoadsToDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig("config.toml", cfgTestEnv(nil), nil)
	if err != nil {
		t.Fatalf("loadConfig(config.toml) error: %v", err)
	}
	c.Path, c.FileSHA256 = "", ""
	if want := defaultConfig(); !reflect.DeepEqual(c, want) {
		t.Errorf("config.toml loads to\n%+v\nwant defaults\n%+v", c, want)
	}
	data, err := os.ReadFile("config.toml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := tomlParse("config.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	written := tomlTestFlatten(doc)
	for _, f := range cfgFields() {
		if _, ok := written[f.key]; !ok {
			t.Errorf("config.toml lacks %s", f.key)
		}
	}
}

func TestConfigErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  ConfigError
		want string
	}{
		{ConfigError{File: "config.toml", Line: 12, Key: "server.port", Msg: "must be between 0 and 65535"}, "config.toml:12: server.port: must be between 0 and 65535"},
		{ConfigError{File: "environment AGENT_SERVER_PORT", Key: "server.port", Msg: "m"}, "environment AGENT_SERVER_PORT: server.port: m"},
		{ConfigError{File: "flag", Key: "server.port", Msg: "m"}, "flag: server.port: m"},
		{ConfigError{File: "c.toml", Line: 3, Msg: "unterminated string"}, "c.toml:3: unterminated string"},
		{ConfigError{Key: "llm.model", Msg: "must not be empty"}, "llm.model: must not be empty"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		"server.port":                       "AGENT_SERVER_PORT",
		"resilience.rate_limit_burst":       "AGENT_RESILIENCE_RATE_LIMIT_BURST",
		"observability.tracing_level":       "AGENT_OBSERVABILITY_TRACING_LEVEL",
		"security.anomalous_access_sources": "AGENT_SECURITY_ANOMALOUS_ACCESS_SOURCES",
	} {
		if got := cfgEnvName(key); got != want {
			t.Errorf("cfgEnvName(%q) = %q; want %q", key, got, want)
		}
	}
}

// TestPrecedence checks defaults < file < environment < flags for keys of
// every type.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key                        string
		file, env, flag            string // file is a TOML value; env and flag are text
		wantDef, wantFile, wantEnv any
		wantFlag                   any
	}{
		{"server.port", "9000", "9001", "9002", 8080, 9000, 9001, 9002},
		{"server.host", `"127.0.0.1"`, "::1", "localhost", "0.0.0.0", "127.0.0.1", "::1", "localhost"},
		{"server.max_body_bytes", "1_000", "2000", "3000", int64(65536), int64(1000), int64(2000), int64(3000)},
		{"llm.temperature", "1", "0.5", "1.25", 0.7, 1.0, 0.5, 1.25},
		{"observability.pprof_enabled", "true", "FALSE", "1", false, true, false, true},
		{"server.trusted_proxies", `["10.0.0.0/8"]`, " 10.0.0.1 , ,::1,", "", []string{}, []string{"10.0.0.0/8"}, []string{"10.0.0.1", "::1"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			section, name, _ := strings.Cut(tt.key, ".")
			file := cfgTestFile(t, "["+section+"]\n"+name+" = "+tt.file+"\n")
			empty := cfgTestFile(t, "")
			env := cfgTestEnv(map[string]string{cfgEnvName(tt.key): tt.env})
			layers := []struct {
				name      string
				path      string
				getenv    func(string) string
				overrides []string
				want      any
			}{
				{"defaults", empty, cfgTestEnv(nil), nil, tt.wantDef},
				{"file", file, cfgTestEnv(nil), nil, tt.wantFile},
				{"environment", file, env, nil, tt.wantEnv},
				{"flag", file, env, []string{tt.key + "=" + tt.flag}, tt.wantFlag},
			}
			for _, l := range layers {
				c, err := loadConfig(l.path, l.getenv, l.overrides)
				if err != nil {
					t.Fatalf("%s: loadConfig error: %v", l.name, err)
				}
				if got := cfgTestGet(t, c, tt.key); !reflect.DeepEqual(got, l.want) {
					t.Errorf("%s layer: %s = %#v; want %#v", l.name, tt.key, got, l.want)
				}
			}
		})
	}
}

func TestEmptyEnvironmentValueIsUnset(t *testing.T) {
	t.Parallel()
	path := cfgTestFile(t, "[server]\nport = 9000\nhost = \"h\"\n")
	c, err := loadConfig(path, cfgTestEnv(map[string]string{"AGENT_SERVER_PORT": "", "AGENT_SERVER_HOST": ""}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 9000 || c.Server.Host != "h" {
		t.Errorf("port, host = %d, %q; want 9000, \"h\" from the file", c.Server.Port, c.Server.Host)
	}
}

func TestSecretsFromEnvironment(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(cfgTestFile(t, ""), cfgTestEnv(map[string]string{
		"ANTHROPIC_API_KEY": "a-key", "OPENAI_API_KEY": "o-key", "AGENT_AUTH_JWT_SECRET": "j-secret",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AnthropicAPIKey != "a-key" || c.OpenAIAPIKey != "o-key" || c.JWTSecret != "j-secret" {
		t.Errorf("secrets = %q, %q, %q; want a-key, o-key, j-secret", c.AnthropicAPIKey, c.OpenAIAPIKey, c.JWTSecret)
	}
}

// TestLoadErrors covers errors raised while reading values (before validation).
func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		file      string
		env       map[string]string
		overrides []string
		want      string // full error text; "FILE" stands for the file path
	}{
		{"unknown table", "[server]\n[servers]\n", nil, nil, "FILE:2: unknown table [servers]; valid tables are server, llm, sessions, observability, resilience, audit, security, auth"},
		{"unknown key", "[server]\nprot = 1\n", nil, nil, "FILE:2: server.prot: unknown key"},
		{"key in wrong table", "[llm]\nport = 1\n", nil, nil, "FILE:2: llm.port: unknown key; did you mean server.port?"},
		{"string for integer", "[server]\nport = \"8080\"\n", nil, nil, "FILE:2: server.port: expected integer, got string"},
		{"float for integer", "[server]\n\nport = 80.5\n", nil, nil, "FILE:3: server.port: expected integer, got float"},
		{"string for float", "[llm]\ntemperature = \"0.5\"\n", nil, nil, "FILE:2: llm.temperature: expected float, got string"},
		{"integer for string", "[llm]\nmodel = 5\n", nil, nil, "FILE:2: llm.model: expected string, got integer"},
		{"string for boolean", "[auth]\nenabled = \"true\"\n", nil, nil, "FILE:2: auth.enabled: expected boolean, got string"},
		{"string for list", "[server]\ntrusted_proxies = \"10.0.0.1\"\n", nil, nil, "FILE:2: server.trusted_proxies: expected array of strings, got string"},
		{"list for string", "[server]\nhost = [\"a\"]\n", nil, nil, "FILE:2: server.host: expected string, got array"},
		{"secret jwt in file", "[auth]\njwt_secret = \"x\"\n", nil, nil, "FILE:2: auth.jwt_secret: secrets come from the environment only; remove this key and set AGENT_AUTH_JWT_SECRET"},
		{"secret api key in file", "[llm]\napi_key = \"x\"\n", nil, nil, "FILE:2: llm.api_key: secrets come from the environment only; remove this key and set ANTHROPIC_API_KEY or OPENAI_API_KEY"},
		{"anthropic key in file", "[llm]\nanthropic_api_key = \"x\"\n", nil, nil, "FILE:2: llm.anthropic_api_key: secrets come from the environment only; remove this key and set ANTHROPIC_API_KEY"},
		{"syntax error", "[server]\nport = 80 # ok\nhost = localhost\n", nil, nil, `FILE:3: server.host: invalid value "localhost": strings must be quoted`},
		{"env not an integer", "", map[string]string{"AGENT_SERVER_PORT": "http"}, nil, `environment AGENT_SERVER_PORT: server.port: expected integer, got "http"`},
		{"env float for integer", "", map[string]string{"AGENT_SESSIONS_MAX_SESSIONS": "1.5"}, nil, "environment AGENT_SESSIONS_MAX_SESSIONS: sessions.max_sessions: expected integer, got float"},
		{"env bad boolean", "", map[string]string{"AGENT_AUTH_ENABLED": "yes"}, nil, `environment AGENT_AUTH_ENABLED: auth.enabled: expected boolean (true, false, 1 or 0), got "yes"`},
		{"env inf float", "", map[string]string{"AGENT_LLM_TEMPERATURE": "inf"}, nil, `environment AGENT_LLM_TEMPERATURE: llm.temperature: expected float, got "inf"`},
		{"flag without equals", "", nil, []string{"server.port"}, "flag: server.port: expected section.key=value"},
		{"flag unknown key", "", nil, []string{"server.nope=1"}, "flag: server.nope: unknown key"},
		{"flag bad value", "", nil, []string{"server.port=x"}, `flag: server.port: expected integer, got "x"`},
		{"flag secret", "", nil, []string{"auth.jwt_secret=x"}, "flag: auth.jwt_secret: secrets come from the environment only; remove this key and set AGENT_AUTH_JWT_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := cfgTestFile(t, tt.file)
			_, err := loadConfig(path, cfgTestEnv(tt.env), tt.overrides)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("loadConfig error = %v; want a *ConfigError", err)
			}
			if want := strings.ReplaceAll(tt.want, "FILE", path); err.Error() != want {
				t.Errorf("loadConfig error =\n%q; want\n%q", err, want)
			}
		})
	}
}

func TestResolvedProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider, anthropic, openai, baseURL string
		want                                 string
	}{
		{"auto", "", "", "", "mock"},
		{"auto", "a", "", "", "anthropic"},
		{"auto", "a", "o", "", "anthropic"},
		{"auto", "", "o", "", "openai"},
		{"auto", "", "", "http://localhost:11434/v1", "openai"},
		{"mock", "a", "o", "", "mock"},
		{"openai", "a", "o", "", "openai"},
		{"anthropic", "a", "", "", "anthropic"},
	}
	for _, tt := range tests {
		c := defaultConfig()
		c.LLM.Provider, c.AnthropicAPIKey, c.OpenAIAPIKey, c.LLM.BaseURL = tt.provider, tt.anthropic, tt.openai, tt.baseURL
		if got := c.ResolvedProvider(); got != tt.want {
			t.Errorf("ResolvedProvider(%+v) = %q; want %q", tt, got, tt.want)
		}
	}
}

func TestWriteTOMLNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{
		"ANTHROPIC_API_KEY":     "sk-ant-DISTINCTIVE-1111",
		"OPENAI_API_KEY":        "sk-openai-DISTINCTIVE-2222",
		"AGENT_AUTH_JWT_SECRET": "jwt-DISTINCTIVE-3333",
	}
	c, err := loadConfig(cfgTestFile(t, ""), cfgTestEnv(secrets), nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := c.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for name, v := range secrets {
		if strings.Contains(out, v) || strings.Contains(out, "DISTINCTIVE") {
			t.Errorf("WriteTOML output contains the value of %s", name)
		}
		if want := "# " + name + " = (set, redacted)\n"; !strings.Contains(out, want) {
			t.Errorf("WriteTOML output lacks %q", want)
		}
	}
	b.Reset()
	if err := defaultConfig().WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	for name := range secrets {
		if want := "# " + name + " = (unset)\n"; !strings.Contains(b.String(), want) {
			t.Errorf("WriteTOML output for defaults lacks %q", want)
		}
	}
}

// cfgTestCustom returns a valid configuration in which every key differs
// from its default.
func cfgTestCustom() *Config {
	return &Config{
		Server: ServerConfig{Host: "127.0.0.1", Port: 0, RequestTimeoutSeconds: 61, ShutdownTimeoutSeconds: 31,
			ShutdownDelaySeconds: 5, MaxBodyBytes: 1 << 40, MaxHeaderBytes: 2048,
			TrustedProxies: []string{"10.0.0.0/8", "::1"}, CORSAllowedOrigins: []string{"*", "https://a.example:8443"},
			TLSCertFile: `C:\certs\"odd" name.pem`, TLSKeyFile: "key #1.pem"},
		LLM: LLMConfig{Provider: "anthropic", Model: "m\tmodel\u00e9", MaxTokens: 1, Temperature: 2, TimeoutSeconds: 1,
			BaseURL: "https://proxy.example/anthropic", MaxRetries: 0, MaxToolIterations: 1, MaxMessageBytes: 1,
			InputCostPerMTok: 0.1, OutputCostPerMTok: 1e-7, MockLatencyMS: 250, MockFailureRate: 1},
		Sessions: SessionsConfig{MaxSessions: 1, IdleTimeoutSeconds: 1, MaxHistoryMessages: 2},
		Observability: ObservabilityConfig{TracingEnabled: false, TracingLevel: "trace",
			OpenTelemetryEndpoint: "http://collector:4318", TracingSampleRatio: 0.125, MetricsEnabled: false,
			MetricsPort: 0, PprofEnabled: true},
		Resilience: ResilienceConfig{CircuitBreakerEnabled: false, CircuitBreakerFailureThreshold: 1,
			CircuitBreakerSuccessThreshold: 1, CircuitBreakerTimeoutSeconds: 1, RateLimitEnabled: false,
			RateLimitRequestsPerSecond: 0.333, RateLimitBurst: 1, IPRateLimitEnabled: false,
			IPRateLimitRequestsPerSecond: 123456789.125, IPRateLimitBurst: 1, BulkheadEnabled: false,
			BulkheadMaxConcurrent: 1, BulkheadMaxQueued: 0, BulkheadQueueTimeoutSeconds: 1, ToolTimeoutSeconds: 1,
			LLMMaxConcurrent: 1, LLMMaxQueued: 0},
		Audit: AuditConfig{Enabled: false, Backend: "file", FilePath: "/var/log/agent/audit.jsonl", MaxEvents: 1, Fsync: "never"},
		Security: SecurityConfig{Enabled: false, BruteForceThreshold: 1, BruteForceWindowSeconds: 1, RateLimitThreshold: 1,
			PromptInjectionAction: "flag", AutoBlock: false, BlockDurationSeconds: 1, AnomalousAccessSources: 1,
			AnomalousAccessWindowSeconds: 1},
		Auth: AuthConfig{Enabled: true, APIKeysFile: "keys.txt", JWTIssuer: "https://idp.example/", JWTAudience: "agent",
			JWTPublicKeyFile: "jwt.pem", JWKSURL: "https://idp.example/jwks.json", JWTRoleClaim: "https://example.com/role"},
		AnthropicAPIKey: "a-key",
	}
}

func TestWriteTOMLRoundTrip(t *testing.T) {
	t.Parallel()
	want := cfgTestCustom()
	if err := want.Validate(); err != nil {
		t.Fatalf("custom config invalid: %v", err)
	}
	def := defaultConfig()
	for _, f := range cfgFields() {
		if reflect.DeepEqual(f.ptr(want), f.ptr(def)) {
			t.Errorf("custom config keeps the default of %s; make it differ", f.key)
		}
	}
	var b strings.Builder
	if err := want.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	path := cfgTestFile(t, b.String())
	got, err := loadConfig(path, cfgTestEnv(map[string]string{"ANTHROPIC_API_KEY": "a-key"}), nil)
	if err != nil {
		t.Fatalf("loadConfig(WriteTOML output) error: %v\n%s", err, b.String())
	}
	got.Path, got.FileSHA256 = "", ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v\nTOML:\n%s", got, want, b.String())
	}
}

func TestWriteTOMLRoundTripsOddStrings(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", `"`, `\`, "a\nb\r\tc", "\x01\x1f\x7f", "# not a comment", "'single'", "ü ワ 😀", `\u0041`} {
		want := defaultConfig()
		want.LLM.Model = s
		want.Server.TrustedProxies = []string{s, s + "x"}
		var b strings.Builder
		if err := want.WriteTOML(&b); err != nil {
			t.Fatal(err)
		}
		got := defaultConfig()
		if err := cfgApplyFile(got, "t.toml", []byte(b.String()), map[string]cfgSource{}); err != nil {
			t.Fatalf("string %q: WriteTOML output does not parse: %v", s, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("string %q round trip: got model %q, proxies %q", s, got.LLM.Model, got.Server.TrustedProxies)
		}
	}
}

func TestWriteTOMLNamesFile(t *testing.T) {
	t.Parallel()
	content := "[server]\nport = 9000\n"
	path := cfgTestFile(t, content)
	c, err := loadConfig(path, cfgTestEnv(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	if want := hex.EncodeToString(sum[:]); c.FileSHA256 != want || c.Path != path {
		t.Errorf("Path, FileSHA256 = %q, %q; want %q, %q", c.Path, c.FileSHA256, path, want)
	}
	var b strings.Builder
	if err := c.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), c.FileSHA256) || !strings.Contains(b.String(), "port = 9000\n") {
		t.Errorf("WriteTOML output lacks the file hash or port:\n%s", b.String())
	}
}

type cfgFailingWriter struct{}

func (cfgFailingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteTOMLReportsWriteError(t *testing.T) {
	t.Parallel()
	if err := defaultConfig().WriteTOML(cfgFailingWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteTOML to a failing writer = %v; want the write error", err)
	}
}

func TestConfigFileSelection(t *testing.T) {
	t.Chdir(t.TempDir()) // the implicit ./config.toml is relative to the working directory
	if err := os.WriteFile("config.toml", []byte("[server]\nport = 1001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envFile := cfgTestFile(t, "[server]\nport = 1002\n")
	argFile := cfgTestFile(t, "[server]\nport = 1003\n")
	tests := []struct {
		name     string
		path     string
		env      map[string]string
		wantPath string
		wantPort int
	}{
		{"implicit ./config.toml", "", nil, "config.toml", 1001},
		{"AGENT_CONFIG", "", map[string]string{"AGENT_CONFIG": envFile}, envFile, 1002},
		{"explicit path beats AGENT_CONFIG", argFile, map[string]string{"AGENT_CONFIG": envFile}, argFile, 1003},
	}
	for _, tt := range tests {
		c, err := loadConfig(tt.path, cfgTestEnv(tt.env), nil)
		if err != nil {
			t.Fatalf("%s: loadConfig error: %v", tt.name, err)
		}
		if c.Path != tt.wantPath || c.Server.Port != tt.wantPort {
			t.Errorf("%s: Path, port = %q, %d; want %q, %d", tt.name, c.Path, c.Server.Port, tt.wantPath, tt.wantPort)
		}
	}
	if err := os.Remove("config.toml"); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig("", cfgTestEnv(nil), nil)
	if err != nil {
		t.Fatalf("no file: loadConfig error: %v", err)
	}
	if want := defaultConfig(); c.Path != "" || c.FileSHA256 != "" || !reflect.DeepEqual(c, want) {
		t.Errorf("no file: loadConfig = %+v; want defaults with no path", c)
	}
}

func TestMissingExplicitFileIsError(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.toml")
	for name, load := range map[string]func() (*Config, error){
		"path": func() (*Config, error) { return loadConfig(missing, cfgTestEnv(nil), nil) },
		"AGENT_CONFIG": func() (*Config, error) {
			return loadConfig("", cfgTestEnv(map[string]string{"AGENT_CONFIG": missing}), nil)
		},
	} {
		c, err := load()
		if !errors.Is(err, fs.ErrNotExist) || c != nil {
			t.Errorf("%s: loadConfig of a missing file = %v, %v; want nil, fs.ErrNotExist", name, c, err)
		}
	}
}

func TestOversizedFileIsError(t *testing.T) {
	t.Parallel()
	path := cfgTestFile(t, "# "+strings.Repeat("x", cfgMaxFileBytes)+"\n")
	var ce *ConfigError
	if _, err := loadConfig(path, cfgTestEnv(nil), nil); !errors.As(err, &ce) || !strings.Contains(ce.Msg, "larger than") {
		t.Errorf("loadConfig of an oversized file = %v; want a size error", err)
	}
}

// TestUnknownEnvironmentKey: a set AGENT_<section>_<key> variable naming no
// key of a known section is refused like an unknown key in the file;
// variables of no section of ours, AGENT_CONFIG, the JWT secret and empty
// values are left alone.
func TestUnknownEnvironmentKey(t *testing.T) {
	env := map[string]string{
		"AGENT_SERVER_PROT": "9", "AGENT_SERVER_PORT": "8081", "AGENT_OS": "Linux", "AGENT_NAME": "ci-runner-3",
		"AGENT_CONFIG": "", "AGENT_AUTH_JWT_SECRET": "s", "AGENT_LLM_TEMPERATUR": "", "PATH": "/bin",
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	err := cfgCheckEnvNames(names, cfgTestEnv(env))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.File != "environment AGENT_SERVER_PROT" || ce.Key != "server.prot" {
		t.Fatalf("cfgCheckEnvNames = %v; want an unknown-key error for AGENT_SERVER_PROT (server.prot)", err)
	}
	delete(env, "AGENT_SERVER_PROT")
	if err := cfgCheckEnvNames(names, cfgTestEnv(env)); err != nil {
		t.Errorf("without the misspelt variable: %v; want nil", err)
	}
	env["AGENT_LLM_API_KEY"] = "sk-x"
	if err := cfgCheckEnvNames(append(names, "AGENT_LLM_API_KEY"), cfgTestEnv(env)); err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Errorf("AGENT_LLM_API_KEY: %v; want the secrets hint", err)
	}

	// Through loadConfig, from the real process environment.
	t.Setenv("AGENT_SESSIONS_MAX_SESION", "5")
	if _, err := loadConfig("", os.Getenv, nil); err == nil || !strings.Contains(err.Error(), "AGENT_SESSIONS_MAX_SESION") {
		t.Errorf("loadConfig with AGENT_SESSIONS_MAX_SESION set: %v; want it refused", err)
	}
}
