package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestMetricsGolden pins the name, help and type of every agent_* family
// served on /metrics (node_exporter style): a rename or a type change is a
// deliberate edit of testdata/metrics.golden (go test -run MetricsGolden
// -update), never an accident. Values are not pinned.
func TestMetricsGolden(t *testing.T) {
	cfg, err := loadConfig("", func(string) string { return "" }, nil)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	a, err := newApp(cfg, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	defer a.audit.Close()
	defer a.tracer.Shutdown(context.Background())
	a.health.SetReady()
	api := httptest.NewServer(a.apiHandler())
	defer api.Close()
	// A turn that calls a tool fills the request, LLM, tool, audit and
	// session families; the others (breaker transitions, bulkhead
	// rejections, incidents, ...) must be there from the start, as zeros.
	resp, err := http.Post(api.URL+"/chat", "application/json",
		strings.NewReader(`{"user_id":"u1","session_id":"s1","message":"what is 2+3?"}`))
	if err != nil {
		t.Fatalf("POST /chat: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /chat: %d", resp.StatusCode)
	}

	rec := httptest.NewRecorder()
	a.metrics.handler(slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	var got []string
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "# HELP agent_") || strings.HasPrefix(line, "# TYPE agent_") {
			got = append(got, line)
		}
	}
	gotText := strings.Join(got, "")
	for _, series := range []string{
		`agent_circuit_breaker_transitions_total{breaker="mock",from="closed",to="open"} 0`,
		`agent_circuit_breaker_transitions_total{breaker="mock",from="half_open",to="closed"} 0`,
		`agent_bulkhead_rejected_total{bulkhead="llm",reason="queue_full"} 0`,
		`agent_bulkhead_rejected_total{bulkhead="tools",reason="queue_timeout"} 0`,
		`agent_security_incidents_total{level="high",type="prompt_injection"} 0`,
	} {
		if !strings.Contains(rec.Body.String(), series+"\n") {
			t.Errorf("/metrics lacks the zero series %s before any event", series)
		}
	}

	// Every family the Metrics struct declares must be in the output, or
	// the golden file would silently miss it.
	served := map[string]bool{}
	for _, l := range got {
		served[strings.Fields(l)[2]] = true
	}
	declared := metricsDeclared(a.metrics)
	if !slices.Contains(declared, "agent_spans_dropped_total") || len(declared) < 15 {
		t.Fatalf("found only %v in the Metrics struct", declared)
	}
	for _, name := range declared {
		if !served[name] {
			t.Errorf("family %s is registered but not served; give it a series in this test", name)
		}
	}

	path := filepath.Join("testdata", "metrics.golden")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(gotText), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if gotText != string(want) {
		t.Errorf("/metrics families differ from %s (run go test -run MetricsGolden -update if intended):\n%s",
			path, metricsDiff(string(want), gotText))
	}
}

// metricsDeclared lists the family names of every collector field of m.
func metricsDeclared(m *Metrics) []string {
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Field(i) // unexported: read through its address
		c, ok := reflect.NewAt(f.Type(), f.Addr().UnsafePointer()).Elem().Interface().(prometheus.Collector)
		if !ok || c == nil {
			continue
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if sm := re.FindStringSubmatch(d.String()); sm != nil && strings.HasPrefix(sm[1], "agent_") {
				names = append(names, sm[1])
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// metricsDiff lists the lines only in want (-) and only in got (+).
func metricsDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
