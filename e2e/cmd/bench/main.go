// Command bench is the load harness of production-agent (issue 10). Run in
// e2e/:
//
//	go run ./cmd/bench            # full run, about five minutes
//	go run ./cmd/bench -quick     # every scenario for a few hundred ms (CI smoke)
//
// It builds the binary as the Dockerfile does (or takes -binary), starts
// beside it an OpenAI-compatible mock upstream, a bare net/http baseline
// server and a bare httputil.ReverseProxy (each in its own process: this
// program re-executed with -role), runs the six scenarios of
// docs/performance.md side by side with those references, and prints one
// markdown table on stdout (progress goes to stderr). It exits 1 when the
// harness itself failed (a process did not start, a scenario could not
// run), never because a target was missed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	quick  bool
	binary string
	root   string
	only   string
	sets   multiFlag
	pprof  string
	turns  int

	concurrency int           // scenario 1
	rounds      int           // scenarios 1 and 3: alternating rounds
	phase       time.Duration // scenario 1: one round's run per side
	samples     int           // scenario 2: requests per target
	cpuRate     float64       // scenario 3
	cpuDur      time.Duration
	memRate     float64 // scenario 4
	memLatency  time.Duration
	memDur      time.Duration
	susRate     float64 // scenario 5
	susLatency  time.Duration
	susDur      time.Duration
	starts      int           // scenario 6
	idleWait    time.Duration // scenario 6: settle time before idle RSS
	profileTime time.Duration // with -pprof: length of each CPU profile

	role, upstream string // peer mode (internal)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.quick, "quick", false, "smoke run: a few hundred ms per scenario (explicit flags still win)")
	fs.StringVar(&c.binary, "binary", "", "production-agent binary to test (default: build -root as the Dockerfile does)")
	fs.StringVar(&c.root, "root", "..", "the root module's directory (built when -binary is not given)")
	fs.StringVar(&c.only, "only", "", "comma-separated scenarios to run, e.g. 1,3 (default all)")
	fs.Var(&c.sets, "set", "extra -set section.key=value for every agent (repeatable)")
	fs.StringVar(&c.pprof, "pprof", "", "directory for CPU and heap profiles fetched from the agent's /debug/pprof (sets observability.pprof_enabled)")
	fs.IntVar(&c.turns, "turns", 1, "turns per conversation before a user moves to a new session (1: every request starts one)")
	fs.IntVar(&c.concurrency, "concurrency", 32, "scenario 1: closed-loop workers, the same for both sides")
	fs.IntVar(&c.rounds, "rounds", 3, "scenarios 1 and 3: alternating rounds per side")
	fs.DurationVar(&c.phase, "phase", 3*time.Second, "scenario 1: length of one round per side")
	fs.IntVar(&c.samples, "samples", 2000, "scenario 2: requests per target at concurrency 1")
	fs.Float64Var(&c.cpuRate, "cpu-rate", 300, "scenario 3: requests per second")
	fs.DurationVar(&c.cpuDur, "cpu-duration", 12*time.Second, "scenario 3: measured time per side (split over -rounds)")
	fs.Float64Var(&c.memRate, "mem-rate", 500, "scenario 4: requests per second")
	fs.DurationVar(&c.memLatency, "mem-latency", 1500*time.Millisecond, "scenario 4: upstream latency")
	fs.DurationVar(&c.memDur, "mem-duration", 30*time.Second, "scenario 4: length of the run per side")
	fs.Float64Var(&c.susRate, "sus-rate", 1000, "scenario 5: requests per second")
	fs.DurationVar(&c.susLatency, "sus-latency", time.Second, "scenario 5: upstream latency")
	fs.DurationVar(&c.susDur, "sus-duration", 30*time.Second, "scenario 5: length of the run per side")
	fs.IntVar(&c.starts, "starts", 5, "scenario 6: process starts (the median is reported)")
	fs.DurationVar(&c.idleWait, "idle-wait", time.Second, "scenario 6: time after ready before reading idle RSS")
	fs.DurationVar(&c.profileTime, "profile-time", 10*time.Second, "with -pprof: length of each CPU profile")
	fs.StringVar(&c.role, "role", "", "internal: run as a peer (mock, baseline, proxy)")
	fs.StringVar(&c.upstream, "upstream", "", "internal: the proxy's upstream base URL")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		quick("rounds", func() { c.rounds = 1 })
		quick("phase", func() { c.phase = 300 * time.Millisecond })
		quick("samples", func() { c.samples = 100 })
		quick("cpu-duration", func() { c.cpuDur = 500 * time.Millisecond })
		quick("mem-duration", func() { c.memDur = 300 * time.Millisecond })
		quick("sus-duration", func() { c.susDur = 300 * time.Millisecond })
		quick("starts", func() { c.starts = 1 })
		quick("idle-wait", func() { c.idleWait = 200 * time.Millisecond })
		quick("profile-time", func() { c.profileTime = time.Second })
	}
	if c.concurrency < 1 || c.rounds < 1 || c.samples < 1 || c.starts < 1 ||
		c.cpuRate <= 0 || c.memRate <= 0 || c.susRate <= 0 || c.phase <= 0 || c.cpuDur <= 0 || c.memDur <= 0 || c.susDur <= 0 {
		return nil, errors.New("counts, rates and durations must be positive")
	}
	return c, nil
}

// scenarios in the order they run: startup first, on a process that has
// seen no load, then the table's order.
var scenarioOrder = []string{"6", "1", "2", "3", "4", "5"}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	if cfg.role != "" {
		return runRole(cfg.role, cfg.upstream, stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	b := &bench{cfg: cfg, ctx: ctx, client: newClient(), log: stderr}
	b.load0 = loadAverage()
	if cfg.binary == "" {
		root, err := findRoot(cfg.root)
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "bench-build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b.logf("building %s", root)
		if b.binary, err = buildAgent(root, dir); err != nil {
			return err
		}
	} else {
		b.binary = cfg.binary
	}
	if cfg.pprof != "" {
		if err := os.MkdirAll(cfg.pprof, 0o755); err != nil {
			return err
		}
	}
	if b.mock, err = startPeer("mock"); err != nil {
		return err
	}
	defer b.mock.stop()

	want := map[string]bool{}
	for s := range strings.SplitSeq(cfg.only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	scenarios := map[string]func() error{
		"1": b.throughput, "2": b.latency, "3": b.cpu, "4": b.memory, "5": b.sustained, "6": b.startup,
	}
	for _, n := range scenarioOrder {
		if len(want) > 0 && !want[n] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		b.logf("scenario %s", n)
		if err := scenarios[n](); err != nil {
			b.failed = true
			b.add(row{n: n, metric: "scenario " + n, ours: "error", verdict: "ERROR"})
			b.note("scenario %s failed: %v", n, err)
			b.logf("scenario %s failed: %v", n, err)
		}
	}
	b.report(stdout, args)
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted")
	case b.failed:
		return errors.New("some scenarios could not run (see the notes)")
	}
	return nil
}

// loadAverage is the 1-minute load average, for labelling the run.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// hostLine describes the machine for the report.
func hostLine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}
