package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// Config is the effective configuration of the service (DESIGN §5). It is
// built once by loadConfig and then only read, so it may be shared between
// goroutines without locking. Durations are whole seconds in *Seconds fields
// (milliseconds in MockLatencyMS); sizes are bytes.
type Config struct {
	Server        ServerConfig
	LLM           LLMConfig
	Sessions      SessionsConfig
	Observability ObservabilityConfig
	Resilience    ResilienceConfig
	Audit         AuditConfig
	Security      SecurityConfig
	Auth          AuthConfig
	// Secrets, from the environment only (never from the file):
	AnthropicAPIKey string // ANTHROPIC_API_KEY
	OpenAIAPIKey    string // OPENAI_API_KEY
	JWTSecret       string // AGENT_AUTH_JWT_SECRET
	// Where the file came from ("" when no file was read) and its SHA-256 (hex) for tamper checks.
	Path       string
	FileSHA256 string
}

// ServerConfig is the [server] table: the API listener and its limits.
type ServerConfig struct {
	Host                   string
	Port                   int // 0 picks a free port
	RequestTimeoutSeconds  int
	ShutdownTimeoutSeconds int
	ShutdownDelaySeconds   int // may be 0
	MaxBodyBytes           int64
	MaxHeaderBytes         int
	TrustedProxies         []string // IPs or CIDRs whose X-Forwarded-For is believed
	CORSAllowedOrigins     []string // "*" or scheme://host[:port]
	TLSCertFile            string   // both or neither of cert and key
	TLSKeyFile             string
}

// LLMConfig is the [llm] table. Cost fields are USD per million tokens;
// -1 selects the built-in price table.
type LLMConfig struct {
	Provider          string // auto|mock|anthropic|openai; see ResolvedProvider
	Model             string
	MaxTokens         int
	Temperature       float64 // 0..2
	TimeoutSeconds    int
	BaseURL           string // "" or an absolute http(s) URL
	MaxRetries        int    // 0 means a single attempt
	MaxToolIterations int
	MaxMessageBytes   int
	InputCostPerMTok  float64
	OutputCostPerMTok float64
	MockLatencyMS     int
	MockFailureRate   float64 // 0..1
}

// SessionsConfig is the [sessions] table.
type SessionsConfig struct {
	MaxSessions        int
	IdleTimeoutSeconds int
	MaxHistoryMessages int
}

// ObservabilityConfig is the [observability] table. OpenTelemetryEndpoint is
// the OTLP/HTTP base URL ("" disables export); MetricsPort is the admin
// listener's port (0 picks a free port).
type ObservabilityConfig struct {
	TracingEnabled        bool
	TracingLevel          string // trace|debug|info|warn|error
	OpenTelemetryEndpoint string
	TracingSampleRatio    float64 // 0..1
	MetricsEnabled        bool
	MetricsPort           int
	PprofEnabled          bool
}

// ResilienceConfig is the [resilience] table. Rates are requests per second
// and may be fractional; a *MaxQueued of 0 means no queue (reject when full).
type ResilienceConfig struct {
	CircuitBreakerEnabled          bool
	CircuitBreakerFailureThreshold int
	CircuitBreakerSuccessThreshold int
	CircuitBreakerTimeoutSeconds   int
	RateLimitEnabled               bool
	RateLimitRequestsPerSecond     float64
	RateLimitBurst                 int
	IPRateLimitEnabled             bool
	IPRateLimitRequestsPerSecond   float64
	IPRateLimitBurst               int
	BulkheadEnabled                bool
	BulkheadMaxConcurrent          int
	BulkheadMaxQueued              int
	BulkheadQueueTimeoutSeconds    int
	ToolTimeoutSeconds             int
	LLMMaxConcurrent               int
	LLMMaxQueued                   int
}

// AuditConfig is the [audit] table.
type AuditConfig struct {
	Enabled   bool
	Backend   string // in_memory|file
	FilePath  string // required when Backend is "file"
	MaxEvents int
	Fsync     string // always|never
}

// SecurityConfig is the [security] table.
type SecurityConfig struct {
	Enabled                      bool
	BruteForceThreshold          int
	BruteForceWindowSeconds      int
	RateLimitThreshold           int
	PromptInjectionAction        string // block|flag
	AutoBlock                    bool
	BlockDurationSeconds         int
	AnomalousAccessSources       int
	AnomalousAccessWindowSeconds int
}

// AuthConfig is the [auth] table. The HMAC secret is Config.JWTSecret.
type AuthConfig struct {
	Enabled          bool
	APIKeysFile      string
	JWTIssuer        string
	JWTAudience      string
	JWTPublicKeyFile string
	JWKSURL          string
	JWTRoleClaim     string
}

// ConfigError reports one bad setting: where it came from and which key.
// File is the config file path, "environment AGENT_…" or "flag"; Line is
// the 1-based line in the file (0 when not from a file); Key is
// "section.key" ("" for pure syntax errors).
type ConfigError struct {
	File string
	Line int
	Key  string
	Msg  string
}

// Error formats the error as "file:line: key: msg", leaving out empty parts.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// defaultConfig returns the built-in defaults of DESIGN §5 (no file, no
// secrets). Each call returns a fresh value.
func defaultConfig() *Config {
	return &Config{
		Server: ServerConfig{
			Host: "0.0.0.0", Port: 8080, RequestTimeoutSeconds: 60, ShutdownTimeoutSeconds: 30,
			ShutdownDelaySeconds: 0, MaxBodyBytes: 65536, MaxHeaderBytes: 16384,
			TrustedProxies: []string{}, CORSAllowedOrigins: []string{},
		},
		LLM: LLMConfig{
			Provider: "auto", Model: "claude-sonnet-4-5", MaxTokens: 4096, Temperature: 0.7,
			TimeoutSeconds: 30, MaxRetries: 2, MaxToolIterations: 8, MaxMessageBytes: 32768,
			InputCostPerMTok: -1, OutputCostPerMTok: -1,
		},
		Sessions: SessionsConfig{MaxSessions: 10000, IdleTimeoutSeconds: 1800, MaxHistoryMessages: 50},
		Observability: ObservabilityConfig{
			TracingEnabled: true, TracingLevel: "info", TracingSampleRatio: 1.0,
			MetricsEnabled: true, MetricsPort: 9090,
		},
		Resilience: ResilienceConfig{
			CircuitBreakerEnabled: true, CircuitBreakerFailureThreshold: 5, CircuitBreakerSuccessThreshold: 2,
			CircuitBreakerTimeoutSeconds: 60, RateLimitEnabled: true, RateLimitRequestsPerSecond: 10, RateLimitBurst: 20,
			IPRateLimitEnabled: true, IPRateLimitRequestsPerSecond: 50, IPRateLimitBurst: 100,
			BulkheadEnabled: true, BulkheadMaxConcurrent: 100, BulkheadMaxQueued: 1000,
			BulkheadQueueTimeoutSeconds: 30, ToolTimeoutSeconds: 10, LLMMaxConcurrent: 256, LLMMaxQueued: 1024,
		},
		Audit: AuditConfig{Enabled: true, Backend: "in_memory", FilePath: "audit.jsonl", MaxEvents: 100000, Fsync: "always"},
		Security: SecurityConfig{
			Enabled: true, BruteForceThreshold: 5, BruteForceWindowSeconds: 300, RateLimitThreshold: 100,
			PromptInjectionAction: "block", AutoBlock: true, BlockDurationSeconds: 900,
			AnomalousAccessSources: 5, AnomalousAccessWindowSeconds: 600,
		},
		Auth: AuthConfig{JWTRoleClaim: "role"},
	}
}

// cfgMaxFileBytes bounds how much of a config file is read, so that a
// mistaken AGENT_CONFIG=/dev/zero fails fast instead of eating memory.
const cfgMaxFileBytes = 1 << 20

// cfgSource records where a key's effective value came from, for errors.
type cfgSource struct {
	file string
	line int
}

// loadConfig builds the effective configuration: defaults < file < environment < overrides.
// path "" means: getenv("AGENT_CONFIG") if set, else "./config.toml" if it exists, else no file.
// An explicitly named file (path or AGENT_CONFIG) that does not exist is an error.
// overrides are "section.key=value" strings (from command-line flags), parsed like env values.
//
// A nil getenv means an empty environment. Bad settings are reported as
// *ConfigError (several joined with errors.Join when validation finds more
// than one), naming the file and line, environment variable or flag.
func loadConfig(path string, getenv func(string) string, overrides []string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if path == "" {
		path = getenv("AGENT_CONFIG")
	}
	if path == "" {
		switch _, err := os.Stat("config.toml"); {
		case err == nil:
			path = "config.toml"
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("look for ./config.toml: %w", err)
		}
	}
	c := defaultConfig()
	prov := map[string]cfgSource{}
	if path != "" {
		data, err := cfgReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := cfgApplyFile(c, path, data, prov); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		c.Path, c.FileSHA256 = path, hex.EncodeToString(sum[:])
	}
	c.AnthropicAPIKey = getenv("ANTHROPIC_API_KEY")
	c.OpenAIAPIKey = getenv("OPENAI_API_KEY")
	c.JWTSecret = getenv("AGENT_AUTH_JWT_SECRET")
	if err := cfgCheckEnvNames(cfgEnvironNames(), getenv); err != nil {
		return nil, err
	}
	if err := cfgApplyEnv(c, getenv, prov); err != nil {
		return nil, err
	}
	if err := cfgApplyOverrides(c, overrides, prov); err != nil {
		return nil, err
	}
	problems := c.cfgProblems()
	for _, p := range problems {
		if src, ok := prov[p.Key]; ok {
			p.File, p.Line = src.file, src.line
		}
	}
	if err := cfgJoin(problems); err != nil {
		return nil, err
	}
	return c, nil
}

// cfgReadFile reads a config file of at most cfgMaxFileBytes.
func cfgReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, cfgMaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read config file %s: %w", path, err)
	}
	if len(data) > cfgMaxFileBytes {
		return nil, &ConfigError{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", cfgMaxFileBytes)}
	}
	return data, nil
}

// cfgApplyFile parses data (named file in errors) and sets every key it
// holds on c, recording each key's line in prov.
func cfgApplyFile(c *Config, file string, data []byte, prov map[string]cfgSource) error {
	doc, err := tomlParse(file, data)
	if err != nil {
		return err
	}
	sections := map[string]bool{}
	for _, s := range cfgSections() {
		sections[s] = true
	}
	for _, t := range doc.Tables {
		if !sections[t.Name] {
			return &ConfigError{File: file, Line: t.Line, Msg: fmt.Sprintf("unknown table [%s]; valid tables are %s",
				t.Name, strings.Join(cfgSections(), ", "))}
		}
	}
	fields := cfgFieldIndex()
	for _, e := range doc.Entries {
		key := e.Table + "." + e.Key
		f, ok := fields[key]
		if !ok {
			return &ConfigError{File: file, Line: e.Line, Key: key, Msg: cfgUnknownKeyMsg(key)}
		}
		if msg := cfgAssign(f.ptr(c), e.Value); msg != "" {
			return &ConfigError{File: file, Line: e.Line, Key: key, Msg: msg}
		}
		prov[key] = cfgSource{file: file, line: e.Line}
	}
	return nil
}

// cfgEnvironNames lists the names in the process environment. The loader
// reads values only through its getenv; the names only say which AGENT_*
// variables to look at for unknown keys.
func cfgEnvironNames() []string {
	env := os.Environ()
	names := make([]string, 0, len(env))
	for _, kv := range env {
		if name, _, ok := strings.Cut(kv, "="); ok {
			names = append(names, name)
		}
	}
	return names
}

// cfgCheckEnvNames refuses a set AGENT_SECTION_REST variable of a known
// section that names no key ("AGENT_SERVER_PROT=9"), as the file and -set
// refuse an unknown key. Variables outside the known sections (CI systems
// set AGENT_OS, AGENT_NAME, ...) and AGENT_CONFIG are not ours to judge.
func cfgCheckEnvNames(names []string, getenv func(string) string) error {
	known := map[string]bool{"AGENT_AUTH_JWT_SECRET": true}
	sections := map[string]bool{}
	for _, f := range cfgFields() {
		known[cfgEnvName(f.key)] = true
		section, _, _ := strings.Cut(f.key, ".")
		sections[strings.ToUpper(section)] = true
	}
	for _, name := range slices.Sorted(slices.Values(names)) { // the same first error every time
		rest, ok := strings.CutPrefix(name, "AGENT_")
		if !ok || known[name] || getenv(name) == "" {
			continue
		}
		section, key, ok := strings.Cut(rest, "_")
		if !ok || !sections[section] {
			continue
		}
		k := strings.ToLower(section) + "." + strings.ToLower(key)
		return &ConfigError{File: "environment " + name, Key: k, Msg: cfgUnknownKeyMsg(k)}
	}
	return nil
}

// cfgApplyEnv sets every key whose AGENT_SECTION_KEY variable is non-empty.
func cfgApplyEnv(c *Config, getenv func(string) string, prov map[string]cfgSource) error {
	for _, f := range cfgFields() {
		name := cfgEnvName(f.key)
		s := getenv(name)
		if s == "" {
			continue
		}
		src := "environment " + name
		if msg := cfgAssignText(f.ptr(c), s); msg != "" {
			return &ConfigError{File: src, Key: f.key, Msg: msg}
		}
		prov[f.key] = cfgSource{file: src}
	}
	return nil
}

// cfgApplyOverrides applies "section.key=value" strings in order. Unlike
// the environment, an empty value is applied (it clears a string or list).
func cfgApplyOverrides(c *Config, overrides []string, prov map[string]cfgSource) error {
	fields := cfgFieldIndex()
	for _, o := range overrides {
		key, value, ok := strings.Cut(o, "=")
		key = strings.TrimSpace(key)
		if !ok {
			return &ConfigError{File: "flag", Key: key, Msg: "expected section.key=value"}
		}
		f, ok := fields[key]
		if !ok {
			return &ConfigError{File: "flag", Key: key, Msg: cfgUnknownKeyMsg(key)}
		}
		if msg := cfgAssignText(f.ptr(c), value); msg != "" {
			return &ConfigError{File: "flag", Key: key, Msg: msg}
		}
		prov[key] = cfgSource{file: "flag"}
	}
	return nil
}

// cfgEnvName maps "section.key" to its environment variable AGENT_SECTION_KEY.
func cfgEnvName(key string) string {
	return "AGENT_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// cfgUnknownKeyMsg explains why key is refused: a secret (which belongs in
// the environment), a key of another table, or simply unknown.
func cfgUnknownKeyMsg(key string) string {
	section, name, _ := strings.Cut(key, ".")
	switch {
	case name == "api_key" || strings.HasSuffix(name, "_api_key") || name == "token" ||
		strings.Contains(name, "secret") || strings.Contains(name, "password"):
		hint := "the environment"
		switch {
		case section == "auth" && strings.HasPrefix(name, "jwt"):
			hint = "AGENT_AUTH_JWT_SECRET"
		case section == "llm" && strings.Contains(name, "openai"):
			hint = "OPENAI_API_KEY"
		case section == "llm" && strings.Contains(name, "anthropic"):
			hint = "ANTHROPIC_API_KEY"
		case section == "llm":
			hint = "ANTHROPIC_API_KEY or OPENAI_API_KEY"
		}
		return "secrets come from the environment only; remove this key and set " + hint
	}
	for _, f := range cfgFields() {
		if _, other, _ := strings.Cut(f.key, "."); other == name {
			return "unknown key; did you mean " + f.key + "?"
		}
	}
	return "unknown key"
}

// cfgTypeName names the TOML type a field pointer expects.
func cfgTypeName(dst any) string {
	switch dst.(type) {
	case *string:
		return "string"
	case *int, *int64:
		return "integer"
	case *float64:
		return "float"
	case *bool:
		return "boolean"
	case *[]string:
		return "array of strings"
	}
	return fmt.Sprintf("unsupported type %T", dst)
}

// cfgAssign stores a parsed file value into the field dst points to, or
// returns a message saying why it cannot. An integer is accepted for a float.
func cfgAssign(dst any, v tomlValue) string {
	want := cfgTypeName(dst)
	wrong := "expected " + want + ", got " + v.Kind.String()
	switch p := dst.(type) {
	case *string:
		if v.Kind != tomlString {
			return wrong
		}
		*p = v.Str
	case *int:
		if v.Kind != tomlInteger {
			return wrong
		}
		if int64(int(v.Int)) != v.Int {
			return fmt.Sprintf("integer %d out of range", v.Int)
		}
		*p = int(v.Int)
	case *int64:
		if v.Kind != tomlInteger {
			return wrong
		}
		*p = v.Int
	case *float64:
		switch v.Kind {
		case tomlInteger:
			*p = float64(v.Int)
		case tomlFloat:
			*p = v.Float
		default:
			return wrong
		}
	case *bool:
		if v.Kind != tomlBool {
			return wrong
		}
		*p = v.Bool
	case *[]string:
		if v.Kind != tomlArray {
			return wrong
		}
		*p = append([]string{}, v.List...)
	default:
		return wrong
	}
	return ""
}

// cfgAssignText stores an environment or flag value into the field dst
// points to: numbers in TOML syntax, booleans true/false/1/0 in any case,
// lists comma-separated with items trimmed and empty items dropped.
func cfgAssignText(dst any, s string) string {
	var v tomlValue
	switch dst.(type) {
	case *string:
		v = tomlValue{Kind: tomlString, Str: s}
	case *bool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1":
			v = tomlValue{Kind: tomlBool, Bool: true}
		case "false", "0":
			v = tomlValue{Kind: tomlBool, Bool: false}
		default:
			return fmt.Sprintf("expected boolean (true, false, 1 or 0), got %q", s)
		}
	case *[]string:
		v = tomlValue{Kind: tomlArray, List: []string{}}
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				v.List = append(v.List, item)
			}
		}
	default:
		n, msg := tomlParseNumber(strings.TrimSpace(s))
		if msg != "" {
			return fmt.Sprintf("expected %s, got %q", cfgTypeName(dst), s)
		}
		v = n
	}
	return cfgAssign(dst, v)
}
