//go:build jaeger

package e2e

// A round trip through a real Jaeger (v1.76.0, the OpenTelemetry-collector
// based "jaeger" binary): the agent exports to its OTLP/HTTP receiver and
// the trace comes back from its query API with the promised tree.
//
//	go test -tags jaeger -run Jaeger -timeout 30m ./...
//
// The first run builds Jaeger from source (several minutes) into
// .cache/bin/jaeger-v1.76.0; later runs reuse it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const jaegerVersion = "v1.76.0"

// jaegerBinary returns the cached Jaeger binary, building it first if
// needed: `go get -tool` in a scratch module under .cache/jaeger-build
// (its own go.mod, so the e2e module's dependencies stay untouched).
func jaegerBinary(t *testing.T) string {
	t.Helper()
	cache, err := filepath.Abs(".cache")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "bin", "jaeger-"+jaegerVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	dir := filepath.Join(cache, "jaeger-build")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module jaegerbuild\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".tmp"
	for _, args := range [][]string{
		{"get", "-tool", "github.com/jaegertracing/jaeger/cmd/jaeger@" + jaegerVersion},
		{"build", "-o", tmp, "github.com/jaegertracing/jaeger/cmd/jaeger"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
		t.Logf("building Jaeger %s: go %s", jaegerVersion, strings.Join(args, " "))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// jaegerFreePort reserves a loopback port and releases it for Jaeger.
func jaegerFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// jaegerConfig is an all-in-one configuration with every listener on
// 127.0.0.1: the OTLP/HTTP receiver, the query HTTP API/UI and its gRPC
// port, in-memory storage; the collector's own metrics endpoint (:8888 by
// default) is switched off.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 1000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

type jaegerLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jaegerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *jaegerLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// jaegerStart runs Jaeger and returns its OTLP base URL and query URL.
func jaegerStart(t *testing.T) (otlpURL, queryURL string) {
	t.Helper()
	bin := jaegerBinary(t)
	queryPort, grpcPort, otlpPort := jaegerFreePort(t), jaegerFreePort(t), jaegerFreePort(t)
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, queryPort, grpcPort, otlpPort), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", "file:"+cfg)
	cmd.Env = cleanEnv(nil)
	logs := &jaegerLog{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start jaeger: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("jaeger output:\n%s", logs.String())
		}
	})
	otlpURL = fmt.Sprintf("http://127.0.0.1:%d", otlpPort)
	queryURL = fmt.Sprintf("http://127.0.0.1:%d", queryPort)
	ready := pollUntil(t.Context(), 60*time.Second, func() bool {
		select {
		case <-done:
			return false
		default:
		}
		resp, err := httpClient.Get(queryURL + "/api/services")
		if err != nil {
			return false
		}
		resp.Body.Close()
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", otlpPort), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return resp.StatusCode == 200
	})
	if !ready {
		t.Fatalf("jaeger did not become ready within 60 s:\n%s", logs.String())
	}
	return otlpURL, queryURL
}

// jaegerTrace is the part of Jaeger's /api/traces/{id} answer we check.
type jaegerTrace struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			ProcessID     string `json:"processID"`
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			Tags []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

func TestJaegerRoundTrip(t *testing.T) {
	otlpURL, queryURL := jaegerStart(t)
	p := startAgent(t, nil, "-set", "llm.provider=mock", "-set", "observability.opentelemetry_endpoint="+otlpURL)
	const traceID = "5b8efff798038103d269b633813fc60c"
	hdr := http.Header{"Traceparent": {"00-" + traceID + "-eee19b7ec3c1b174-01"}}
	status, body := doJSON(t, "POST", p.API+"/chat", hdr,
		map[string]string{"user_id": "jaeger-user", "session_id": "jaeger-s1", "message": "what is 2+3?"})
	if status != 200 || !strings.Contains(string(body), `"calculator"`) {
		t.Fatalf("POST /chat: %d %s; want 200 with a calculator call", status, body)
	}
	// Shutdown flushes the spans; the query API may still take a moment.
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(); code != 0 || err != nil {
		t.Fatalf("agent exit %d, %v", code, err)
	}

	var tr jaegerTrace
	var last string
	found := pollUntil(t.Context(), 60*time.Second, func() bool {
		resp, err := httpClient.Get(queryURL + "/api/traces/" + traceID)
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		last = fmt.Sprintf("%d %s", resp.StatusCode, buf.String())
		tr = jaegerTrace{}
		if resp.StatusCode != 200 || json.Unmarshal(buf.Bytes(), &tr) != nil || len(tr.Data) != 1 {
			return false
		}
		return len(tr.Data[0].Spans) >= 5
	})
	if !found {
		t.Fatalf("trace %s not complete in Jaeger within 60 s; last answer: %s", traceID, last)
	}
	d := tr.Data[0]
	byID := map[string]string{}
	for _, s := range d.Spans {
		byID[s.SpanID] = s.OperationName
	}
	count := map[string]int{}
	for _, s := range d.Spans {
		count[s.OperationName]++
		if svc := d.Processes[s.ProcessID].ServiceName; svc != "production-agent" {
			t.Errorf("span %s of service %q; want production-agent", s.OperationName, svc)
		}
		tags := map[string]any{}
		for _, tg := range s.Tags {
			tags[tg.Key] = tg.Value
		}
		parent := ""
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				parent = byID[r.SpanID]
				if parent == "" {
					parent = r.SpanID
				}
			}
		}
		want := map[string]struct{ parent, kind string }{
			"POST /chat":   {"eee19b7ec3c1b174", "server"},
			"agent.turn":   {"POST /chat", "internal"},
			"llm.call":     {"agent.turn", "client"},
			"tool.execute": {"agent.turn", "internal"},
		}[s.OperationName]
		if parent != want.parent || tags["span.kind"] != want.kind {
			t.Errorf("%s: parent %q, span.kind %v; want %q, %s", s.OperationName, parent, tags["span.kind"], want.parent, want.kind)
		}
		switch s.OperationName {
		case "llm.call":
			if tags["gen_ai.system"] != "mock" || tags["gen_ai.operation.name"] != "chat" || tags["gen_ai.usage.input_tokens"] == nil {
				t.Errorf("llm.call tags %v", tags)
			}
		case "tool.execute":
			if tags["gen_ai.tool.name"] != "calculator" {
				t.Errorf("tool.execute tags %v", tags)
			}
		}
	}
	if count["POST /chat"] != 1 || count["agent.turn"] != 1 || count["llm.call"] != 2 || count["tool.execute"] != 1 {
		t.Errorf("spans in Jaeger %v; want POST /chat, agent.turn, 2 llm.call, tool.execute", count)
	}
}
