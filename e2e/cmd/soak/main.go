// Command soak runs production-agent for a long time at a steady, moderate
// rate and checks that its resident memory and goroutine count stay flat
// (issue 11). It is a documented command, not part of CI. Run in e2e/:
//
//	go run ./cmd/soak -duration 10m            # the reference run
//	go run ./cmd/soak -duration 2m -sample 10s # a quick look
//
// It builds the binary as the Dockerfile does (or takes -binary), starts an
// in-process fake Anthropic upstream on 127.0.0.1 (plain and streamed
// answers, a calculator tool call when asked, -latency per call) and the
// agent against it, then sends -rate requests per second from 100 users
// over 100 sessions: plain turns, streamed turns, turns with a tool call,
// session reads, and every 50th request a session delete. Every -sample it
// prints the agent's go_goroutines, process_resident_memory_bytes,
// go_memstats_heap_inuse_bytes and agent_active_sessions from /metrics and
// the answers so far. After -warmup (sessions, history and the in-memory
// audit ring are full by then) it compares the last third of the samples
// with the first third: the verdict is PASS when the median RSS grew by at
// most 25 % + 16 MiB, the median goroutine count by at most 10, every
// answer was the expected one, no log line mentions a panic, and the agent
// exits 0 on SIGTERM. The exit status is 0 for PASS, 1 otherwise.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type config struct {
	duration, sample, warmup, latency time.Duration
	rate                              float64
	root, binary                      string
	keep                              bool
}

func run(args []string, out io.Writer) error {
	var c config
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "how long to send load")
	fs.DurationVar(&c.sample, "sample", 30*time.Second, "interval between samples of /metrics")
	fs.DurationVar(&c.warmup, "warmup", time.Minute, "samples before this are shown but not judged")
	fs.DurationVar(&c.latency, "latency", 50*time.Millisecond, "the fake upstream's latency per call")
	fs.Float64Var(&c.rate, "rate", 20, "requests per second (steady, open loop)")
	fs.StringVar(&c.root, "root", "..", "the root module (production-agent)")
	fs.StringVar(&c.binary, "binary", "", "use this binary instead of building one")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (agent log) afterwards")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.duration <= 0 || c.sample <= 0 || c.rate <= 0 || c.rate > 500 {
		return errors.New("want -duration > 0, -sample > 0 and 0 < -rate <= 500")
	}
	if c.warmup >= c.duration {
		c.warmup = c.duration / 4
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Fprintln(out, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := c.binary
	if bin == "" {
		fmt.Fprintln(out, "building production-agent …")
		if bin, err = build(c.root, dir); err != nil {
			return err
		}
	}

	up, err := startUpstream(c.latency)
	if err != nil {
		return err
	}
	defer up.Close()

	ag, err := startAgent(bin, dir, up.URL)
	if err != nil {
		return err
	}
	defer ag.kill()
	fmt.Fprintf(out, "agent %s (admin %s) against fake upstream %s; %.0f req/s for %v, sample every %v, warm-up %v\n",
		ag.api, ag.admin, up.URL, c.rate, c.duration, c.sample, c.warmup)

	l := &loader{api: ag.api, client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}}}
	samples, err := soak(ctx, c, l, ag, out)
	if err != nil {
		return err
	}
	l.wg.Wait()

	code, stopErr := ag.stop(30 * time.Second)
	pass := verdict(out, c, samples, l, ag, code, stopErr)
	if !pass {
		return errors.New("FAIL")
	}
	return nil
}

// build compiles the root module the way the Dockerfile does.
func build(root, dir string) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	if b, err := os.ReadFile(filepath.Join(abs, "go.mod")); err != nil || !bytes.HasPrefix(b, []byte("module production-agent\n")) {
		return "", fmt.Errorf("%s is not the root module (run in e2e/ or pass -root)", abs)
	}
	bin := filepath.Join(dir, "production-agent")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=0.0.0-soak", "-o", bin, ".")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, b)
	}
	return bin, nil
}

// ---- the fake upstream ----

type upstream struct {
	URL string
	srv *http.Server
}

func (u *upstream) Close() { u.srv.Close() }

// startUpstream serves the Anthropic Messages API on 127.0.0.1: a tool_use
// of calculator when the last message is a user text containing "what is",
// else a short text; streamed when the request asks for it.
func startUpstream(latency time.Duration) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream   bool `json:"stream"`
			Messages []struct {
				Role    string `json:"role"`
				Content []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"content"`
			} `json:"messages"`
		}
		if r.URL.Path != "/v1/messages" || json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req) != nil || len(req.Messages) == 0 {
			http.Error(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		last := req.Messages[len(req.Messages)-1]
		wantTool := last.Role == "user" && len(last.Content) > 0 && last.Content[0].Type == "text" &&
			strings.Contains(last.Content[0].Text, "what is")
		text := "Soak answer: all systems nominal, nothing to report, thank you for asking today."
		if req.Stream {
			writeStream(w, text, wantTool)
			return
		}
		content := []any{map[string]any{"type": "text", "text": text}}
		stop := "end_turn"
		if wantTool {
			content = []any{map[string]any{"type": "tool_use", "id": "toolu_" + strconv.Itoa(rand.IntN(1e9)),
				"name": "calculator", "input": map[string]any{"expression": "12*7"}}}
			stop = "tool_use"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "msg_soak", "type": "message", "role": "assistant",
			"model": "claude-sonnet-4-5-20250929", "content": content, "stop_reason": stop, "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": 120, "output_tokens": 20}})
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &upstream{URL: "http://" + ln.Addr().String(), srv: srv}, nil
}

func writeStream(w http.ResponseWriter, text string, tool bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		rc.Flush()
	}
	send("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": "msg_soak", "type": "message",
		"role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": []any{}, "usage": map[string]any{"input_tokens": 120, "output_tokens": 1}}})
	stop := "end_turn"
	if tool {
		stop = "tool_use"
		send("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "tool_use", "id": "toolu_" + strconv.Itoa(rand.IntN(1e9)), "name": "calculator", "input": map[string]any{}}})
		send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "input_json_delta", "partial_json": `{"expression":"12*7"}`}})
	} else {
		send("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
		for _, word := range strings.SplitAfter(text, " ") {
			send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
				"delta": map[string]any{"type": "text_delta", "text": word}})
		}
	}
	send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop}, "usage": map[string]any{"output_tokens": 20}})
	send("message_stop", map[string]any{"type": "message_stop"})
}

// ---- the agent ----

type agent struct {
	cmd        *exec.Cmd
	api, admin string
	done       chan struct{}
	exitCode   int
	panics     atomic.Int64
	logPath    string
	killOnce   sync.Once
}

func startAgent(bin, dir, upstreamURL string) (*agent, error) {
	sets := []string{
		"llm.provider=anthropic", "llm.base_url=" + upstreamURL, "llm.model=claude-sonnet-4-5",
		"llm.timeout_seconds=10", "server.request_timeout_seconds=20", "server.shutdown_timeout_seconds=15",
		// Bounded state fills within the warm-up, so growth after it is a leak:
		// 10 messages of history, a 1,000-event audit ring.
		"sessions.max_history_messages=10", "audit.backend=in_memory", "audit.max_events=1000",
	}
	args := []string{"serve", "-host", "127.0.0.1", "-port", "0", "-metrics-port", "0"}
	for _, s := range sets {
		args = append(args, "-set", s)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "ANTHROPIC_API_KEY=soak-key"}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	a := &agent{cmd: cmd, done: make(chan struct{}), logPath: filepath.Join(dir, "agent.log")}
	logf, err := os.Create(a.logPath)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	listening := make(chan [2]string, 1)
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if strings.Contains(strings.ToLower(line), "panic") {
				a.panics.Add(1)
			}
			var rec struct{ Msg, API, Admin string }
			if !sent && json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				sent = true
				listening <- [2]string{rec.API, rec.Admin}
			}
		}
		cmd.Wait()
		a.exitCode = cmd.ProcessState.ExitCode()
		close(a.done)
	}()
	select {
	case addrs := <-listening:
		a.api, a.admin = "http://"+addrs[0], "http://"+addrs[1]
		return a, nil
	case <-a.done:
		return nil, fmt.Errorf("agent exited before listening; see %s", a.logPath)
	case <-time.After(20 * time.Second):
		a.kill()
		return nil, errors.New("agent did not say listening within 20s")
	}
}

func (a *agent) kill() {
	a.killOnce.Do(func() {
		select {
		case <-a.done:
		default:
			a.cmd.Process.Kill()
			<-a.done
		}
	})
}

// stop sends SIGTERM and waits up to limit for the exit code.
func (a *agent) stop(limit time.Duration) (int, error) {
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		return a.exitCode, nil
	case <-time.After(limit):
		a.kill()
		return -1, fmt.Errorf("no exit within %v of SIGTERM", limit)
	}
}

// ---- load ----

type loader struct {
	api    string
	client *http.Client
	wg     sync.WaitGroup
	n      atomic.Int64

	mu     sync.Mutex
	counts map[string]int // "kind status" → answers
	bad    map[string]int // unexpected answers
}

func (l *loader) record(kind string, status int, ok bool, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts, l.bad = map[string]int{}, map[string]int{}
	}
	l.counts[fmt.Sprintf("%s %d", kind, status)]++
	if !ok {
		l.bad[fmt.Sprintf("%s %d %.120s", kind, status, detail)]++
	}
}

// one sends the i-th request of the mix.
func (l *loader) one(ctx context.Context, i int64) {
	const users, sessions = 100, 100
	// Each round of 100 requests shifts the session by one, so every
	// session sees every kind of request; a session keeps one owner.
	s := (i + i/sessions) % sessions
	user := fmt.Sprintf("soak-user-%d", s%users)
	session := fmt.Sprintf("soak-%d", s)
	do := func(kind, method, path string, body any, want ...int) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, l.api+path, rd)
		if err != nil {
			l.record(kind, -1, false, err.Error())
			return
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := l.client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				l.record(kind, -1, false, err.Error())
			}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil && ctx.Err() != nil {
			return // cut by the end of the run
		}
		ok := err == nil && slices.Contains(want, resp.StatusCode)
		if ok && bytes.HasPrefix([]byte(resp.Header.Get("Content-Type")), []byte("text/event-stream")) {
			ok = bytes.Contains(b, []byte("event: done")) && !bytes.Contains(b, []byte("event: error"))
		}
		l.record(kind, resp.StatusCode, ok, string(b))
	}
	chat := func(msg string, stream bool) map[string]any {
		return map[string]any{"user_id": user, "session_id": session, "message": msg, "stream": stream}
	}
	// 409 session_busy is expected now and then: two requests of one
	// session may overlap at this rate.
	switch r := i % 20; {
	case i%50 == 49:
		do("delete", http.MethodDelete, "/sessions/"+session, nil, 204, 404, 409)
	case r < 11:
		do("chat", http.MethodPost, "/chat", chat("Tell me how things are going today.", false), 200, 409)
	case r < 15:
		do("stream", http.MethodPost, "/chat", chat("Stream me a short status report.", true), 200, 409)
	case r < 18:
		do("tool", http.MethodPost, "/chat", chat("what is 12 times 7?", false), 200, 409)
	default:
		do("read", http.MethodGet, "/sessions/"+session, nil, 200, 404)
	}
}

// ---- sampling and verdict ----

type sample struct {
	at                                 time.Duration
	goroutines, rss, heap, sessionsNum float64
	sent                               int64
}

var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$`)

func scrape(admin string) (map[string]float64, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if f := metricLine.FindStringSubmatch(sc.Text()); f != nil {
			if v, err := strconv.ParseFloat(f[2], 64); err == nil {
				m[f[1]] = v
			}
		}
	}
	return m, sc.Err()
}

func soak(ctx context.Context, c config, l *loader, ag *agent, out io.Writer) ([]sample, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	send := time.NewTicker(time.Duration(float64(time.Second) / c.rate))
	defer send.Stop()
	tick := time.NewTicker(c.sample)
	defer tick.Stop()
	var samples []sample
	take := func() error {
		m, err := scrape(ag.admin)
		if err != nil {
			return fmt.Errorf("scrape: %w", err)
		}
		s := sample{at: time.Since(start).Round(time.Second), goroutines: m["go_goroutines"], rss: m["process_resident_memory_bytes"],
			heap: m["go_memstats_heap_inuse_bytes"], sessionsNum: m["agent_active_sessions"], sent: l.n.Load()}
		samples = append(samples, s)
		l.mu.Lock()
		bad := 0
		for _, n := range l.bad {
			bad += n
		}
		l.mu.Unlock()
		mark := ""
		if s.at < c.warmup {
			mark = "  (warm-up)"
		}
		fmt.Fprintf(out, "t=%6v  sent=%7d  unexpected=%d  rss=%7.1f MiB  heap_inuse=%6.1f MiB  goroutines=%4.0f  sessions=%4.0f%s\n",
			s.at, s.sent, bad, s.rss/(1<<20), s.heap/(1<<20), s.goroutines, s.sessionsNum, mark)
		return nil
	}
	if err := take(); err != nil {
		return nil, err
	}
	for {
		select {
		case <-ctx.Done():
			cancel()
			l.wg.Wait()
			// The final sample, once in-flight requests are answered.
			return samples, take()
		case <-ag.done:
			return samples, fmt.Errorf("the agent exited during the soak (code %d); see its log", ag.exitCode)
		case <-send.C:
			i := l.n.Add(1) - 1
			l.wg.Go(func() { l.one(ctx, i) })
		case <-tick.C:
			if err := take(); err != nil {
				return samples, err
			}
		}
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func verdict(out io.Writer, c config, samples []sample, l *loader, ag *agent, code int, stopErr error) bool {
	var judged []sample
	for _, s := range samples {
		if s.at >= c.warmup {
			judged = append(judged, s)
		}
	}
	fmt.Fprintln(out)
	l.mu.Lock()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range l.counts {
			if !yield(k) {
				return
			}
		}
	})
	fmt.Fprint(out, "answers:")
	for _, k := range keys {
		fmt.Fprintf(out, "  %s ×%d", k, l.counts[k])
	}
	fmt.Fprintln(out)
	bad := 0
	for k, n := range l.bad {
		bad += n
		fmt.Fprintf(out, "unexpected: %s ×%d\n", k, n)
	}
	l.mu.Unlock()

	pass := true
	fail := func(format string, args ...any) {
		pass = false
		fmt.Fprintf(out, "FAIL: "+format+"\n", args...)
	}
	if len(judged) < 3 {
		fail("only %d samples after the %v warm-up; run longer or sample more often", len(judged), c.warmup)
	} else {
		third := len(judged) / 3
		col := func(ss []sample, f func(sample) float64) []float64 {
			var v []float64
			for _, s := range ss {
				v = append(v, f(s))
			}
			return v
		}
		first, last := judged[:max(third, 1)], judged[len(judged)-max(third, 1):]
		rss0, rss1 := median(col(first, func(s sample) float64 { return s.rss })), median(col(last, func(s sample) float64 { return s.rss }))
		g0, g1 := median(col(first, func(s sample) float64 { return s.goroutines })), median(col(last, func(s sample) float64 { return s.goroutines }))
		fmt.Fprintf(out, "RSS median %.1f → %.1f MiB (limit %.1f); goroutines median %.0f → %.0f (limit %.0f)\n",
			rss0/(1<<20), rss1/(1<<20), (rss0*1.25+16<<20)/(1<<20), g0, g1, g0+10)
		if rss1 > rss0*1.25+16<<20 {
			fail("resident memory grew from %.1f to %.1f MiB", rss0/(1<<20), rss1/(1<<20))
		}
		if g1 > g0+10 {
			fail("goroutines grew from %.0f to %.0f", g0, g1)
		}
	}
	if bad > 0 {
		fail("%d unexpected answers", bad)
	}
	if n := ag.panics.Load(); n > 0 {
		fail("%d log lines mention a panic (see %s; -keep keeps it)", n, ag.logPath)
	}
	if stopErr != nil || code != 0 {
		fail("exit after SIGTERM: code %d %v", code, stopErr)
	}
	if pass {
		fmt.Fprintf(out, "PASS: %d requests over %v; RSS and goroutines flat; exit 0\n", l.n.Load(), c.duration)
	}
	return pass
}
