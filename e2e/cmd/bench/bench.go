package main

// The harness's shared machinery: the bench state and its rows, starting
// and stopping the agent and its peers, profiles, and the report.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bench is one invocation: its configuration, the shared client and mock,
// and the rows collected so far.
type bench struct {
	cfg    *config
	ctx    context.Context
	client *http.Client
	binary string
	mock   *peer
	log    io.Writer
	load0  string // load average at the start

	rows   []row
	notes  []string
	failed bool
}

// row is one line of the report.
type row struct {
	n, metric, ours, ref, target, verdict string
}

func (b *bench) add(r row) { b.rows = append(b.rows, r) }
func (b *bench) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// agentSets are the overrides of every agent the harness starts: limits
// sized so they never bind under the harness's load (one client IP, up to
// ~1,000 requests in flight), and a request timeout well above the slowest
// upstream. Everything else is the built-in default.
func (b *bench) agentSets() []string {
	s := []string{
		"resilience.rate_limit_requests_per_second=1e9", "resilience.rate_limit_burst=1000000000",
		"resilience.ip_rate_limit_requests_per_second=1e9", "resilience.ip_rate_limit_burst=1000000000",
		"resilience.llm_max_concurrent=4096", "resilience.llm_max_queued=4096",
		"resilience.bulkhead_max_concurrent=4096", "resilience.bulkhead_max_queued=4096",
		"server.request_timeout_seconds=30",
	}
	if b.cfg.pprof != "" {
		s = append(s, "observability.pprof_enabled=true")
	}
	return append(s, b.cfg.sets...)
}

// startAgent starts the agent with the embedded model (upstream nil) or
// with provider openai against the mock at the given latency.
func (b *bench) startAgent(embedded bool, latency time.Duration, port int) (*agent, error) {
	opts := agentOpts{binary: b.binary, port: port}
	if embedded {
		opts.sets = append([]string{"llm.provider=mock"}, b.agentSets()...)
	} else {
		opts.sets = append([]string{"llm.provider=openai", "llm.base_url=" + b.mockBase(latency) + "/v1"}, b.agentSets()...)
		opts.env = []string{"OPENAI_API_KEY=sk-bench-not-a-real-key"}
	}
	return startAgent(opts)
}

// mockBase is the mock's base URL for an upstream latency.
func (b *bench) mockBase(latency time.Duration) string {
	if latency <= 0 {
		return b.mock.url
	}
	return b.mock.url + "/lat/" + strconv.FormatInt(latency.Milliseconds(), 10)
}

// stop stops a child after closing the client's idle connections: a
// server's graceful shutdown waits up to 5 s for connections the client
// dialled but never used.
func (b *bench) stop(c *child) {
	b.client.CloseIdleConnections()
	c.stop()
}

// checkAlive reports a child that died during a scenario.
func checkAlive(c *child) error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited during the run (%v):\n%s", c.name, c.waitErr, c.Tail())
	default:
		return nil
	}
}

// failures describes what went wrong in an outcome, for the notes.
func failures(o *outcome) string {
	if o.failed == 0 && o.late == 0 {
		return ""
	}
	var parts []string
	keys := make([]int, 0, len(o.statuses))
	for k := range o.statuses {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "transport error"
		}
		parts = append(parts, fmt.Sprintf("%d× %s", o.statuses[k], name))
	}
	if o.firstErr != "" {
		parts = append(parts, "first error: "+o.firstErr)
	}
	if o.late > 0 {
		parts = append(parts, fmt.Sprintf("%d sends more than %v late (load generator saturated)", o.late, lateSlack))
	}
	return strings.Join(parts, "; ")
}

// startProxyAndAgent starts the bare reverse proxy in front of the mock and
// an agent on the provider path (openai → mock, 0 ms) for scenarios 2 and
// 3; stop ends both.
func (b *bench) startProxyAndAgent() (proxy *peer, ag *agent, stop func(), err error) {
	if proxy, err = startPeer("proxy", "-upstream", b.mock.url); err != nil {
		return nil, nil, nil, err
	}
	if ag, err = b.startAgent(false, 0, 0); err != nil {
		b.stop(proxy.child)
		return nil, nil, nil, err
	}
	return proxy, ag, func() { b.stop(ag.child); b.stop(proxy.child) }, nil
}

// profileCPU fetches a CPU profile of the agent while load runs.
func (b *bench) profileCPU(ag *agent, name string, load func(time.Duration)) {
	if ag.admin == "" {
		b.note("pprof: the agent has no admin listener")
		return
	}
	secs := max(1, int(b.cfg.profileTime/time.Second))
	path := filepath.Join(b.cfg.pprof, name+".cpu.pprof")
	var wg sync.WaitGroup
	var perr error
	wg.Go(func() {
		perr = fetchProfile(b.ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", ag.admin, secs), path, time.Duration(secs+30)*time.Second)
	})
	load(time.Duration(secs)*time.Second + 500*time.Millisecond)
	wg.Wait()
	if perr != nil {
		b.note("pprof: %v", perr)
		return
	}
	b.note("pprof: %s", path)
}

// report writes the markdown table and the notes.
func (b *bench) report(w io.Writer, args []string) {
	fmt.Fprintf(w, "## production-agent load harness, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "- command: `go run ./cmd/bench %s` (in e2e/)\n", strings.Join(args, " "))
	fmt.Fprintf(w, "- host: %s; 1-minute load average %s at the start, %s at the end\n", hostLine(), b.load0, loadAverage())
	fmt.Fprintf(w, "- agent: `%s`, limits sized not to bind: `-set %s`\n\n", b.binary, strings.Join(b.agentSets(), " -set "))
	fmt.Fprintln(w, "| # | metric | production-agent | reference | target | |")
	fmt.Fprintln(w, "|---|---|---:|---:|---|---|")
	rows := slices.Clone(b.rows)
	slices.SortStableFunc(rows, func(x, y row) int { return strings.Compare(x.n, y.n) })
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.n, r.metric, r.ours, r.ref, r.target, r.verdict)
	}
	if len(b.notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range b.notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func us(d time.Duration) string    { return usNum(d) + " µs" }
func usNum(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }
func ms(d time.Duration) string    { return msNum(d) + " ms" }
func msNum(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }
func mib(b int64) string           { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) }
func pctStr(f float64) string      { return strconv.FormatFloat(100*f, 'f', 2, 64) + " %" }

func mibList(bs []int64) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = mib(b)
	}
	return out
}

// runtimeSeries are the Go runtime gauges that explain a process's
// resident memory, as the agent's /metrics exposes them.
var runtimeSeries = []struct{ name, label string }{
	{"go_goroutines", "goroutines"},
	{"go_memstats_heap_inuse_bytes", "heap in use"},
	{"go_memstats_heap_idle_bytes", "heap idle"},
	{"go_memstats_heap_released_bytes", "heap released"},
	{"go_memstats_stack_inuse_bytes", "stacks"},
	{"go_memstats_next_gc_bytes", "next GC"},
	{"go_memstats_sys_bytes", "from the OS"},
}

// scrapeRuntime reads runtimeSeries from a Prometheus text exposition and
// formats them (bytes in MiB); "" when the scrape fails.
func scrapeRuntime(ctx context.Context, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	values := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			values[name] = f
		}
	}
	var parts []string
	for _, s := range runtimeSeries {
		v, ok := values[s.name]
		if !ok {
			continue
		}
		if strings.HasSuffix(s.name, "_bytes") {
			parts = append(parts, fmt.Sprintf("%s %s MiB", s.label, mib(int64(v))))
		} else {
			parts = append(parts, fmt.Sprintf("%s %.0f", s.label, v))
		}
	}
	return strings.Join(parts, ", ")
}
