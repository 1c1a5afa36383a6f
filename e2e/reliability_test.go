package e2e

// The reliability suite (issue 11), black-box against the built binary:
// upstream faults of both wire formats and their documented answers
// (DESIGN §4), retries, the circuit breaker opening and recovering in real
// time, overload at ten times the sustainable rate, graceful shutdown under
// load and a SIGKILL under load with the file audit backend. After each
// scenario the process must hold no extra goroutines (go_goroutines on
// the admin listener) and its memory must come back near its baseline
// (process_resident_memory_bytes). Bad input is in badinput_test.go, the
// fake provider in faults_test.go. Run: go test -count=1 -run Rel ./...

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// relSlackGoroutines is how many goroutines above the idle baseline a
	// settled process may hold (a scrape in progress, a timer firing).
	relSlackGoroutines = 8
	// relSlackRSS is how far above its baseline the resident set may stay
	// after a scenario: Go returns freed memory to the OS lazily (the
	// scavenger), so this is generous; a real leak of per-request state
	// under these loads grows without bound instead.
	relSlackRSS = 128 << 20
	// relSettleLimit bounds the wait for goroutines and memory to settle.
	relSettleLimit = 30 * time.Second
)

// relKinds are the wire formats every fault is tried with.
var relKinds = []string{"anthropic", "openai"}

// relNewClient returns a client without keep-alives, so that after a
// scenario the agent holds no connection (and goroutine) for the test.
func relNewClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

// relStart runs the agent against f. set holds section.key=value
// overrides applied over the suite's defaults (no retries, 2 s per LLM
// attempt, 15 s per request).
func relStart(t *testing.T, f *relFake, set ...string) *agentProc {
	t.Helper()
	env := map[string]string{"ANTHROPIC_API_KEY": "rel-test-key"}
	model := "claude-sonnet-4-5"
	if f.kind == "openai" {
		env = map[string]string{"OPENAI_API_KEY": "rel-test-key"}
		model = "gpt-4o-mini"
	}
	kv := map[string]string{
		"llm.provider": f.kind, "llm.base_url": f.BaseURL(), "llm.model": model,
		"llm.max_retries": "0", "llm.timeout_seconds": "2", "server.request_timeout_seconds": "15",
	}
	for _, s := range set {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			t.Fatalf("relStart: %q is not key=value", s)
		}
		kv[k] = v
	}
	var args []string
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		args = append(args, "-set", k+"="+kv[k])
	}
	return startAgent(t, env, args...)
}

// relEvent is one Server-Sent Event of a /chat stream.
type relEvent struct{ Name, Data string }

// relReply is the outcome of one /chat request.
type relReply struct {
	Status int
	Header http.Header
	Body   []byte
	Events []relEvent // non-nil for a text/event-stream answer
	Err    error      // transport error (no answer)
	Dur    time.Duration
}

// ErrType is the error.type of a JSON error answer ("" otherwise).
func (r relReply) ErrType() string {
	var e struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(r.Body, &e) != nil {
		return ""
	}
	return e.Error.Type
}

// TraceID is the trace_id of a 200 answer (JSON or the done event).
func (r relReply) TraceID() string {
	data := r.Body
	if r.Events != nil {
		data = nil
		for _, ev := range r.Events {
			if ev.Name == "done" {
				data = []byte(ev.Data)
			}
		}
	}
	var v struct {
		TraceID string `json:"trace_id"`
	}
	json.Unmarshal(data, &v)
	return v.TraceID
}

// Last is the last event of a stream (zero if none).
func (r relReply) Last() relEvent {
	if len(r.Events) == 0 {
		return relEvent{}
	}
	return r.Events[len(r.Events)-1]
}

// Names lists the event names of a stream.
func (r relReply) Names() []string {
	var n []string
	for _, ev := range r.Events {
		n = append(n, ev.Name)
	}
	return n
}

func (r relReply) String() string {
	if r.Err != nil {
		return "transport error: " + r.Err.Error()
	}
	if r.Events != nil {
		return fmt.Sprintf("%d stream %v last %s %.300s", r.Status, r.Names(), r.Last().Name, r.Last().Data)
	}
	return fmt.Sprintf("%d %.300s", r.Status, bytes.TrimSpace(r.Body))
}

// relChat sends one /chat request and reads the whole answer.
func relChat(ctx context.Context, c *http.Client, api, user, session, msg string, stream bool) relReply {
	body, _ := json.Marshal(map[string]any{"user_id": user, "session_id": session, "message": msg, "stream": stream})
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/chat", bytes.NewReader(body))
	if err != nil {
		return relReply{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return relReply{Err: err, Dur: time.Since(start)}
	}
	defer resp.Body.Close()
	r := relReply{Status: resp.StatusCode, Header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		r.Events = []relEvent{}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var cur relEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.Name != "" || cur.Data != "" {
					r.Events = append(r.Events, cur)
				}
				cur = relEvent{}
			case strings.HasPrefix(line, "event:"):
				cur.Name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				cur.Data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
			}
		}
		r.Err = sc.Err()
	} else {
		r.Body, r.Err = io.ReadAll(resp.Body)
	}
	r.Dur = time.Since(start)
	return r
}

// relMetricLine matches one sample line of the text exposition.
var relMetricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)`)

// relScrape reads the admin listener's /metrics into "name{labels}" →
// value (labels as the server prints them, sorted by name).
func relScrape(ctx context.Context, admin string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := relNewClient(10 * time.Second).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := relMetricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if v, err := strconv.ParseFloat(m[2], 64); err == nil {
			out[m[1]] = v
		}
	}
	return out, sc.Err()
}

// relBase is a process's idle footprint.
type relBase struct{ goroutines, rss float64 }

// relBaseline waits for two consecutive scrapes to agree on go_goroutines
// (the process is idle) and returns the footprint.
func relBaseline(t *testing.T, p *agentProc) relBase {
	t.Helper()
	var b relBase
	prev := -1.0
	ok := pollUntil(t.Context(), 15*time.Second, func() bool {
		m, err := relScrape(t.Context(), p.Admin)
		if err != nil {
			return false
		}
		b = relBase{m["go_goroutines"], m["process_resident_memory_bytes"]}
		same := b.goroutines == prev
		prev = b.goroutines
		return same && b.goroutines > 0 && b.rss > 0
	})
	if !ok {
		t.Fatalf("no stable go_goroutines baseline within 15s (last %v)", b)
	}
	t.Logf("baseline: %v goroutines, RSS %.1f MiB", b.goroutines, b.rss/(1<<20))
	return b
}

// relSettled asserts that the process comes back to its baseline
// footprint after scenario: no leaked goroutines, memory within slack.
func relSettled(t *testing.T, p *agentProc, base relBase, scenario string) {
	t.Helper()
	var cur relBase
	ok := pollUntil(t.Context(), relSettleLimit, func() bool {
		m, err := relScrape(t.Context(), p.Admin)
		if err != nil {
			return false
		}
		cur = relBase{m["go_goroutines"], m["process_resident_memory_bytes"]}
		return cur.goroutines <= base.goroutines+relSlackGoroutines && cur.rss <= base.rss+relSlackRSS
	})
	if !ok {
		t.Errorf("after %s: go_goroutines %v (baseline %v, slack %d), RSS %.1f MiB (baseline %.1f MiB, slack %d MiB) not settled within %v",
			scenario, cur.goroutines, base.goroutines, relSlackGoroutines, cur.rss/(1<<20), base.rss/(1<<20), relSlackRSS>>20, relSettleLimit)
	}
}

// relNoPanic asserts that no captured log line mentions a panic.
func relNoPanic(t *testing.T, p *agentProc) {
	t.Helper()
	for _, l := range p.Logs() {
		if strings.Contains(strings.ToLower(l), "panic") {
			t.Errorf("log line mentions a panic: %.500s", l)
		}
	}
}

// relWantError asserts a JSON error answer of status and type.
func relWantError(t *testing.T, what string, r relReply, status int, typ string) {
	t.Helper()
	if r.Err != nil || r.Status != status || r.Events != nil || r.ErrType() != typ {
		t.Errorf("%s: got %s; want %d JSON error %q", what, r, status, typ)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q; want application/json", what, ct)
	}
	if status == 503 || status == 429 {
		if ra := r.Header.Get("Retry-After"); !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(ra) {
			t.Errorf("%s: Retry-After %q; want whole seconds >= 1", what, ra)
		}
	}
}

// relWantOK asserts a 200 answer: JSON with the fake's text, or a stream
// ending in done and never in error.
func relWantOK(t *testing.T, what string, r relReply, stream bool) {
	t.Helper()
	if r.Err != nil || r.Status != http.StatusOK {
		t.Errorf("%s: got %s; want 200", what, r)
		return
	}
	if !stream {
		var v struct{ Message string }
		if json.Unmarshal(r.Body, &v) != nil || v.Message != relText {
			t.Errorf("%s: body %.300s; want message %q", what, r.Body, relText)
		}
		return
	}
	if r.Events == nil || r.Last().Name != "done" || slices.Contains(r.Names(), "error") {
		t.Errorf("%s: got %s; want a stream ending in done", what, r)
		return
	}
	var v struct{ Message string }
	if json.Unmarshal([]byte(r.Last().Data), &v) != nil || v.Message != relStreamText {
		t.Errorf("%s: done event %.300s; want message %q", what, r.Last().Data, relStreamText)
	}
}

// relWantStreamError asserts a stream that ended with an error event of
// type typ and never with done; midAnswer: text was delivered before it.
func relWantStreamError(t *testing.T, what string, r relReply, typ string, midAnswer bool) {
	t.Helper()
	if r.Err != nil || r.Status != http.StatusOK || r.Events == nil {
		t.Errorf("%s: got %s; want a 200 event stream", what, r)
		return
	}
	names := r.Names()
	if slices.Contains(names, "done") {
		t.Errorf("%s: stream %v has a done event; a cut stream must never end in done", what, names)
	}
	last := r.Last()
	if got, trace, ok := errorObject([]byte(last.Data)); last.Name != "error" || !ok || got != typ || trace == "" {
		t.Errorf("%s: stream %v ends with %s %s; want event: error of type %q with a trace_id", what, names, last.Name, last.Data, typ)
	}
	if midAnswer && !slices.Contains(names, "delta") {
		t.Errorf("%s: stream %v has no delta before the cut; the fault should strike mid-answer", what, names)
	}
}

// relFaultCase is one fault and the answer DESIGN §4 documents for it.
type relFaultCase struct {
	name, fault string
	stream      bool
	status      int    // 200 for a normal answer or a stream that started
	typ         string // error.type of the JSON answer or of the stream's error event
	sseError    bool   // a 200 stream that must end with event: error
	midAnswer   bool   // ... after some delta events
	minDur      time.Duration
}

// relFaultCases: llm.timeout_seconds is 2, retries are off.
var relFaultCases = []relFaultCase{
	{name: "500", fault: "500", status: 502, typ: "upstream_error"},
	{name: "502", fault: "502", status: 502, typ: "upstream_error"},
	{name: "503", fault: "503", status: 502, typ: "upstream_error"},
	{name: "529 overloaded", fault: "529", status: 502, typ: "upstream_error"},
	{name: "429 with retry-after", fault: "429ra", status: 502, typ: "upstream_error"},
	{name: "429 without retry-after", fault: "429", status: 502, typ: "upstream_error"},
	{name: "400 non-retryable", fault: "400", status: 502, typ: "upstream_error"},
	{name: "hang", fault: "hang", status: 504, typ: "upstream_timeout", minDur: 1900 * time.Millisecond},
	{name: "connection reset", fault: "reset", status: 502, typ: "upstream_error"},
	{name: "garbage body", fault: "garbage", status: 502, typ: "upstream_error"},
	{name: "wrong content type", fault: "ctype", status: 502, typ: "upstream_error"},
	{name: "body cut in half", fault: "half", status: 502, typ: "upstream_error"},
	{name: "empty body", fault: "empty", status: 502, typ: "upstream_error"},
	{name: "9 MiB body", fault: "big", status: 502, typ: "upstream_error"},
	{name: "slow body within the timeout", fault: "slowok", status: 200},
	{name: "slow body past the timeout", fault: "slowlate", status: 504, typ: "upstream_timeout", minDur: 1900 * time.Millisecond},
	{name: "stream ok", fault: "ok", stream: true, status: 200},
	{name: "stream 500 before the first byte", fault: "500", stream: true, status: 200, typ: "upstream_error", sseError: true},
	{name: "stream 529 before the first byte", fault: "529", stream: true, status: 200, typ: "upstream_error", sseError: true},
	{name: "stream hang before the first byte", fault: "hang", stream: true, status: 200, typ: "upstream_timeout", sseError: true, minDur: 1900 * time.Millisecond},
	{name: "stream reset", fault: "reset", stream: true, status: 200, typ: "upstream_error", sseError: true},
	{name: "stream garbage", fault: "garbage", stream: true, status: 200, typ: "upstream_error", sseError: true},
	{name: "stream wrong content type", fault: "ctype", stream: true, status: 200, typ: "upstream_error", sseError: true},
	{name: "stream cut mid-answer", fault: "cut", stream: true, status: 200, typ: "upstream_error", sseError: true, midAnswer: true},
	{name: "stream ends without end marker", fault: "cutclean", stream: true, status: 200, typ: "upstream_error", sseError: true, midAnswer: true},
	{name: "stream error event mid-answer", fault: "streamerr", stream: true, status: 200, typ: "upstream_error", sseError: true, midAnswer: true},
	{name: "stream hangs mid-answer", fault: "streamhang", stream: true, status: 200, typ: "upstream_timeout", sseError: true, midAnswer: true, minDur: 1900 * time.Millisecond},
}

// TestRelUpstreamFaults maps every upstream fault, in both wire formats,
// to its documented answer, and checks goroutines and memory after each.
func TestRelUpstreamFaults(t *testing.T) {
	for _, kind := range relKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f := relNewFake(t, kind)
			// The breaker is tested on its own; here it must not open.
			p := relStart(t, f, "resilience.circuit_breaker_failure_threshold=1000")
			c := relNewClient(60 * time.Second)
			for i, stream := range []bool{false, true, false} {
				r := relChat(t.Context(), c, p.API, "rel-warm", fmt.Sprintf("rel-warm-%s-%d", kind, i), "hello rel-fault:ok", stream)
				relWantOK(t, "warm-up", r, stream)
			}
			base := relBaseline(t, p)
			for i, tc := range relFaultCases {
				t.Run(tc.name, func(t *testing.T) {
					before := f.total.Load()
					user := fmt.Sprintf("rel-fault-%d", i)
					r := relChat(t.Context(), c, p.API, user, user+"-s", "please answer rel-fault:"+tc.fault, tc.stream)
					switch {
					case tc.sseError:
						relWantStreamError(t, tc.name, r, tc.typ, tc.midAnswer)
					case tc.status == http.StatusOK:
						relWantOK(t, tc.name, r, tc.stream)
					default:
						relWantError(t, tc.name, r, tc.status, tc.typ)
					}
					if r.Dur < tc.minDur {
						t.Errorf("%s: answered after %v; the configured timeout is 2s", tc.name, r.Dur)
					}
					if r.Dur > 10*time.Second {
						t.Errorf("%s: answered after %v; llm.timeout_seconds is 2", tc.name, r.Dur)
					}
					if n := f.total.Load() - before; n != 1 {
						t.Errorf("%s: the fake saw %d requests; want 1 (retries are off)", tc.name, n)
					}
					relSettled(t, p, base, tc.name)
				})
			}
			for _, stream := range []bool{false, true} {
				t.Run(fmt.Sprintf("client disconnects (stream %v)", stream), func(t *testing.T) {
					relClientGone(t, p, f, c, base, stream)
				})
			}
			relNoPanic(t, p)
		})
	}
}

// relClientGone: a client that goes away while the upstream is still
// thinking cancels the upstream call (DESIGN §4), which the agent logs as
// outcome "cancelled" (not our timeout), and leaves nothing behind.
func relClientGone(t *testing.T, p *agentProc, f *relFake, c *http.Client, base relBase, stream bool) {
	t.Helper()
	cancelled := func() int {
		n := 0
		for _, l := range p.Logs() {
			if strings.Contains(l, `"msg":"llm call failed"`) && strings.Contains(l, `"outcome":"cancelled"`) {
				n++
			}
		}
		return n
	}
	before, inflight := cancelled(), f.inflight.Load()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan relReply, 1)
	go func() {
		done <- relChat(ctx, c, p.API, "rel-gone", fmt.Sprintf("rel-gone-%v", stream), "wait rel-fault:hang", stream)
	}()
	if !pollUntil(t.Context(), 10*time.Second, func() bool { return f.inflight.Load() > inflight }) {
		t.Fatalf("the request never reached the upstream")
	}
	cancel()
	if r := <-done; r.Err == nil && r.Events == nil {
		t.Errorf("the cancelled request got an answer: %s", r)
	}
	if !pollUntil(t.Context(), 10*time.Second, func() bool { return cancelled() > before }) {
		t.Errorf("no \"llm call failed\" line with outcome cancelled after the client went away")
	}
	if !pollUntil(t.Context(), 10*time.Second, func() bool { return f.inflight.Load() <= inflight }) {
		t.Errorf("the upstream call is still open after the client went away")
	}
	relSettled(t, p, base, "a client disconnect")
}

// relPeakRSS samples the agent's resident set every 100 ms until the
// returned stop function is called, which returns the peak.
func relPeakRSS(p *agentProc) (stop func() float64) {
	done := make(chan struct{})
	result := make(chan float64, 1)
	go func() {
		peak := 0.0
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
				if m, err := relScrape(context.Background(), p.Admin); err == nil {
					peak = max(peak, m["process_resident_memory_bytes"])
				}
			}
		}
	}()
	return func() float64 {
		close(done)
		return <-result
	}
}

// TestRelUpstreamFlood: a runaway upstream streams text without end (up
// to 256 MiB, as fast as the agent reads) to a streaming /chat. The agent
// bounds a whole answer at 8 MiB (llmhttp.go sseMaxBody); a streamed one
// must be bounded too: the stream ends with event: error upstream_error
// well before llm.timeout_seconds (10 s here), the resident set stays
// within 128 MiB of its baseline, and nothing is left behind.
func TestRelUpstreamFlood(t *testing.T) {
	for _, kind := range relKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f := relNewFake(t, kind)
			p := relStart(t, f, "llm.timeout_seconds=10", "server.request_timeout_seconds=20")
			c := relNewClient(60 * time.Second)
			relWantOK(t, "warm-up", relChat(t.Context(), c, p.API, "rel-warm", "rel-warm-s", "hi", true), true)
			base := relBaseline(t, p)
			stop := relPeakRSS(p)
			start := time.Now()
			body, _ := json.Marshal(map[string]any{"user_id": "rel-flood", "session_id": "rel-flood-s", "message": "go rel-fault:flood", "stream": true})
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.API+"/chat", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("/chat: %v", err)
			}
			// Keep only the last event: the text itself may be large.
			var last, name string
			var total int64
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			for sc.Scan() {
				line := sc.Text()
				total += int64(len(line)) + 1
				if v, ok := strings.CutPrefix(line, "event: "); ok {
					name = v
				} else if v, ok := strings.CutPrefix(line, "data: "); ok {
					last = name + " " + v
				}
			}
			resp.Body.Close()
			took := time.Since(start)
			peak := stop()
			t.Logf("%d bytes to the client in %v; last event %.200s; peak RSS %.1f MiB (baseline %.1f)",
				total, took, last, peak/(1<<20), base.rss/(1<<20))
			if !strings.HasPrefix(last, `error {"error":{"type":"upstream_error"`) {
				t.Errorf("runaway stream ended with %.200s; want event: error of type upstream_error (answer too long)", last)
			}
			if took > 8*time.Second {
				t.Errorf("runaway stream ran for %v; llm.timeout_seconds (10s) should not be what ends it", took)
			}
			if peak > base.rss+128<<20 {
				t.Errorf("peak RSS %.1f MiB during one runaway stream; baseline %.1f MiB — a streamed answer is not bounded",
					peak/(1<<20), base.rss/(1<<20))
			}
			relSettled(t, p, base, "a runaway stream")
			relNoPanic(t, p)
		})
	}
}

// relRetryCase is one fault behind retries (llm.max_retries = 2).
type relRetryCase struct {
	name, fault string
	failN       int // the fault strikes the first failN attempts (0: all)
	stream      bool
	status      int
	typ         string
	sseError    bool
	midAnswer   bool
	attempts    int
	minDur      time.Duration
	maxDur      time.Duration
}

var relRetryCases = []relRetryCase{
	{name: "503 once then ok", fault: "503", failN: 1, status: 200, attempts: 2},
	{name: "529 twice then ok", fault: "529", failN: 2, status: 200, attempts: 3},
	{name: "429 without retry-after once", fault: "429", failN: 1, status: 200, attempts: 2},
	{name: "429 retry-after 1 honoured", fault: "429ra", failN: 1, status: 200, attempts: 2, minDur: 900 * time.Millisecond},
	{name: "reset once then ok", fault: "reset", failN: 1, status: 200, attempts: 2},
	{name: "hang once then ok", fault: "hang", failN: 1, status: 200, attempts: 2, minDur: 1900 * time.Millisecond},
	{name: "500 every time", fault: "500", status: 502, typ: "upstream_error", attempts: 3},
	{name: "400 is not retried", fault: "400", status: 502, typ: "upstream_error", attempts: 1},
	{name: "garbage is not retried", fault: "garbage", status: 502, typ: "upstream_error", attempts: 1},
	{name: "retry-after past the deadline gives up at once", fault: "429ra30", status: 502, typ: "upstream_error", attempts: 1, maxDur: 5 * time.Second},
	{name: "stream 503 once then ok", fault: "503", failN: 1, stream: true, status: 200, attempts: 2},
	{name: "stream cut after text is not retried", fault: "cut", stream: true, status: 200, typ: "upstream_error", sseError: true, midAnswer: true, attempts: 1},
}

// TestRelUpstreamRetries checks which faults are retried, how often, and
// that an upstream Retry-After is honoured or, past the deadline, ends
// the call at once.
func TestRelUpstreamRetries(t *testing.T) {
	for _, kind := range relKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f := relNewFake(t, kind)
			p := relStart(t, f, "llm.max_retries=2", "server.request_timeout_seconds=10",
				"resilience.circuit_breaker_failure_threshold=1000")
			c := relNewClient(60 * time.Second)
			relWantOK(t, "warm-up", relChat(t.Context(), c, p.API, "rel-warm", "rel-warm-s", "hi", false), false)
			base := relBaseline(t, p)
			for i, tc := range relRetryCases {
				t.Run(tc.name, func(t *testing.T) {
					key := fmt.Sprintf("%s%d", kind, i)
					msg := fmt.Sprintf("answer rel-fault:%s rel-key:%s rel-failn:%d", tc.fault, key, tc.failN)
					user := fmt.Sprintf("rel-retry-%d", i)
					r := relChat(t.Context(), c, p.API, user, user+"-s", msg, tc.stream)
					switch {
					case tc.sseError:
						relWantStreamError(t, tc.name, r, tc.typ, tc.midAnswer)
					case tc.status == http.StatusOK:
						relWantOK(t, tc.name, r, tc.stream)
					default:
						relWantError(t, tc.name, r, tc.status, tc.typ)
					}
					if got := f.Attempts(key); got != tc.attempts {
						t.Errorf("%s: %d upstream attempts; want %d", tc.name, got, tc.attempts)
					}
					if r.Dur < tc.minDur {
						t.Errorf("%s: answered after %v; want at least %v", tc.name, r.Dur, tc.minDur)
					}
					if tc.maxDur > 0 && r.Dur > tc.maxDur {
						t.Errorf("%s: answered after %v; want at most %v", tc.name, r.Dur, tc.maxDur)
					}
				})
			}
			relSettled(t, p, base, "the retry scenarios")
			relNoPanic(t, p)
		})
	}
}

// relBreakerState reads which agent_circuit_breaker_state series is 1.
func relBreakerState(ctx context.Context, p *agentProc, name string) string {
	m, err := relScrape(ctx, p.Admin)
	if err != nil {
		return "scrape failed: " + err.Error()
	}
	for _, s := range []string{"closed", "half_open", "open"} {
		if m[fmt.Sprintf(`agent_circuit_breaker_state{breaker=%q,state=%q}`, name, s)] == 1 {
			return s
		}
	}
	return "unknown"
}

// relHealthLLM reads /health's status code and llm component status.
func relHealthLLM(t *testing.T, p *agentProc) (int, string) {
	t.Helper()
	status, body := doJSON(t, http.MethodGet, p.API+"/health", nil, nil)
	var h struct {
		Components map[string]struct {
			Status string `json:"status"`
		} `json:"components"`
	}
	json.Unmarshal(body, &h)
	return status, h.Components["llm"].Status
}

// TestRelCircuitBreaker drives the breaker through closed → open →
// half-open → open → half-open → closed in real time (2 s open timeout):
// five consecutive failures of any kind (5xx, our timeout, a reset,
// garbage) open it while a 4xx is neither success nor failure; open, it
// answers 503 circuit_open with Retry-After without calling the upstream;
// a failed probe reopens it; two good probes close it.
func TestRelCircuitBreaker(t *testing.T) {
	for _, kind := range relKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f := relNewFake(t, kind)
			p := relStart(t, f, "resilience.circuit_breaker_failure_threshold=5",
				"resilience.circuit_breaker_success_threshold=2", "resilience.circuit_breaker_timeout_seconds=2")
			c := relNewClient(60 * time.Second)
			n := 0
			chat := func(msg string) relReply {
				n++
				user := fmt.Sprintf("rel-cb-%d", n)
				return relChat(t.Context(), c, p.API, user, user+"-s", msg, false)
			}
			state := func() string { return relBreakerState(t.Context(), p, kind) }
			waitState := func(want string) {
				t.Helper()
				if !pollUntil(t.Context(), 15*time.Second, func() bool { return state() == want }) {
					t.Fatalf("breaker state %s; want %s within 15s", state(), want)
				}
			}
			relWantOK(t, "first call", chat("hi rel-fault:ok"), false)
			base := relBaseline(t, p)
			if s := state(); s != "closed" {
				t.Fatalf("breaker %s at start; want closed", s)
			}

			for _, step := range []struct {
				fault, typ string
				status     int
			}{
				{"500", "upstream_error", 502},
				{"hang", "upstream_timeout", 504},
				{"400", "upstream_error", 502}, // excluded: not a failure
				{"reset", "upstream_error", 502},
				{"garbage", "upstream_error", 502},
			} {
				relWantError(t, "failure "+step.fault, chat("fail rel-fault:"+step.fault), step.status, step.typ)
			}
			if s := state(); s != "closed" {
				t.Fatalf("breaker %s after 4 failures and an excluded 400; want closed (opens on the 5th)", s)
			}
			relWantError(t, "fifth failure (529)", chat("fail rel-fault:529"), 502, "upstream_error")
			if s := state(); s != "open" {
				t.Fatalf("breaker %s after the 5th consecutive failure; want open", s)
			}

			before := f.total.Load()
			r := chat("hi rel-fault:ok")
			relWantError(t, "call while open", r, 503, "circuit_open")
			if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 1 || ra > 2 {
				t.Errorf("Retry-After %q while open; want 1..2 (the 2s open timeout)", r.Header.Get("Retry-After"))
			}
			if got := f.total.Load() - before; got != 0 {
				t.Errorf("the upstream was called %d times while the breaker was open", got)
			}
			if code, llm := relHealthLLM(t, p); code != 200 || llm != "degraded" {
				t.Errorf("/health while open: %d, llm %q; want 200 and degraded", code, llm)
			}

			waitState("half_open")
			relWantError(t, "failed probe", chat("probe rel-fault:503"), 502, "upstream_error")
			if s := state(); s != "open" {
				t.Fatalf("breaker %s after a failed half-open probe; want open", s)
			}
			before = f.total.Load()
			relWantError(t, "call after the failed probe", chat("hi rel-fault:ok"), 503, "circuit_open")
			if got := f.total.Load() - before; got != 0 {
				t.Errorf("the upstream was called %d times after the failed probe", got)
			}

			waitState("half_open")
			relWantOK(t, "first good probe", chat("probe rel-fault:ok"), false)
			if s := state(); s != "half_open" {
				t.Errorf("breaker %s after one good probe; want half_open (success_threshold 2)", s)
			}
			relWantOK(t, "second good probe", chat("probe rel-fault:ok"), false)
			if s := state(); s != "closed" {
				t.Fatalf("breaker %s after two good probes; want closed", s)
			}
			if code, llm := relHealthLLM(t, p); code != 200 || llm != "healthy" {
				t.Errorf("/health after recovery: %d, llm %q; want 200 and healthy", code, llm)
			}
			m, err := relScrape(t.Context(), p.Admin)
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range []struct {
				from, to string
				want     float64
			}{{"closed", "open", 1}, {"open", "half_open", 2}, {"half_open", "open", 1}, {"half_open", "closed", 1}} {
				key := fmt.Sprintf(`agent_circuit_breaker_transitions_total{breaker=%q,from=%q,to=%q}`, kind, tr.from, tr.to)
				if got := m[key]; got != tr.want {
					t.Errorf("%s = %v; want %v", key, got, tr.want)
				}
			}
			relSettled(t, p, base, "the breaker scenario")
			relNoPanic(t, p)
		})
	}
}

// relLoad counts the answers of a load run.
type relLoad struct {
	mu       sync.Mutex
	statuses map[int]int
	types    map[string]int
	odd      []string
	maxDur   time.Duration
	traces   []string // trace_id of every 200
}

func (l *relLoad) add(r relReply) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.statuses == nil {
		l.statuses, l.types = map[int]int{}, map[string]int{}
	}
	if r.Err != nil {
		l.odd = append(l.odd, r.String())
		l.statuses[-1]++
		return
	}
	l.statuses[r.Status]++
	l.maxDur = max(l.maxDur, r.Dur)
	if r.Status == http.StatusOK {
		if tr := r.TraceID(); tr != "" {
			l.traces = append(l.traces, tr)
		}
		return
	}
	l.types[fmt.Sprintf("%d %s", r.Status, r.ErrType())]++
	if (r.Status == 429 || r.Status == 503) && !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(r.Header.Get("Retry-After")) {
		l.odd = append(l.odd, fmt.Sprintf("%d without a valid Retry-After (%q)", r.Status, r.Header.Get("Retry-After")))
	}
}

// TestRelOverload offers ten times the sustainable rate with the limits
// on: the LLM bulkhead admits 4 calls of 200 ms (20/s) with 4 queued, the
// per-principal buckets 5/s for each of 25 users and the per-IP bucket
// 100/s; 200 requests/s arrive for 5 s. Every answer must be 200, 429
// rate_limited or 503 overloaded (with Retry-After), never another 5xx or
// a transport error; admitted requests finish within the configured
// timeouts; RSS stays bounded.
func TestRelOverload(t *testing.T) {
	f := relNewFake(t, "anthropic")
	p := relStart(t, f,
		"llm.timeout_seconds=5", "server.request_timeout_seconds=10",
		"resilience.rate_limit_requests_per_second=5", "resilience.rate_limit_burst=5",
		"resilience.ip_rate_limit_requests_per_second=100", "resilience.ip_rate_limit_burst=100",
		"resilience.llm_max_concurrent=4", "resilience.llm_max_queued=4", "resilience.bulkhead_queue_timeout_seconds=1",
		// A flood from one address is what this test makes on purpose;
		// blocking it (403) is the security monitor's job, tested elsewhere.
		"security.auto_block=false")
	c := relNewClient(30 * time.Second)
	relWantOK(t, "warm-up", relChat(t.Context(), c, p.API, "rel-ov-warm", "rel-ov-warm", "hi", false), false)
	base := relBaseline(t, p)

	const (
		rate     = 200 // per second: 10× the 20/s the bulkhead sustains
		duration = 5 * time.Second
		users    = 25
	)
	var load relLoad
	var peakRSS atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				if m, err := relScrape(context.Background(), p.Admin); err == nil {
					rss := int64(m["process_resident_memory_bytes"])
					if rss > peakRSS.Load() {
						peakRSS.Store(rss)
					}
				}
			}
		}
	}()
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	start := time.Now()
	sent := 0
	for sent < rate*int(duration/time.Second) && time.Since(start) < duration+2*time.Second {
		<-tick.C
		i := sent
		sent++
		wg.Go(func() {
			user := fmt.Sprintf("rel-ov-%d", i%users)
			session := fmt.Sprintf("rel-ov-%d", i)
			load.add(relChat(context.Background(), c, p.API, user, session, "hello rel-delay:200", i%5 == 0))
		})
	}
	tick.Stop()
	offered := float64(sent) / time.Since(start).Seconds()
	wg.Wait()
	close(stopSampling)
	<-sampled

	t.Logf("offered %d requests at %.0f/s; statuses %v; errors %v; slowest %v; upstream peak concurrency %d; peak RSS %.1f MiB (baseline %.1f)",
		sent, offered, load.statuses, load.types, load.maxDur, f.peak.Load(), float64(peakRSS.Load())/(1<<20), base.rss/(1<<20))
	for st, n := range load.statuses {
		if st != 200 && st != 429 && st != 503 {
			t.Errorf("%d answers with status %d; want only 200, 429 and 503", n, st)
		}
	}
	for typ, n := range load.types {
		if typ != "429 rate_limited" && typ != "503 overloaded" {
			t.Errorf("%d answers %q; want only 429 rate_limited and 503 overloaded", n, typ)
		}
	}
	for _, o := range load.odd[:min(len(load.odd), 10)] {
		t.Errorf("odd answer: %s", o)
	}
	if load.statuses[200] == 0 || load.statuses[429] == 0 || load.statuses[503] == 0 {
		t.Errorf("statuses %v; want some 200 (admitted), 429 (buckets) and 503 (bulkhead)", load.statuses)
	}
	// Admitted: up to 1 s queue + 5 s LLM timeout; 10 s request timeout.
	if load.maxDur > 12*time.Second {
		t.Errorf("slowest answer took %v; the configured limits allow at most ~10s", load.maxDur)
	}
	// The fake counts a call until its handler returns, which is after our
	// client has read the answer and released its bulkhead slot, so the
	// next admitted call can overlap that tail by one. The bulkhead's own
	// bound (peak ≤ N) is proven exactly by BH6 in the root tests.
	if got := f.peak.Load(); got > 4+1 {
		t.Errorf("upstream saw %d concurrent calls; llm_max_concurrent is 4", got)
	}
	if peak := float64(peakRSS.Load()); peak > base.rss+256<<20 {
		t.Errorf("peak RSS %.1f MiB under overload; baseline %.1f MiB", peak/(1<<20), base.rss/(1<<20))
	}
	relSettled(t, p, base, "overload")
	relNoPanic(t, p)
}

// relAuditRec is the part of an audit file record the suite reads.
type relAuditRec struct {
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
	Action   string `json:"action"`
	TraceID  string `json:"trace_id"`
}

// relReadAudit parses an audit file; torn is a final line without its
// newline (a write cut by SIGKILL).
func relReadAudit(t *testing.T, path string) (recs []relAuditRec, torn []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read audit file: %v", err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		torn, data = data[i+1:], data[:i+1]
	}
	for n, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r relAuditRec
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line %d: %v: %.200s", n+1, err, line)
		}
		recs = append(recs, r)
	}
	return recs, torn
}

// relAuditVerify runs production-agent audit verify and returns its exit
// code and output.
func relAuditVerify(t *testing.T, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBinary, "audit", "verify", path)
	cmd.Env = cleanEnv(nil)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	return 0, string(out)
}

// relCheckAudit asserts that every acknowledged trace has its
// conversation.message and llm.call records and that seq and prev_hash
// link every record to the one before.
func relCheckAudit(t *testing.T, recs []relAuditRec, traces []string) {
	t.Helper()
	by := map[string][]string{}
	for i, r := range recs {
		by[r.TraceID] = append(by[r.TraceID], r.Action)
		if r.Seq != uint64(i+1) || (i > 0 && r.PrevHash != recs[i-1].Hash) {
			t.Errorf("audit record %d (%s): seq %d prev_hash %.12s; chain broken", i+1, r.Action, r.Seq, r.PrevHash)
			return
		}
	}
	missing := 0
	for _, tr := range traces {
		acts := by[tr]
		if !slices.Contains(acts, "conversation.message") || !slices.Contains(acts, "llm.call") {
			if missing++; missing <= 5 {
				t.Errorf("acknowledged /chat (trace %s) has audit records %v; want conversation.message and llm.call", tr, acts)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged requests lack their audit records", missing, len(traces))
	}
}

// TestRelGracefulShutdownUnderLoad sends SIGTERM while 200 requests (a
// quarter of them streams) wait on a 3 s upstream: readiness turns 503 at
// once, every in-flight request still gets its 200 (streams end in done),
// the process exits 0 within shutdown_delay + shutdown_timeout, and the
// file audit trail holds every acknowledged request and verifies.
func TestRelGracefulShutdownUnderLoad(t *testing.T) {
	const inflight = 200
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	f := relNewFake(t, "anthropic")
	p := relStart(t, f, "audit.backend=file", "audit.file_path="+auditPath,
		"server.shutdown_delay_seconds=2", "server.shutdown_timeout_seconds=20",
		"llm.timeout_seconds=20", "server.request_timeout_seconds=30",
		"resilience.rate_limit_enabled=false", "resilience.ip_rate_limit_enabled=false")
	c := relNewClient(60 * time.Second)
	relWantOK(t, "warm-up", relChat(t.Context(), c, p.API, "rel-sd-warm", "rel-sd-warm", "hi", false), false)

	var load relLoad
	var finished atomic.Int64
	var wg sync.WaitGroup
	for i := range inflight {
		wg.Go(func() {
			user := fmt.Sprintf("rel-sd-%d", i)
			stream := i%4 == 0
			r := relChat(context.Background(), c, p.API, user, user+"-s", "hold on rel-delay:3000", stream)
			finished.Add(1)
			if r.Err == nil && r.Status == 200 && stream && (r.Last().Name != "done" || slices.Contains(r.Names(), "error")) {
				r.Status = -2 // a stream that did not end in done
			}
			load.add(r)
		})
	}
	if !pollUntil(t.Context(), 20*time.Second, func() bool { return f.inflight.Load() >= inflight }) {
		t.Fatalf("only %d of %d requests reached the upstream within 20s", f.inflight.Load(), inflight)
	}
	sigAt := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	ready := relNewClient(2 * time.Second)
	var readyCode int
	var readyBody []byte
	if !pollUntil(t.Context(), 2*time.Second, func() bool {
		resp, err := ready.Get(p.API + "/health/ready")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		readyCode = resp.StatusCode
		readyBody, _ = io.ReadAll(resp.Body)
		return readyCode == http.StatusServiceUnavailable
	}) {
		t.Errorf("/health/ready after SIGTERM: %d %s; want 503 within 2s", readyCode, readyBody)
	} else if !bytes.Contains(readyBody, []byte(`"shutting_down"`)) {
		t.Errorf("/health/ready after SIGTERM: %s; want reason shutting_down", readyBody)
	}
	readyAfter := time.Since(sigAt)
	if n := finished.Load(); n > 0 {
		t.Errorf("%d requests finished before readiness turned 503 (%v after SIGTERM); want readiness first", n, readyAfter)
	}
	code, err := p.Wait()
	exitAfter := time.Since(sigAt)
	wg.Wait()
	t.Logf("readiness 503 after %v; exit %d after %v; answers %v", readyAfter, code, exitAfter, load.statuses)
	if err != nil || code != 0 {
		t.Errorf("exit after SIGTERM: code %d, %v; want 0", code, err)
	}
	if exitAfter > 22*time.Second+5*time.Second {
		t.Errorf("exit %v after SIGTERM; shutdown_delay 2s + shutdown_timeout 20s", exitAfter)
	}
	if load.statuses[200] != inflight {
		t.Errorf("in-flight answers %v (%v); want all %d with 200", load.statuses, load.types, inflight)
		for _, o := range load.odd[:min(len(load.odd), 5)] {
			t.Errorf("failed in-flight request: %s", o)
		}
	}
	recs, torn := relReadAudit(t, auditPath)
	if len(torn) > 0 {
		t.Errorf("audit file ends in %d bytes without a newline after a clean stop", len(torn))
	}
	relCheckAudit(t, recs, load.traces)
	if len(recs) == 0 || recs[len(recs)-1].Action != "service.stop" {
		t.Errorf("last audit record is not service.stop")
	}
	if code, out := relAuditVerify(t, auditPath); code != 0 {
		t.Errorf("audit verify after a graceful stop: exit %d\n%s", code, out)
	}
	relNoPanic(t, p)
}

// TestRelCrashKillUnderLoad is the reliability suite's short SIGKILL
// scenario (audit_test.go goes deeper): 12 clients chat against the fake
// provider with the file audit backend; after 60 answers the process is
// killed. Every 200 has its records, the chain verifies (a torn final
// line, if any, is the only fault reported), and a restarted process
// continues the chain and verifies clean after a graceful stop.
func TestRelCrashKillUnderLoad(t *testing.T) {
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	f := relNewFake(t, "openai")
	set := []string{"audit.backend=file", "audit.file_path=" + auditPath,
		"resilience.rate_limit_enabled=false", "resilience.ip_rate_limit_enabled=false"}
	p := relStart(t, f, set...)
	c := relNewClient(30 * time.Second)

	var load relLoad
	stop := make(chan struct{})
	reached := make(chan struct{})
	var once sync.Once
	var acked atomic.Int64
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Go(func() {
			for i := range 1000 {
				select {
				case <-stop:
					return
				default:
				}
				user := fmt.Sprintf("rel-kill-%d", w)
				r := relChat(context.Background(), c, p.API, user, fmt.Sprintf("%s-%d", user, i%3), "hello rel-delay:20", i%2 == 0)
				if r.Err != nil {
					return // killed mid-request: no answer, no claim
				}
				load.add(r)
				if r.Status == 200 && acked.Add(1) >= 60 {
					once.Do(func() { close(reached) })
				}
			}
		})
	}
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Errorf("only %d answers within 30s", acked.Load())
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	close(stop)
	<-p.Exited()
	wg.Wait()
	load.mu.Lock()
	traces := slices.Clone(load.traces)
	load.mu.Unlock()
	for st, n := range load.statuses {
		if st != 200 && st != -1 {
			t.Errorf("%d answers with status %d before the kill (%v)", n, st, load.types)
		}
	}

	recs, torn := relReadAudit(t, auditPath)
	relCheckAudit(t, recs, traces)
	code, out := relAuditVerify(t, auditPath)
	switch {
	case len(torn) == 0 && code != 0:
		t.Errorf("audit verify of the file SIGKILL left: exit %d\n%s", code, out)
	case len(torn) > 0 && (code == 0 || !strings.Contains(out, "cut short")):
		t.Errorf("file ends in a torn line of %d bytes; verify said (exit %d): %s", len(torn), code, out)
	}
	t.Logf("killed after %d answers; %d records; torn tail %d bytes", len(traces), len(recs), len(torn))

	p2 := relStart(t, f, set...)
	r := relChat(t.Context(), c, p2.API, "rel-kill-after", "rel-kill-after-s", "hello again", false)
	relWantOK(t, "/chat after the restart", r, false)
	if err := p2.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := p2.Wait(); code != 0 || err != nil {
		t.Fatalf("restarted process exit: %d %v", code, err)
	}
	recs2, torn2 := relReadAudit(t, auditPath)
	if len(torn2) > 0 || len(recs2) <= len(recs) {
		t.Fatalf("after restart: %d records (before %d), torn %d bytes", len(recs2), len(recs), len(torn2))
	}
	if next := recs2[len(recs)]; next.Seq != uint64(len(recs)+1) || next.PrevHash != recs[len(recs)-1].Hash {
		t.Errorf("first record after restart: seq %d prev_hash %.12s; want seq %d continuing hash %.12s",
			next.Seq, next.PrevHash, len(recs)+1, recs[len(recs)-1].Hash)
	}
	relCheckAudit(t, recs2, append(traces, r.TraceID()))
	if code, out := relAuditVerify(t, auditPath); code != 0 {
		t.Errorf("audit verify after restart and clean stop: exit %d\n%s", code, out)
	}
	relNoPanic(t, p)
	relNoPanic(t, p2)
}
