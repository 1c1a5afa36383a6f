package main

// The load generators: a closed loop (fixed concurrency, for throughput),
// an open loop (sends scheduled at fixed intervals, never waiting for
// answers, for fixed-rate scenarios) and a sequential loop that alternates
// between targets request by request (for latency at concurrency 1). All of
// them share one http.Transport.

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// requestTimeout bounds every request of the harness: longer than the
// slowest scenario's upstream latency (1.5 s) plus any queueing we would
// still call a success, shorter than the agent's request timeout (30 s as
// configured here) so a hung request is counted, not waited on forever.
const requestTimeout = 20 * time.Second

// lateSlack is how far behind its schedule the open loop may send before
// the send counts as late: more late sends than a handful mean the load
// generator (not the system under test) could not keep the rate.
const lateSlack = 10 * time.Millisecond

// newClient returns the one client every load generator uses. Idle
// connections are kept for every request that can be in flight at once
// (1,000 RPS × 1 s upstream ≈ 1,000), so the harness never churns
// connections itself.
func newClient() *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no global cap; the per-host one applies
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: requestTimeout}
}

// target is one endpoint under load. next returns the body of the next
// request and a function to call when its answer is in.
type target struct {
	name string
	url  string
	next func() (body []byte, release func())
}

func noRelease() {}

// staticTarget posts the same body every time.
func staticTarget(name, url string, body []byte) *target {
	return &target{name: name, url: url, next: func() ([]byte, func()) { return body, noRelease }}
}

// chatTarget posts /chat bodies with distinct users and sessions from pool.
func chatTarget(name, url string, pool *sessionPool, message string) *target {
	msg := strconv.Quote(message) // ASCII message: Go quoting is valid JSON
	return &target{name: name, url: url, next: func() ([]byte, func()) {
		s := pool.acquire()
		b := make([]byte, 0, 64+len(msg))
		b = append(b, `{"user_id":"bench-u`...)
		b = strconv.AppendInt(b, s.id, 10)
		b = append(b, `","session_id":"bench-s`...)
		b = strconv.AppendInt(b, s.id, 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(s.gen), 10)
		b = append(b, `","message":`...)
		b = append(b, msg...)
		b = append(b, '}')
		return b, func() { pool.release(s) }
	}}
}

// sessionPool hands out (user, session) pairs so that no two requests in
// flight share a session (the agent runs one turn at a time per session
// and would answer 409). A slot is one user; after turns turns its
// conversation is left behind and the slot moves on to a new session, so
// histories stay short and sessions stay distinct.
type sessionPool struct {
	turns int
	free  chan *sessionSlot
	last  atomic.Int64
}

type sessionSlot struct {
	id   int64
	gen  int // conversation number of this user
	used int // turns taken in the current conversation
}

func newSessionPool(turns int) *sessionPool {
	if turns < 1 {
		turns = 1
	}
	return &sessionPool{turns: turns, free: make(chan *sessionSlot, 8192)}
}

func (p *sessionPool) acquire() *sessionSlot {
	select {
	case s := <-p.free:
		return s
	default:
		return &sessionSlot{id: p.last.Add(1)}
	}
}

func (p *sessionPool) release(s *sessionSlot) {
	s.used++
	if s.used >= p.turns {
		s.used, s.gen = 0, s.gen+1
	}
	select {
	case p.free <- s:
	default: // more slots than the pool keeps: drop this one
	}
}

// do sends one request and reads the whole answer. ok is a 200 read to
// the end; otherwise status (0: no answer) and err say what happened.
func (t *target) do(ctx context.Context, c *http.Client) (status int, err error) {
	body, release := t.next()
	defer release()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// outcome is what one load run saw.
type outcome struct {
	ok, failed  int
	late        int             // open loop: sends more than lateSlack behind schedule
	statuses    map[int]int     // non-200 answers by status (0: transport error)
	firstErr    string          // the first transport error, for the report
	lat         []time.Duration // latencies of the successes, sorted by finish()
	elapsed     time.Duration
	maxInFlight int64
}

func (o *outcome) add(status int, err error, d time.Duration) {
	if err == nil && status == http.StatusOK {
		o.ok++
		o.lat = append(o.lat, d)
		return
	}
	o.failed++
	if o.statuses == nil {
		o.statuses = map[int]int{}
	}
	if err != nil {
		status = 0
		if o.firstErr == "" {
			o.firstErr = err.Error()
		}
	}
	o.statuses[status]++
}

func (o *outcome) merge(p *outcome) {
	o.ok += p.ok
	o.failed += p.failed
	o.late += p.late
	o.lat = append(o.lat, p.lat...)
	for k, v := range p.statuses {
		if o.statuses == nil {
			o.statuses = map[int]int{}
		}
		o.statuses[k] += v
	}
	if o.firstErr == "" {
		o.firstErr = p.firstErr
	}
	o.elapsed += p.elapsed
	o.maxInFlight = max(o.maxInFlight, p.maxInFlight)
}

func (o *outcome) finish() { slices.Sort(o.lat) }

// total is the number of requests sent.
func (o *outcome) total() int { return o.ok + o.failed }

// successRate is the share of requests answered 200, in [0, 1].
func (o *outcome) successRate() float64 {
	if o.total() == 0 {
		return 0
	}
	return float64(o.ok) / float64(o.total())
}

// rps is successes per second of the run.
func (o *outcome) rps() float64 {
	if o.elapsed <= 0 {
		return 0
	}
	return float64(o.ok) / o.elapsed.Seconds()
}

// pct is the p-th percentile (0 < p ≤ 100) of the sorted latencies, by the
// nearest-rank method; 0 when there are none.
func (o *outcome) pct(p float64) time.Duration {
	if len(o.lat) == 0 {
		return 0
	}
	i := int(float64(len(o.lat))*p/100+0.999999) - 1
	return o.lat[min(max(i, 0), len(o.lat)-1)]
}

// closedLoop runs workers goroutines, each sending its next request as soon
// as the previous one is answered, for d.
func closedLoop(ctx context.Context, c *http.Client, t *target, workers int, d time.Duration) *outcome {
	var mu sync.Mutex
	total := &outcome{}
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var o outcome
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				st, err := t.do(ctx, c)
				o.add(st, err, time.Since(t0))
			}
			mu.Lock()
			total.merge(&o)
			mu.Unlock()
		})
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	total.finish()
	return total
}

// openLoop sends rate requests per second for d, each on schedule whether
// or not earlier ones were answered (no coordinated omission), then waits
// for the answers (each bounded by requestTimeout). Latency is measured
// from the moment a request is handed to the client.
func openLoop(ctx context.Context, c *http.Client, t *target, rate float64, d time.Duration) *outcome {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	var mu sync.Mutex
	total := &outcome{}
	var inFlight, maxInFlight atomic.Int64
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; {
		now := time.Now()
		// Send everything that is due, then wait for the next one.
		for ; i < n; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.After(now) {
				break
			}
			if now.Sub(at) > lateSlack {
				mu.Lock()
				total.late++
				mu.Unlock()
			}
			wg.Go(func() {
				cur := inFlight.Add(1)
				for {
					m := maxInFlight.Load()
					if cur <= m || maxInFlight.CompareAndSwap(m, cur) {
						break
					}
				}
				t0 := time.Now()
				st, err := t.do(ctx, c)
				lat := time.Since(t0)
				inFlight.Add(-1)
				mu.Lock()
				total.add(st, err, lat)
				mu.Unlock()
			})
		}
		if i < n {
			timer.Reset(time.Until(start.Add(time.Duration(i) * interval)))
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	total.maxInFlight = maxInFlight.Load()
	total.finish()
	return total
}

// alternating sends warm+n rounds of one request to each target in turn,
// one request at a time (concurrency 1); the starting target rotates each
// round so that none always follows the same one. The first warm rounds
// are not recorded.
func alternating(ctx context.Context, c *http.Client, targets []*target, warm, n int) []*outcome {
	outs := make([]*outcome, len(targets))
	for i := range outs {
		outs[i] = &outcome{}
	}
	start := time.Now()
	for round := 0; round < warm+n && ctx.Err() == nil; round++ {
		for j := range targets {
			k := (round + j) % len(targets)
			t0 := time.Now()
			st, err := targets[k].do(ctx, c)
			d := time.Since(t0)
			if round >= warm {
				outs[k].add(st, err, d)
			}
		}
	}
	for _, o := range outs {
		o.elapsed = time.Since(start)
		o.finish()
	}
	return outs
}
