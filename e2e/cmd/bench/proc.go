package main

// Child processes (the agent and the harness's own peers) and what Linux
// tells about them in /proc: CPU time, resident and peak memory.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// agentVersion is stamped into the binary the harness builds.
const agentVersion = "0.0.0-bench"

// startTimeout bounds how long a child may take to say it is listening.
const startTimeout = 20 * time.Second

// stopTimeout bounds a child's drain after SIGTERM before it is killed.
const stopTimeout = 15 * time.Second

// buildAgent compiles the root module the way the Dockerfile does into dir
// and returns the binary's path.
func buildAgent(root, dir string) (string, error) {
	out := filepath.Join(dir, "production-agent")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+agentVersion, "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %w\n%s", root, err, b)
	}
	return out, nil
}

// findRoot checks that dir holds the root module (module production-agent).
func findRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("root module: %w (run in e2e/ or pass -root)", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if strings.TrimSpace(first) != "module production-agent" {
		return "", fmt.Errorf("%s is not the production-agent module (pass -root)", abs)
	}
	return abs, nil
}

// child is a running process. Its output goes straight to a file, not
// through a pipe this process would have to read: at thousands of log
// lines per second, draining a pipe costs the harness (which shares the
// cores with the process it measures) several µs per request, and the
// agent writes a line per request where the peers write none.
type child struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed when the process has exited
	waitErr error
	out     string // path of the output file
}

// tailLines is how many output lines Tail returns; tailBytes bounds how
// much of the output file it reads to find them.
const (
	tailLines = 40
	tailBytes = 64 << 10
)

// Tail is the last output lines.
func (c *child) Tail() string {
	f, err := os.Open(c.out)
	if err != nil {
		return fmt.Sprintf("(output unavailable: %v)", err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Sprintf("(output unavailable: %v)", err)
	}
	off := max(size-tailBytes, 0)
	b := make([]byte, size-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(output unavailable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:] // the first may be cut
	}
	return strings.Join(lines[max(len(lines)-tailLines, 0):], "\n")
}

// Pid is the child's process id.
func (c *child) Pid() int { return c.cmd.Process.Pid }

// outputPoll is how often start reads a child's new output while waiting
// for the line that says it is listening.
const outputPoll = time.Millisecond

// start runs cmd with its output in a new file and calls match on every
// output line until it returns true (startTimeout).
func start(name string, cmd *exec.Cmd, match func(line string) bool) (*child, error) {
	f, err := os.CreateTemp("", "bench-"+name+"-*.log")
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own descriptor
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), out: f.Name()}
	setProcAttr(cmd)
	cmd.Stdout, cmd.Stderr = f, f
	c.started = time.Now()
	if err := cmd.Start(); err != nil {
		os.Remove(c.out)
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	fail := func(err error) (*child, error) {
		c.kill()
		os.Remove(c.out)
		return nil, err
	}
	r, err := os.Open(c.out)
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	br := bufio.NewReader(r)
	var partial []byte // a line not yet ended
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(outputPoll)
	defer tick.Stop()
	for {
		exited := false
		select {
		case <-c.done:
			exited = true // read what it wrote before exiting, then report
		default:
		}
		for {
			chunk, err := br.ReadSlice('\n')
			partial = append(partial, chunk...)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil { // io.EOF: no more output yet
				break
			}
			if match(strings.TrimRight(string(partial), "\r\n")) {
				return c, nil
			}
			partial = partial[:0]
		}
		if exited {
			return fail(fmt.Errorf("%s exited before listening (%v):\n%s", name, c.waitErr, c.Tail()))
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("%s: not listening after %v:\n%s", name, startTimeout, c.Tail()))
		}
		<-tick.C
	}
}

// stop asks the child to drain (SIGTERM), kills it after stopTimeout and
// removes its output.
func (c *child) stop() {
	defer os.Remove(c.out)
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		c.kill()
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// agent is a running production-agent.
type agent struct {
	*child
	api, admin string // base URLs
}

// agentOpts configure one agent process.
type agentOpts struct {
	binary string
	sets   []string // -set overrides
	env    []string // KEY=value beyond PATH and HOME
	port   int      // API port; 0: any free one
}

// startAgent runs the binary in an empty working directory (no
// config.toml: built-in defaults plus opts.sets) with an environment of
// only PATH, HOME and opts.env, and returns when it logs "listening".
func startAgent(opts agentOpts) (*agent, error) {
	dir, err := os.MkdirTemp("", "bench-agent-")
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "-host", "127.0.0.1", "-port", strconv.Itoa(opts.port), "-metrics-port", "0"}
	for _, s := range opts.sets {
		args = append(args, "-set", s)
	}
	cmd := exec.Command(opts.binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, opts.env...)
	a := &agent{}
	var rec struct {
		Msg   string `json:"msg"`
		API   string `json:"api"`
		Admin string `json:"admin"`
	}
	var recMu sync.Mutex
	c, err := start("production-agent", cmd, func(line string) bool {
		if !strings.Contains(line, `"listening"`) {
			return false
		}
		recMu.Lock()
		defer recMu.Unlock()
		return json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" && rec.API != ""
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { <-c.done; os.RemoveAll(dir) }()
	recMu.Lock()
	a.child, a.api = c, "http://"+rec.API
	if rec.Admin != "" {
		a.admin = "http://" + rec.Admin
	}
	recMu.Unlock()
	return a, nil
}

// peer is one of the harness's own servers (mock, proxy, baseline), run as
// a separate process (this binary re-executed with -role) so that its CPU
// and memory are its own.
type peer struct {
	*child
	url string
}

func startPeer(role string, args ...string) (*peer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{"-role", role}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var addr string
	var mu sync.Mutex
	c, err := start(role, cmd, func(line string) bool {
		a, ok := strings.CutPrefix(line, "listening ")
		if ok {
			mu.Lock()
			addr = a
			mu.Unlock()
		}
		return ok
	})
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return &peer{child: c, url: "http://" + addr}, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls url every interval until it answers 200 (or deadline)
// and returns when that happened.
func waitReady(ctx context.Context, c *http.Client, url string, interval, deadline time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, err
		}
		if resp, err := c.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s not ready within %v", url, deadline)
		case <-tick.C:
		}
	}
}

// pause waits d (or until ctx ends).
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// cpuTime is the user+system CPU time the process has used so far
// (/proc/PID/stat fields 14 and 15, in clock ticks).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / time.Duration(clockTicks()), nil
}

// clockTicks is the kernel's USER_HZ (AT_CLKTCK from our own auxiliary
// vector; 100 on every common Linux when it cannot be read).
var clockTicks = sync.OnceValue(func() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	const atClkTck = 17
	for i := 0; i+16 <= len(b); i += 16 {
		k, v := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
		if k == atClkTck && v > 0 {
			return int64(v)
		}
		if k == 0 {
			break
		}
	}
	return 100
})

// statusBytes reads a "kB" line of /proc/PID/status (VmRSS, VmHWM) in bytes.
func statusBytes(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			kb, err := strconv.ParseInt(v, 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, key)
}

// rssSampler records the highest VmRSS of a process, sampled every
// interval, until stop is called; stop returns the maximum of the samples
// and the kernel's own high-water mark (VmHWM).
func rssSampler(pid int, interval time.Duration) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if v, err := statusBytes(pid, "VmRSS"); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-done:
				if v, err := statusBytes(pid, "VmHWM"); err == nil {
					peak = max(peak, v)
				}
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-result
	}
}

// fetchProfile saves a pprof endpoint's answer to path.
func fetchProfile(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s %s (is observability.pprof_enabled wired to /debug/pprof?)", url, resp.Status, bytes.TrimSpace(b))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
