package main

// The six scenarios of docs/performance.md.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// chatMessage is every /chat message: plain prose that asks for no tool
// and trips no detector, so every turn is one model call.
const chatMessage = "Hello there! Please give me a short, friendly summary of the kinds of questions you are able to help me with."

// Scenario 1: closed-loop throughput of /chat with the embedded model
// against the baseline server, same concurrency, alternating rounds.
func (b *bench) throughput() error {
	base, err := startPeer("baseline")
	if err != nil {
		return err
	}
	defer b.stop(base.child)
	ag, err := b.startAgent(true, 0, 0)
	if err != nil {
		return err
	}
	defer b.stop(ag.child)
	ours := chatTarget("production-agent", ag.api+"/chat", newSessionPool(b.cfg.turns), chatMessage)
	ref := chatTarget("baseline", base.url+"/chat", newSessionPool(b.cfg.turns), chatMessage)
	c := b.cfg.concurrency
	warm := min(b.cfg.phase, time.Second)
	closedLoop(b.ctx, b.client, ours, c, warm)
	closedLoop(b.ctx, b.client, ref, c, warm)
	o, r := &outcome{}, &outcome{}
	// CPU of the server and of this harness (the load generator) while
	// each side runs: the two share the machine's cores.
	var cpu [2]struct{ server, harness time.Duration }
	for round := range b.cfg.rounds {
		pair := []struct {
			t   *target
			acc *outcome
			pid int
			cpu *struct{ server, harness time.Duration }
		}{{ours, o, ag.Pid(), &cpu[0]}, {ref, r, base.Pid(), &cpu[1]}}
		if round%2 == 1 {
			pair[0], pair[1] = pair[1], pair[0]
		}
		for _, p := range pair {
			s0, err1 := cpuTime(p.pid)
			h0, err2 := cpuTime(os.Getpid())
			p.acc.merge(closedLoop(b.ctx, b.client, p.t, c, b.cfg.phase))
			s1, err3 := cpuTime(p.pid)
			h1, err4 := cpuTime(os.Getpid())
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				// A server that died is the better report: its exit and output.
				return errors.Join(checkAlive(ag.child), checkAlive(base.child), err)
			}
			p.cpu.server += s1 - s0
			p.cpu.harness += h1 - h0
		}
	}
	o.finish()
	r.finish()
	if err := checkAlive(ag.child); err != nil {
		return err
	}
	ratio := 0.0
	if r.rps() > 0 {
		ratio = o.rps() / r.rps()
	}
	b.add(row{n: "1", metric: fmt.Sprintf("/chat throughput, embedded model, c=%d (req/s)", c),
		ours: fmt.Sprintf("%.0f", o.rps()), ref: fmt.Sprintf("%.0f baseline", r.rps()),
		target: fmt.Sprintf("ratio ≥ 0.60: %.2f", ratio), verdict: verdict(ratio >= 0.6 && o.failed == 0 && o.ok > 0)})
	b.add(row{n: "1", metric: "answers 200", ours: pctStr(o.successRate()) + fmt.Sprintf(" of %d", o.total()),
		ref: pctStr(r.successRate()) + fmt.Sprintf(" of %d", r.total()), target: "100 %", verdict: verdict(o.failed == 0 && o.ok > 0)})
	b.note("scenario 1: latency at c=%d: production-agent p50 %s p99 %s; baseline p50 %s p99 %s.",
		c, us(o.pct(50)), us(o.pct(99)), us(r.pct(50)), us(r.pct(99)))
	perReq := func(d time.Duration, o *outcome) string {
		if o.total() == 0 {
			return "-"
		}
		return usNum(d / time.Duration(o.total()))
	}
	b.note("scenario 1: CPU per request, server / this harness (µs): production-agent %s / %s; baseline %s / %s.",
		perReq(cpu[0].server, o), perReq(cpu[0].harness, o), perReq(cpu[1].server, r), perReq(cpu[1].harness, r))
	if f := failures(o); f != "" {
		b.note("scenario 1: production-agent: %s", f)
	}
	if b.cfg.pprof != "" {
		b.profileCPU(ag, "chat-embedded", func(d time.Duration) { closedLoop(b.ctx, b.client, ours, c, d) })
	}
	return nil
}

// Scenario 2: latency added at concurrency 1. Each round sends one request
// straight to the mock (0 ms), one through the bare reverse proxy and one
// /chat through the agent (provider openai → mock); added = percentile of
// the path minus the same percentile of the direct calls.
func (b *bench) latency() error {
	proxy, ag, stop, err := b.startProxyAndAgent()
	if err != nil {
		return err
	}
	defer stop()
	body := openAIBody(chatMessage)
	direct := staticTarget("mock", b.mock.url+"/v1/chat/completions", body)
	viaProxy := staticTarget("proxy", proxy.url+"/v1/chat/completions", body)
	ours := chatTarget("production-agent", ag.api+"/chat", newSessionPool(b.cfg.turns), chatMessage)
	warm := max(20, b.cfg.samples/10)
	outs := alternating(b.ctx, b.client, []*target{direct, viaProxy, ours}, warm, b.cfg.samples)
	if err := checkAlive(ag.child); err != nil {
		return err
	}
	d, p, o := outs[0], outs[1], outs[2]
	for _, x := range []struct {
		name string
		o    *outcome
	}{{"mock", d}, {"proxy", p}, {"production-agent", o}} {
		if x.o.ok == 0 {
			return fmt.Errorf("no successful request to %s: %s", x.name, failures(x.o))
		}
		if f := failures(x.o); f != "" {
			b.note("scenario 2: %s: %s", x.name, f)
		}
	}
	for _, q := range []float64{50, 99} {
		ourAdded, refAdded := o.pct(q)-d.pct(q), p.pct(q)-d.pct(q)
		limit := time.Duration(1.25 * float64(refAdded))
		b.add(row{n: "2", metric: fmt.Sprintf("added p%.0f at c=1, openai → mock 0 ms (µs)", q),
			ours: usNum(ourAdded), ref: usNum(refAdded) + " proxy",
			target: "≤ 1.25× proxy = " + usNum(limit), verdict: verdict(ourAdded <= limit && o.failed == 0)})
	}
	b.note("scenario 2: %d requests per path; direct to the mock p50 %s p99 %s; proxy p50 %s p99 %s; production-agent p50 %s p99 %s.",
		o.total(), us(d.pct(50)), us(d.pct(99)), us(p.pct(50)), us(p.pct(99)), us(o.pct(50)), us(o.pct(99)))
	return nil
}

// Scenario 3: CPU per request of each process at a fixed rate through the
// provider path (mock 0 ms), from /proc/PID/stat utime+stime before and
// after, in alternating rounds.
func (b *bench) cpu() error {
	proxy, ag, stop, err := b.startProxyAndAgent()
	if err != nil {
		return err
	}
	defer stop()
	ours := chatTarget("production-agent", ag.api+"/chat", newSessionPool(b.cfg.turns), chatMessage)
	ref := staticTarget("proxy", proxy.url+"/v1/chat/completions", openAIBody(chatMessage))
	warm := min(b.cfg.cpuDur/4, time.Second)
	openLoop(b.ctx, b.client, ours, b.cfg.cpuRate, warm)
	openLoop(b.ctx, b.client, ref, b.cfg.cpuRate, warm)
	per := b.cfg.cpuDur / time.Duration(b.cfg.rounds)
	sides, err := cpuRounds(b.cfg.rounds, []cpuSide{{t: ours, pid: ag.Pid()}, {t: ref, pid: proxy.Pid()}},
		func(t *target) *outcome { return openLoop(b.ctx, b.client, t, b.cfg.cpuRate, per) })
	if err != nil {
		return err
	}
	if err := checkAlive(ag.child); err != nil {
		return err
	}
	ourCPU, refCPU := sides[0].perRequest(), sides[1].perRequest()
	b.add(row{n: "3", metric: fmt.Sprintf("CPU per request at %.0f req/s, openai → mock 0 ms (µs)", b.cfg.cpuRate),
		ours: usNum(ourCPU), ref: usNum(refCPU) + " proxy", target: "≤ 100",
		verdict: verdict(ourCPU <= 100*time.Microsecond && sides[0].o.failed == 0 && sides[0].o.ok > 0)})
	b.note("scenario 3: %d requests per side; CPU %v (production-agent) and %v (proxy), clock tick %v.",
		sides[0].o.total(), sides[0].cpu, sides[1].cpu, time.Second/time.Duration(clockTicks()))
	for _, s := range sides {
		if f := failures(s.o); f != "" {
			b.note("scenario 3: %s: %s", s.t.name, f)
		}
	}
	// The same, closed loop at -concurrency: each process as busy as the
	// load generator can make it, where a wake-up serves several requests
	// (the regime whose figures match the reference ones). A note,
	// not a row: the table's row is the fixed rate.
	sides, err = cpuRounds(b.cfg.rounds, []cpuSide{{t: ours, pid: ag.Pid()}, {t: ref, pid: proxy.Pid()}},
		func(t *target) *outcome { return closedLoop(b.ctx, b.client, t, b.cfg.concurrency, per) })
	if err != nil {
		return err
	}
	if err := checkAlive(ag.child); err != nil {
		return err
	}
	b.note("scenario 3: closed loop at c=%d instead of a fixed rate: CPU per request %s µs at %.0f req/s (production-agent), %s µs at %.0f req/s (proxy).",
		b.cfg.concurrency, usNum(sides[0].perRequest()), sides[0].o.rps(), usNum(sides[1].perRequest()), sides[1].o.rps())
	for _, s := range sides {
		if f := failures(s.o); f != "" {
			b.note("scenario 3, closed loop: %s: %s", s.t.name, f)
		}
	}
	if b.cfg.pprof != "" {
		b.profileCPU(ag, "chat-openai", func(d time.Duration) { openLoop(b.ctx, b.client, ours, b.cfg.cpuRate, d) })
	}
	return nil
}

// cpuSide is one process measured by cpuRounds: the target that loads it,
// its PID, and what the rounds gave (CPU time used, requests answered).
type cpuSide struct {
	t   *target
	pid int
	cpu time.Duration
	o   *outcome
}

// perRequest is the CPU time per request sent (0 when none was).
func (s *cpuSide) perRequest() time.Duration {
	if s.o.total() == 0 {
		return 0
	}
	return s.cpu / time.Duration(s.o.total())
}

// cpuRounds runs load against each side in turn for rounds rounds, the
// order alternating, and adds each process's utime+stime over its own
// turns (from /proc/PID/stat before and after).
func cpuRounds(rounds int, sides []cpuSide, load func(*target) *outcome) ([]cpuSide, error) {
	for i := range sides {
		sides[i].cpu, sides[i].o = 0, &outcome{}
	}
	for round := range rounds {
		for k := range sides {
			s := &sides[k]
			if round%2 == 1 {
				s = &sides[len(sides)-1-k]
			}
			before, err := cpuTime(s.pid)
			if err != nil {
				return nil, err
			}
			s.o.merge(load(s.t))
			after, err := cpuTime(s.pid)
			if err != nil {
				return nil, err
			}
			s.cpu += after - before
		}
	}
	return sides, nil
}

// heldResult is one side of a fixed-rate run against a slow upstream.
type heldResult struct {
	o    *outcome
	peak int64 // bytes
}

// held runs rate req/s for dur against a mock answering after latency,
// first through a fresh agent then through a fresh proxy, and samples each
// process's resident memory.
func (b *bench) held(n, name string, rate float64, latency, dur time.Duration) (ours, ref heldResult, err error) {
	ag, err := b.startAgent(false, latency, 0)
	if err != nil {
		return ours, ref, err
	}
	t := chatTarget("production-agent", ag.api+"/chat", newSessionPool(b.cfg.turns), chatMessage)
	stop := rssSampler(ag.Pid(), 100*time.Millisecond)
	var prof sync.WaitGroup
	if b.cfg.pprof != "" && ag.admin != "" {
		prof.Go(func() {
			pause(b.ctx, dur/2)
			path := filepath.Join(b.cfg.pprof, name+".heap.pprof")
			if err := fetchProfile(b.ctx, ag.admin+"/debug/pprof/heap", path, 30*time.Second); err != nil {
				b.note("pprof: %v", err)
			}
		})
	}
	var runtimeStats string
	if ag.admin != "" {
		prof.Go(func() {
			// Three quarters in, the in-flight count is at its steady level.
			pause(b.ctx, dur*3/4)
			runtimeStats = scrapeRuntime(b.ctx, ag.admin+"/metrics")
		})
	}
	ours.o = openLoop(b.ctx, b.client, t, rate, dur)
	prof.Wait()
	ours.peak = stop()
	if runtimeStats != "" {
		b.note("scenario %s: production-agent at 3/4 of the run (its /metrics): %s.", n, runtimeStats)
	}
	err = checkAlive(ag.child)
	b.stop(ag.child)
	if err != nil {
		return ours, ref, err
	}
	proxy, err := startPeer("proxy", "-upstream", b.mock.url)
	if err != nil {
		return ours, ref, err
	}
	defer b.stop(proxy.child)
	rt := staticTarget("proxy", proxy.url+strings.TrimPrefix(b.mockBase(latency), b.mock.url)+"/v1/chat/completions", openAIBody(chatMessage))
	stop = rssSampler(proxy.Pid(), 100*time.Millisecond)
	ref.o = openLoop(b.ctx, b.client, rt, rate, dur)
	ref.peak = stop()
	for _, s := range []struct {
		n string
		o *outcome
	}{{"production-agent", ours.o}, {"proxy", ref.o}} {
		if f := failures(s.o); f != "" {
			b.note("scenario %s: %s: %s", n, s.n, f)
		}
	}
	return ours, ref, nil
}

// Scenario 4: memory under held load (500 req/s, 1.5 s upstream ≈ 750 in
// flight): peak RSS and success rate.
func (b *bench) memory() error {
	ours, ref, err := b.held("4", "held-load", b.cfg.memRate, b.cfg.memLatency, b.cfg.memDur)
	if err != nil {
		return err
	}
	b.add(row{n: "4", metric: fmt.Sprintf("peak RSS, %.0f req/s for %v, upstream %v (MiB)", b.cfg.memRate, b.cfg.memDur, b.cfg.memLatency),
		ours: mib(ours.peak), ref: mib(ref.peak) + " proxy", target: "≤ 60", verdict: verdict(ours.peak <= 60<<20)})
	b.add(row{n: "4", metric: "success rate", ours: pctStr(ours.o.successRate()) + fmt.Sprintf(" of %d", ours.o.total()),
		ref: pctStr(ref.o.successRate()) + " proxy", target: "100 %", verdict: verdict(ours.o.failed == 0 && ours.o.ok > 0)})
	b.note("scenario 4: most requests in flight at once: %d (production-agent), %d (proxy).", ours.o.maxInFlight, ref.o.maxInFlight)
	return nil
}

// Scenario 5: sustained rate (1,000 req/s, 1 s upstream): success rate and
// added p99 (p99 minus the upstream's latency).
func (b *bench) sustained() error {
	ours, ref, err := b.held("5", "sustained", b.cfg.susRate, b.cfg.susLatency, b.cfg.susDur)
	if err != nil {
		return err
	}
	lat := b.cfg.susLatency
	ourAdded, refAdded := ours.o.pct(99)-lat, ref.o.pct(99)-lat
	b.add(row{n: "5", metric: fmt.Sprintf("success rate, %.0f req/s for %v, upstream %v", b.cfg.susRate, b.cfg.susDur, lat),
		ours: pctStr(ours.o.successRate()) + fmt.Sprintf(" of %d", ours.o.total()), ref: pctStr(ref.o.successRate()) + " proxy",
		target: "100 %", verdict: verdict(ours.o.failed == 0 && ours.o.ok > 0)})
	b.add(row{n: "5", metric: "added p99 (ms)", ours: msNum(ourAdded), ref: msNum(refAdded) + " proxy",
		target: "≤ 20", verdict: verdict(ours.o.ok > 0 && ourAdded <= 20*time.Millisecond)})
	b.note("scenario 5: p50 %s, p99 %s (production-agent); p50 %s, p99 %s (proxy); peak RSS %s and %s MiB; most in flight %d and %d.",
		ms(ours.o.pct(50)), ms(ours.o.pct(99)), ms(ref.o.pct(50)), ms(ref.o.pct(99)), mib(ours.peak), mib(ref.peak),
		ours.o.maxInFlight, ref.o.maxInFlight)
	return nil
}

// Scenario 6: binary size, time from exec to the first 200 of
// /health/ready, and resident memory once idle (median of -starts).
func (b *bench) startup() error {
	st, err := os.Stat(b.binary)
	if err != nil {
		return err
	}
	var readies []time.Duration
	var rss []int64
	for range b.cfg.starts {
		port, err := freePort()
		if err != nil {
			return err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/health/ready", port)
		type result struct {
			at  time.Time
			err error
		}
		res := make(chan result, 1)
		pollCtx, cancel := context.WithCancel(b.ctx)
		// Poll from before the exec so the first 200 is seen within a
		// millisecond of the listener being ready.
		go func() {
			at, err := waitReady(pollCtx, b.client, url, time.Millisecond, startTimeout)
			res <- result{at, err}
		}()
		ag, err := b.startAgent(true, 0, port)
		if err != nil {
			cancel()
			<-res
			return err
		}
		r := <-res
		cancel()
		if r.err != nil {
			b.stop(ag.child)
			return r.err
		}
		readies = append(readies, r.at.Sub(ag.started))
		pause(b.ctx, b.cfg.idleWait)
		v, err := statusBytes(ag.Pid(), "VmRSS")
		b.stop(ag.child)
		if err != nil {
			return err
		}
		rss = append(rss, v)
	}
	proxy, err := startPeer("proxy", "-upstream", b.mock.url)
	if err != nil {
		return err
	}
	pause(b.ctx, b.cfg.idleWait)
	proxyRSS, err := statusBytes(proxy.Pid(), "VmRSS")
	b.stop(proxy.child)
	if err != nil {
		return err
	}
	slices.Sort(readies)
	slices.Sort(rss)
	ready, idle := readies[len(readies)/2], rss[len(rss)/2]
	b.add(row{n: "6", metric: "idle RSS (MiB)", ours: mib(idle), ref: mib(proxyRSS) + " proxy", target: "≤ 15", verdict: verdict(idle <= 15<<20)})
	b.add(row{n: "6", metric: "binary size (MiB)", ours: mib(st.Size()), target: "≤ 20", verdict: verdict(st.Size() <= 20<<20)})
	b.add(row{n: "6", metric: "start → /health/ready 200 (ms)", ours: msNum(ready), target: "≤ 100", verdict: verdict(ready <= 100*time.Millisecond)})
	b.note("scenario 6: %d starts; ready %v, idle RSS %v MiB.", b.cfg.starts, readies, mibList(rss))
	return nil
}
