package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// otlpTestCollector is an OTLP/HTTP collector that keeps every request
// body it is sent and answers with the status its answer function picks.
type otlpTestCollector struct {
	mu     sync.Mutex
	bodies [][]byte
	paths  []string
	types  []string
	answer func(n int) (int, string) // n counts requests from 1
}

func (c *otlpTestCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.bodies = append(c.bodies, body)
	c.paths = append(c.paths, r.Method+" "+r.URL.Path)
	c.types = append(c.types, r.Header.Get("Content-Type"))
	n := len(c.bodies)
	answer := c.answer
	c.mu.Unlock()
	status, text := 200, "{}"
	if answer != nil {
		status, text = answer(n)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, text)
}

// spans decodes every received batch into its spans.
func (c *otlpTestCollector) spans(t *testing.T) []otlpTestSpan {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []otlpTestSpan
	for _, b := range c.bodies {
		out = append(out, otlpTestDecode(t, b)...)
	}
	return out
}

func (c *otlpTestCollector) requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bodies)
}

// otlpTestSpan is the test's own reading of one exported span.
type otlpTestSpan struct {
	TraceID, SpanID, ParentSpanID, Name string
	Kind                                int
	Flags                               uint32
	Start, End                          string
	Attrs                               map[string]json.RawMessage
	Status                              struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
}

func otlpTestDecode(t *testing.T, body []byte) []otlpTestSpan {
	t.Helper()
	var req struct {
		ResourceSpans []struct {
			Resource struct {
				Attributes []struct {
					Key   string
					Value json.RawMessage
				}
			}
			ScopeSpans []struct {
				Scope struct{ Name, Version string }
				Spans []struct {
					TraceID           string `json:"traceId"`
					SpanID            string `json:"spanId"`
					ParentSpanID      string `json:"parentSpanId"`
					Name              string
					Kind              int
					Flags             uint32
					StartTimeUnixNano string
					EndTimeUnixNano   string
					Attributes        []struct {
						Key   string
						Value json.RawMessage
					}
					Status struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					}
				}
			}
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&req); err != nil {
		t.Fatalf("export body is not the expected JSON (times and ids must be strings): %v\n%s", err, body)
	}
	var out []otlpTestSpan
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				o := otlpTestSpan{TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID, Name: s.Name,
					Kind: s.Kind, Flags: s.Flags, Start: s.StartTimeUnixNano, End: s.EndTimeUnixNano,
					Attrs: map[string]json.RawMessage{}, Status: s.Status}
				for _, a := range s.Attributes {
					o.Attrs[a.Key] = a.Value
				}
				out = append(out, o)
			}
		}
	}
	return out
}

// otlpTestSpans makes n ended, sampled root-level spans on tr.
func otlpTestSpans(tr *Tracer, n int) {
	for range n {
		_, s := tr.StartServer(context.Background(), tr.NewTraceContext("", ""), "GET /x")
		s.End()
	}
}

func TestOTLPExportShape(t *testing.T) {
	col := &otlpTestCollector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	start := time.Unix(1_700_000_000, 123456789)
	clock := start
	tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 1, ServiceName: "production-agent", ServiceVersion: "1.2.3",
		Endpoint: srv.URL + "/", Now: func() time.Time { return clock }})
	defer tr.Shutdown(context.Background())

	tc := tr.NewTraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v")
	ctx, server := tr.StartServer(context.Background(), tc, "POST")
	ctx, turn := startSpan(ctx, "agent.turn", SpanKindInternal)
	_, llm := startSpan(ctx, "llm.call", SpanKindClient)
	llm.SetAttr("gen_ai.system", "openai")
	llm.SetAttr("gen_ai.usage.input_tokens", 11)
	llm.SetAttr("gen_ai.request.temperature", 0.7)
	llm.SetAttr("gen_ai.response.finish_reasons", []string{"end_turn"})
	llm.SetAttr("cached", false)
	clock = start.Add(1500 * time.Millisecond)
	llm.SetError(errors.New("openai: status 503"), "503")
	llm.End()
	turn.End()
	server.SetName("POST /chat")
	server.End()
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}

	if col.requests() != 1 {
		t.Fatalf("%d export requests; want 1 batch", col.requests())
	}
	if col.paths[0] != "POST /v1/traces" || col.types[0] != "application/json" {
		t.Errorf("request %s with Content-Type %q; want POST /v1/traces, application/json", col.paths[0], col.types[0])
	}
	raw := string(col.bodies[0])
	for _, want := range []string{
		`"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"production-agent"}},{"key":"service.version","value":{"stringValue":"1.2.3"}}`,
		`"scope":{"name":"production-agent","version":"1.2.3"}`,
		`"startTimeUnixNano":"1700000000123456789"`,
		`"endTimeUnixNano":"1700000001623456789"`,
		`{"key":"gen_ai.usage.input_tokens","value":{"intValue":"11"}}`,
		`{"key":"gen_ai.request.temperature","value":{"doubleValue":0.7}}`,
		`{"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"end_turn"}]}}}`,
		`{"key":"cached","value":{"boolValue":false}}`,
		`"status":{"message":"openai: status 503","code":2}`,
		`"traceState":"k=v"`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("body lacks %s\n%s", want, raw)
		}
	}
	spans := col.spans(t)
	if len(spans) != 3 {
		t.Fatalf("%d spans; want 3", len(spans))
	}
	hex32, hex16 := regexp.MustCompile(`^[0-9a-f]{32}$`), regexp.MustCompile(`^[0-9a-f]{16}$`)
	byName := map[string]otlpTestSpan{}
	for _, s := range spans {
		if !hex32.MatchString(s.TraceID) || !hex16.MatchString(s.SpanID) || (s.ParentSpanID != "" && !hex16.MatchString(s.ParentSpanID)) {
			t.Errorf("span %s ids %q %q %q; want lower-case hex of 16 and 8 bytes", s.Name, s.TraceID, s.SpanID, s.ParentSpanID)
		}
		byName[s.Name] = s
	}
	tests := []struct {
		name, parent string
		kind         int
		flags        uint32
	}{
		{"POST /chat", "00f067aa0ba902b7", 2, 0x301},
		{"agent.turn", byName["POST /chat"].SpanID, 1, 0x101},
		{"llm.call", byName["agent.turn"].SpanID, 3, 0x101},
	}
	for _, tt := range tests {
		s, ok := byName[tt.name]
		if !ok {
			t.Errorf("no span %q in %v", tt.name, spans)
			continue
		}
		if s.ParentSpanID != tt.parent || s.Kind != tt.kind || s.Flags != tt.flags || s.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("%s: parent %s kind %d flags %#x trace %s; want %s, %d, %#x, the caller's trace",
				tt.name, s.ParentSpanID, s.Kind, s.Flags, s.TraceID, tt.parent, tt.kind, tt.flags)
		}
	}
	if byName["POST /chat"].SpanID != tc.SpanIDString() {
		t.Errorf("server span id %s; want the request's %s (the traceparent response header names it)", byName["POST /chat"].SpanID, tc.SpanIDString())
	}
}

func TestOTLPBatchesAndFlushOnShutdown(t *testing.T) {
	col := &otlpTestCollector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	var drops otlpTestDrops
	tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 1, Endpoint: srv.URL, BatchSize: 4, QueueSize: 100,
		FlushInterval: time.Hour, OnDrop: drops.add})
	otlpTestSpans(tr, 10)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := len(col.spans(t)); got != 10 {
		t.Errorf("%d spans exported by Shutdown; want 10", got)
	}
	for i, b := range col.bodies {
		if n := len(otlpTestDecode(t, b)); n > 4 {
			t.Errorf("batch %d holds %d spans; want at most 4", i, n)
		}
	}
	if col.requests() < 3 {
		t.Errorf("%d requests for 10 spans in batches of 4; want at least 3", col.requests())
	}
	// After Shutdown: spans are dropped and counted, Flush reports it.
	otlpTestSpans(tr, 2)
	if got := drops.get("queue_full"); got != 2 {
		t.Errorf("spans after Shutdown: %d counted as dropped; want 2", got)
	}
	if err := tr.Flush(context.Background()); !errors.Is(err, errExporterStopped) {
		t.Errorf("Flush after Shutdown = %v; want errExporterStopped", err)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

type otlpTestDrops struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *otlpTestDrops) add(reason string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[reason] += n
}

func (d *otlpTestDrops) get(reason string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[reason]
}

// otlpTestTransport answers export requests in memory (no sockets, so it
// runs inside a synctest bubble).
type otlpTestTransport func(*http.Request) (*http.Response, error)

func (f otlpTestTransport) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func otlpTestAnswer(status int) *http.Response {
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}}
}

func TestOTLPQueueFullDropsWithoutBlocking(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	exported := 0
	client := &http.Client{Transport: otlpTestTransport(func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		exported += strings.Count(string(b), `"spanId"`)
		first := exported == 1
		mu.Unlock()
		if first {
			entered <- struct{}{}
			<-release
		}
		return otlpTestAnswer(200), nil
	})}
	var drops otlpTestDrops
	tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 1, Endpoint: "http://collector.invalid", Client: client,
		BatchSize: 1, QueueSize: 2, FlushInterval: time.Hour, OnDrop: drops.add})
	otlpTestSpans(tr, 1)
	<-entered // the exporter is stuck in the first POST
	otlpTestSpans(tr, 5)
	if got := drops.get("queue_full"); got != 3 {
		t.Errorf("%d dropped with a queue of 2 and a stuck exporter; want 3", got)
	}
	close(release)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if exported != 3 {
		t.Errorf("%d spans exported; want 3 (1 in flight + 2 queued)", exported)
	}
}

func TestOTLPExportFailures(t *testing.T) {
	tests := []struct {
		name      string
		answers   []int // status per attempt; 0 is a transport error
		attempts  int
		dropped   int
		delivered bool
	}{
		{"ok", []int{200}, 1, 0, true},
		{"503 then ok: retried once", []int{503, 200}, 2, 0, true},
		{"transport error then ok", []int{0, 200}, 2, 0, true},
		{"429 twice: dropped", []int{429, 429}, 2, 3, false},
		{"400: not retried", []int{400}, 1, 3, false},
		{"partial success", []int{-1}, 1, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				attempts := 0
				var attemptAt []time.Time
				client := &http.Client{Transport: otlpTestTransport(func(r *http.Request) (*http.Response, error) {
					io.Copy(io.Discard, r.Body)
					status := tt.answers[min(attempts, len(tt.answers)-1)]
					attempts++
					attemptAt = append(attemptAt, time.Now())
					switch status {
					case 0:
						return nil, errors.New("connection refused")
					case -1:
						return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(
							`{"partialSuccess":{"rejectedSpans":"2","errorMessage":"too old"}}`))}, nil
					}
					return otlpTestAnswer(status), nil
				})}
				var drops otlpTestDrops
				tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 1, Endpoint: "http://collector.invalid",
					Client: client, OnDrop: drops.add})
				otlpTestSpans(tr, 3)
				// The batch goes out on the 5 s interval, in fake time.
				<-time.After(otlpFlushInterval + otlpRetryDelay)
				synctest.Wait()
				if attempts != tt.attempts {
					t.Errorf("%d attempts; want %d", attempts, tt.attempts)
				}
				if len(attemptAt) == 2 {
					if d := attemptAt[1].Sub(attemptAt[0]); d != otlpRetryDelay {
						t.Errorf("retry after %v; want %v", d, otlpRetryDelay)
					}
				}
				if got := drops.get("export_failed"); got != tt.dropped {
					t.Errorf("%d counted as export_failed; want %d", got, tt.dropped)
				}
				if err := tr.Shutdown(context.Background()); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			})
		})
	}
}

func TestOTLPShutdownGivesUpAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := &http.Client{Transport: otlpTestTransport(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done() // a collector that never answers
			return nil, r.Context().Err()
		})}
		var drops otlpTestDrops
		tr := newTracer(TracerSettings{Enabled: true, SampleRatio: 1, Endpoint: "http://collector.invalid",
			Client: client, OnDrop: drops.add})
		otlpTestSpans(tr, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		err := tr.Shutdown(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v; want the deadline", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("Shutdown took %v; want the 2 s deadline", d)
		}
		if got := drops.get("export_failed"); got != 3 {
			t.Errorf("%d counted as export_failed; want 3", got)
		}
	})
}

func TestOTLPValueEncoding(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"x", `{"stringValue":"x"}`},
		{"", `{"stringValue":""}`},
		{int64(-7), `{"intValue":"-7"}`},
		{int64(0), `{"intValue":"0"}`},
		{1.5, `{"doubleValue":1.5}`},
		{true, `{"boolValue":true}`},
		{[]string{}, `{"arrayValue":{"values":[]}}`},
		{func() float64 { z := 0.0; return 1 / z }(), `{"stringValue":"+Inf"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(otlpValue(tt.in))
		if err != nil || string(b) != tt.want {
			t.Errorf("otlpValue(%v) = %s, %v; want %s", tt.in, b, err, tt.want)
		}
	}
}
