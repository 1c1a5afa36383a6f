package e2e

// The harness every black-box test of this module shares: TestMain builds
// the root module's binary once, exactly as the Dockerfile does, and
// startAgent runs it on 127.0.0.1 with free ports. See README.md.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// agentVersion is stamped into the binary under test (main.version).
const agentVersion = "0.0.0-e2e"

// agentLDFlags is the -ldflags value of the Dockerfile's go build, with
// ${VERSION} replaced; TestDockerfileBuildMatchesHarness keeps them equal.
const agentLDFlags = "-s -w -X main.version=" + agentVersion

// startTimeout bounds how long startAgent waits for the "listening" line.
const startTimeout = 15 * time.Second

// exitTimeout bounds agentProc.Wait: longer than the default
// server.shutdown_timeout_seconds (30) so a drain that overruns is reported
// as such rather than hanging the test binary.
const exitTimeout = 45 * time.Second

var (
	// repoRoot is the root module's directory (the parent of e2e/).
	repoRoot string
	// agentBinary is the path of the production-agent binary built by
	// TestMain. Tests only read it.
	agentBinary string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "e2e-agent-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The chroot tests run the binary as uid 65532: it must be able to
	// reach and execute it.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = root
	agentBinary = filepath.Join(dir, "production-agent")
	if err := buildAgent(root, agentBinary); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build production-agent:", err)
		return 1
	}
	return m.Run()
}

// buildAgent compiles the root module into out the way the Dockerfile does:
// CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=…".
func buildAgent(root, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", agentLDFlags, "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// agentProc is one running production-agent (or a wrapper such as chroot
// that execs it). Its methods are safe for concurrent use.
type agentProc struct {
	// API and Admin are the base URLs of the bound listeners, e.g.
	// "http://127.0.0.1:41234", taken from the "listening" log line.
	API, Admin string

	cmd  *exec.Cmd
	logs *logLines
	done chan struct{} // closed when the process has exited
	// exitCode and waitErr are written before done is closed.
	exitCode int
	waitErr  error
}

// logLines collects the process's output lines (stdout and stderr, in
// arrival order) and tells a waiter about the first "listening" record.
type logLines struct {
	mu        sync.Mutex
	lines     []string
	listening chan listeningRecord // buffered 1; sent once
	sent      bool
}

type listeningRecord struct {
	API   string `json:"api"`
	Admin string `json:"admin"`
	Msg   string `json:"msg"`
}

func (l *logLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if l.sent {
		return
	}
	var rec listeningRecord
	if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" && rec.API != "" {
		l.sent = true
		l.listening <- rec
	}
}

func (l *logLines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// startAgent runs agentBinary serve with -host 127.0.0.1 -port 0
// -metrics-port 0 followed by args, in a temporary working directory that
// holds a copy of the repository's config.toml, with an environment of
// only PATH, HOME and env. It returns once the "listening" line is logged
// and kills the process at cleanup.
func startAgent(t *testing.T, env map[string]string, args ...string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, filepath.Join(repoRoot, "config.toml"), filepath.Join(dir, "config.toml"), 0o644)
	full := append([]string{"serve", "-host", "127.0.0.1", "-port", "0", "-metrics-port", "0"}, args...)
	cmd := exec.Command(agentBinary, full...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env)
	return startAgentCmd(t, cmd)
}

// startAgentCmd starts cmd, whose Stdout and Stderr must be unset, and
// waits for the agent's "listening" line (startTimeout). It is the
// building block for wrappers (chroot, unshare) that end in the agent.
func startAgentCmd(t *testing.T, cmd *exec.Cmd) *agentProc {
	t.Helper()
	p := &agentProc{cmd: cmd, logs: &logLines{listening: make(chan listeningRecord, 1)}, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout pipe: %v", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("stderr pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	var readers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		readers.Go(func() {
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				p.logs.add(sc.Text())
			}
		})
	}
	go func() {
		// Wait closes the pipes only after the readers are done with them.
		readers.Wait()
		err := cmd.Wait()
		p.exitCode = cmd.ProcessState.ExitCode()
		p.waitErr = err
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(cmd.Path), strings.Join(p.Logs(), "\n"))
		}
	})
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case rec := <-p.logs.listening:
		p.API, p.Admin = "http://"+rec.API, "http://"+rec.Admin
		return p
	case <-p.done:
		t.Fatalf("%s exited (code %d, %v) before listening:\n%s", cmd.Path, p.exitCode, p.waitErr, strings.Join(p.Logs(), "\n"))
	case <-timer.C:
		t.Fatalf("%s: no \"listening\" line within %v:\n%s", cmd.Path, startTimeout, strings.Join(p.Logs(), "\n"))
	}
	return nil
}

// Logs returns the output lines captured so far.
func (p *agentProc) Logs() []string { return p.logs.snapshot() }

// Pid is the host process id of the started command.
func (p *agentProc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the started process.
func (p *agentProc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits up to exitTimeout for the process to exit and returns its exit
// code (-1 when killed by a signal). err is the error of exec.Cmd.Wait
// when it is not a plain non-zero exit, or a timeout.
func (p *agentProc) Wait() (exitCode int, err error) {
	timer := time.NewTimer(exitTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		var exit *exec.ExitError
		if errors.As(p.waitErr, &exit) {
			if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return -1, fmt.Errorf("killed by %v", ws.Signal())
			}
			return p.exitCode, nil
		}
		return p.exitCode, p.waitErr
	case <-timer.C:
		return -1, fmt.Errorf("still running after %v", exitTimeout)
	}
}

// Exited is closed when the process has exited.
func (p *agentProc) Exited() <-chan struct{} { return p.done }

// cleanEnv is PATH and HOME of the test process plus extra.
func cleanEnv(extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// httpClient bounds every request of the tests.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// httpResp is a whole answer.
type httpResp struct {
	Status int
	Header http.Header
	Body   []byte
}

// doHTTP sends body (nil: none; a string is sent verbatim, anything else as
// JSON, with Content-Type application/json) with header through client
// (nil: the shared one) and returns the whole answer.
func doHTTP(t *testing.T, client *http.Client, method, url string, header http.Header, body any) httpResp {
	t.Helper()
	if client == nil {
		client = httpClient
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatalf("request %s %s: %v", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return httpResp{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// doJSON sends body (nil: none) as JSON and returns the status and the
// response body.
func doJSON(t *testing.T, method, url string, header http.Header, body any) (int, []byte) {
	t.Helper()
	r := doHTTP(t, nil, method, url, header, body)
	return r.Status, r.Body
}

// headerOf builds a header from name, value pairs.
func headerOf(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// bearer is an Authorization: Bearer header plus name, value pairs.
func bearer(token string, kv ...string) http.Header {
	return headerOf(append([]string{"Authorization", "Bearer " + token}, kv...)...)
}

// chatBody is a /chat request body.
func chatBody(user, session, message string) map[string]any {
	return map[string]any{"user_id": user, "session_id": session, "message": message}
}

// fetchAudit is GET /audit?query on p's admin listener with header.
func fetchAudit(t *testing.T, p *agentProc, header http.Header, query string) []audRecord {
	t.Helper()
	r := doHTTP(t, nil, http.MethodGet, p.Admin+"/audit?"+query, header, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /audit?%s = %d %s; want 200", query, r.Status, r.Body)
	}
	var out struct {
		Events []audRecord `json:"events"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("GET /audit?%s body: %v", query, err)
	}
	return out.Events
}

// incidentRecord is a security incident as GET /security/incidents shows it
// (DESIGN §8).
type incidentRecord struct {
	ID                string            `json:"id"`
	Timestamp         time.Time         `json:"timestamp"`
	IncidentType      string            `json:"incident_type"`
	ThreatLevel       string            `json:"threat_level"`
	Status            string            `json:"status"`
	Source            string            `json:"source"`
	Description       string            `json:"description"`
	AffectedResources []string          `json:"affected_resources"`
	RelatedEvents     []string          `json:"related_events"`
	Metadata          map[string]string `json:"metadata"`
	ActionTaken       string            `json:"action_taken"`
}

// fetchIncidents is GET /security/incidents?query on p's admin listener
// with header; the body must be {"incidents": [...]}.
func fetchIncidents(t *testing.T, p *agentProc, header http.Header, query string) []incidentRecord {
	t.Helper()
	r := doHTTP(t, nil, http.MethodGet, p.Admin+"/security/incidents?"+query, header, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /security/incidents?%s = %d %s; want 200", query, r.Status, r.Body)
	}
	var out struct {
		Incidents *[]incidentRecord `json:"incidents"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || out.Incidents == nil {
		t.Fatalf("GET /security/incidents?%s body %s: want {\"incidents\": [...]} (%v)", query, r.Body, err)
	}
	return *out.Incidents
}

// pollUntil calls cond every interval until it returns true or the
// deadline passes; it reports whether cond became true.
func pollUntil(ctx context.Context, deadline time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// copyFile copies src to dst with the given mode.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatalf("copy: %v", err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatalf("copy: %v", err)
	}
}

// keygen runs `production-agent keygen` and returns the key (line 1) and
// the keys-file line (line 2), checking the line's shape and that it does
// not hold the key.
func keygen(t *testing.T, user, role string) (key, line string) {
	t.Helper()
	out, err := exec.Command(agentBinary, "keygen", "-user", user, "-role", role).Output()
	if err != nil {
		t.Fatalf("keygen -user %s -role %s: %v", user, role, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("keygen printed %q; want the key and the keys-file line", out)
	}
	key, line = strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
	if f := strings.Fields(line); len(f) != 3 || f[1] != user || f[2] != role || len(f[0]) != 64 || strings.Contains(line, key) {
		t.Fatalf("keygen keys-file line %q; want \"<sha256 hex> %s %s\" without the key", line, user, role)
	}
	return key, line
}

// errorObject reads an error document, {"error": {"type", "message",
// "trace_id"}}: a JSON error answer or the data of an SSE error event. ok is
// false for anything else.
func errorObject(data []byte) (typ, traceID string, ok bool) {
	var e struct {
		Error *struct {
			Type    string `json:"type"`
			TraceID string `json:"trace_id"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == nil {
		return "", "", false
	}
	return e.Error.Type, e.Error.TraceID, true
}
