// Command production-agent serves an LLM agent over HTTP: POST /chat drives
// a conversation through a pure reducer against Anthropic, an
// OpenAI-compatible server or an embedded offline model, guarded by rate
// limits, a circuit breaker, bulkheads and timeouts, with an audit trail,
// a security monitor, Prometheus metrics and Kubernetes-style probes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"
	_ "time/tzdata" // current_time must know every zone even in an empty container
)

// version is stamped at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errSilentExit) {
			fmt.Fprintln(os.Stderr, "production-agent:", err)
		}
		os.Exit(1)
	}
}

// errSilentExit ends the process with status 1 after the command already
// said why (healthcheck, config -check, audit verify).
var errSilentExit = errors.New("exit status 1")

const usage = `usage: production-agent [command] [flags]

commands:
  serve         run the service (the default)
  config        print the effective configuration (-check: validate only)
  healthcheck   probe a running instance (-url URL); exit 0 when healthy
  audit verify  check the hash chain of an audit file
  keygen        make an API key (-user U -role user|service|admin)
  scan          run the prompt-injection detector over JSON lines on stdin
  version       print the version
`

// run is the whole program; main only calls it. It returns instead of
// exiting so tests can drive every command in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stdout, stderr)
	case "config":
		return runConfig(args, getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args, getenv, stdout, stderr)
	case "audit":
		if len(args) == 0 || args[0] != "verify" {
			return fmt.Errorf("usage: production-agent audit verify FILE")
		}
		err := runAuditVerify(args[1:], stdout, stderr)
		if errors.Is(err, auditErrChainBroken) {
			return errSilentExit // the report already names the broken seq
		}
		return err
	case "keygen":
		return runKeygen(args, stdout)
	case "scan":
		return runScan(stdin, stdout)
	case "version":
		fmt.Fprintf(stdout, "production-agent %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// configFlags are the flags every config-reading command accepts; each
// becomes an override of the highest precedence.
type configFlags struct {
	path      string
	overrides []string
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "config", "", "configuration file (default $AGENT_CONFIG, else ./config.toml if present)")
	fs.Func("set", "override a key: -set section.key=value (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want section.key=value")
		}
		c.overrides = append(c.overrides, v)
		return nil
	})
	for _, f := range []struct{ name, key, help string }{
		{"host", "server.host", "API listen address"},
		{"port", "server.port", "API port (0: any free port)"},
		{"metrics-port", "observability.metrics_port", "admin listener port (0: any free port)"},
		{"log-level", "observability.tracing_level", "log level: debug, info, warn, error"},
		{"provider", "llm.provider", "LLM provider: auto, mock, anthropic, openai"},
	} {
		fs.Func(f.name, f.help+" (same as -set "+f.key+"=…)", func(v string) error {
			c.overrides = append(c.overrides, f.key+"="+v)
			return nil
		})
	}
}

func parseFlags(name string, args []string, stderr io.Writer, setup func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	setup(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	return nil
}

func runConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cf configFlags
	check := false
	if err := parseFlags("config", args, stderr, func(fs *flag.FlagSet) {
		cf.register(fs)
		fs.BoolVar(&check, "check", false, "validate the configuration and exit 0 (valid) or 1")
	}); err != nil {
		return err
	}
	cfg, err := loadConfig(cf.path, getenv, cf.overrides)
	if err != nil {
		if check {
			fmt.Fprintln(stderr, "configuration invalid:", err)
			return errSilentExit
		}
		return err
	}
	if check {
		src := cfg.Path
		if src == "" {
			src = "built-in defaults and environment"
		}
		fmt.Fprintf(stdout, "configuration OK (%s; provider %s)\n", src, cfg.ResolvedProvider())
		return nil
	}
	return cfg.WriteTOML(stdout)
}

// runHealthcheck is for container HEALTHCHECK: GET the URL, exit 0 on 2xx.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cf configFlags
	url := ""
	timeout := 3 * time.Second
	if err := parseFlags("healthcheck", args, stderr, func(fs *flag.FlagSet) {
		cf.register(fs)
		fs.StringVar(&url, "url", "", "URL to probe (default http://127.0.0.1:{server.port}/health)")
		fs.DurationVar(&timeout, "timeout", timeout, "give up after this long")
	}); err != nil {
		return err
	}
	if url == "" {
		cfg, err := loadConfig(cf.path, getenv, cf.overrides)
		if err != nil {
			return err
		}
		scheme := "http"
		if cfg.Server.TLSCertFile != "" {
			scheme = "https"
		}
		url = fmt.Sprintf("%s://127.0.0.1:%d/health", scheme, cfg.Server.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := healthcheckClient().Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "unhealthy:", err)
		return errSilentExit
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "unhealthy: %s %s\n", resp.Status, strings.TrimSpace(string(body)))
		return errSilentExit
	}
	fmt.Fprintf(stdout, "healthy: %s\n", strings.TrimSpace(string(body)))
	return nil
}
