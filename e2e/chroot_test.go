//go:build linux

package e2e

// The container image without a container engine: the binary built as the
// Dockerfile builds it, alone in an otherwise empty root file system laid
// out like gcr.io/distroless/static-debian12:nonroot (no shell, no libc,
// no zoneinfo; /etc/passwd with nonroot 65532, the CA bundle at
// /etc/ssl/certs/ca-certificates.crt, /data owned by 65532), run as
// 65532:65532 with chroot(1), and as PID 1 of a new PID namespace with
// unshare(1). Needs root (CI runs as root), coreutils and util-linux.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hostCABundle is Debian's CA bundle (package ca-certificates), the same
// file distroless ships at the same path.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// requireChrootTools fails (never skips) when the test cannot do its job:
// it must run as root with chroot and unshare available, as in CI.
func requireChrootTools(t *testing.T) (chroot, unshare string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the chroot tests must run as root (CI does): euid is %d; run go test as root", os.Geteuid())
	}
	var err error
	if chroot, err = exec.LookPath("chroot"); err != nil {
		t.Fatalf("chroot (coreutils) not found: %v", err)
	}
	if unshare, err = exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) not found: %v; apt-get install -y util-linux", err)
	}
	return chroot, unshare
}

// imageEnv is the runtime stage's ENV of the Dockerfile plus HOME, as the
// container would see it.
func imageEnv(t *testing.T) []string {
	t.Helper()
	env := []string{"HOME=/home/nonroot"}
	ins := parseDockerfile(t)
	last := 0
	for i, in := range ins {
		if in.cmd == "FROM" {
			last = i
		}
	}
	for _, a := range dockerArgs(ins[last:], "ENV") {
		for kv := range strings.FieldsSeq(a) {
			if !strings.Contains(kv, "=") {
				t.Fatalf("Dockerfile ENV %q: only the KEY=VALUE form is understood here", a)
			}
			env = append(env, kv)
		}
	}
	return env
}

// makeRootfs lays out a distroless-like root file system holding only the
// binary, the image's config.toml, passwd/group, the CA bundle (the host's
// plus extraCA) and the writable /data and /tmp. Everything else is owned
// by root and not writable by 65532, like a read-only root.
func makeRootfs(t *testing.T, extraCA []byte) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	dirs := []struct {
		path string
		mode os.FileMode
		uid  int
	}{
		{"", 0o755, 0}, {"etc", 0o755, 0}, {"etc/ssl", 0o755, 0}, {"etc/ssl/certs", 0o755, 0},
		{"etc/production-agent", 0o755, 0}, {"home", 0o755, 0}, {"home/nonroot", 0o700, nonrootUID},
		{"data", 0o755, nonrootUID}, {"tmp", 0o1777, 0},
	}
	for _, d := range dirs {
		p := filepath.Join(root, d.path)
		if err := os.Mkdir(p, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, d.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		if err := os.Chown(p, d.uid, d.uid); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, agentBinary, filepath.Join(root, "production-agent"), 0o555)
	copyFile(t, filepath.Join(repoRoot, "config.toml"), filepath.Join(root, "etc/production-agent/config.toml"), 0o444)
	bundle, err := os.ReadFile(hostCABundle)
	if err != nil {
		t.Fatalf("host CA bundle: %v; apt-get install -y ca-certificates", err)
	}
	bundle = append(bundle, extraCA...)
	files := map[string]string{
		"etc/passwd":                        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		"etc/group":                         "root:x:0:\nnonroot:x:65532:\n",
		"etc/ssl/certs/ca-certificates.crt": string(bundle),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// chrootCmd runs /production-agent args inside root as 65532:65532 with
// the image's environment plus extra ("KEY=value").
func chrootCmd(t *testing.T, chroot, root string, extra []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(chroot, append([]string{"--userspec=65532:65532", root, "/production-agent"}, args...)...)
	cmd.Env = append(imageEnv(t), extra...)
	return cmd
}

// serveArgs binds both listeners to free ports on 127.0.0.1.
var serveArgs = []string{"serve", "-host", "127.0.0.1", "-port", "0", "-metrics-port", "0"}

// procStatus returns the named fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		m[k] = strings.Join(strings.Fields(v), " ")
	}
	return m
}

// procChildren lists the processes whose parent is ppid (from
// /proc/*/stat, which every kernel has).
func procChildren(t *testing.T, ppid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		_, rest, ok := strings.Cut(string(b[bytes.LastIndexByte(b, ')')+1:]), " ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

func TestBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(agentBinary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a PT_INTERP program header (dynamic loader); want a static binary (CGO_ENABLED=0)")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary imports %v; want none", libs)
	}
}

func TestChrootServes(t *testing.T) {
	chroot, _ := requireChrootTools(t)
	root := makeRootfs(t, nil)
	p := startAgentCmd(t, chrootCmd(t, chroot, root, nil, serveArgs...))

	if st := procStatus(t, p.Pid()); st["Uid"] != "65532 65532 65532 65532" || st["Gid"] != "65532 65532 65532 65532" {
		t.Errorf("process Uid %q Gid %q; want all 65532", st["Uid"], st["Gid"])
	}
	if code, body := doJSON(t, http.MethodGet, p.API+"/health", nil, nil); code != http.StatusOK {
		t.Errorf("GET /health = %d %s; want 200", code, body)
	}

	// healthcheck inside the same root, with the default URL built from
	// server.port (the port 0 the server bound is passed as -port).
	u, err := url.Parse(p.API)
	if err != nil {
		t.Fatal(err)
	}
	hc := chrootCmd(t, chroot, root, nil, "healthcheck", "-port", u.Port())
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("healthcheck in the chroot: %v\n%s", err, out)
	}
	if out, err := chrootCmd(t, chroot, root, nil, "version").Output(); err != nil || !strings.Contains(string(out), agentVersion) {
		t.Errorf("version = %q, %v; want it to name %s (-ldflags -X main.version)", out, err, agentVersion)
	}

	// current_time with an IANA zone: the rootfs has no /usr/share/zoneinfo,
	// so this needs the embedded time/tzdata.
	code, body := doJSON(t, http.MethodPost, p.API+"/chat", nil,
		map[string]any{"user_id": "u", "session_id": "s", "message": "What time is it in Tokyo?"})
	if code != http.StatusOK {
		t.Fatalf("POST /chat = %d %s; want 200", code, body)
	}
	var resp struct {
		ToolCalls []struct {
			Name    string `json:"name"`
			Output  string `json:"output"`
			IsError bool   `json:"is_error"`
		} `json:"tool_calls"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("chat response %s: %v", body, err)
	}
	found := false
	for _, tc := range resp.ToolCalls {
		if tc.Name == "current_time" && !tc.IsError && strings.Contains(tc.Output, "Asia/Tokyo") {
			found = true
		}
	}
	if !found {
		t.Errorf("tool_calls = %+v; want current_time with output naming Asia/Tokyo", resp.ToolCalls)
	}

	// The audit file lands on /data, written by 65532 (the rest of the
	// root is not writable by it).
	fi, err := os.Stat(filepath.Join(root, "data/audit.jsonl"))
	if err != nil {
		t.Errorf("audit file on /data: %v", err)
	} else if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != nonrootUID || fi.Size() == 0 {
		t.Errorf("/data/audit.jsonl: size %d, owner %v; want non-empty, owned by %d", fi.Size(), fi.Sys(), nonrootUID)
	}

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(); code != 0 || err != nil {
		t.Errorf("exit after SIGTERM = %d, %v; want 0", code, err)
	}
}

// TestChrootSIGTERMAsPID1 runs the binary as PID 1 of a new PID namespace,
// as a container runtime does with an exec-form ENTRYPOINT. PID 1 gets no
// default signal dispositions: SIGTERM only works because the binary
// handles it (signal.NotifyContext).
func TestChrootSIGTERMAsPID1(t *testing.T) {
	chroot, unshare := requireChrootTools(t)
	root := makeRootfs(t, nil)
	// --kill-child: when unshare dies (cleanup), its child gets SIGKILL.
	cmd := exec.Command(unshare, append([]string{"--pid", "--fork", "--kill-child", chroot, "--userspec=65532:65532", root, "/production-agent"}, serveArgs...)...)
	cmd.Env = imageEnv(t)
	p := startAgentCmd(t, cmd)

	// The agent is unshare's only child (chroot execs it).
	children := procChildren(t, p.Pid())
	if len(children) != 1 {
		t.Fatalf("unshare children = %v; want one", children)
	}
	agent := children[0]
	st := procStatus(t, agent)
	if ns := strings.Fields(st["NSpid"]); len(ns) != 2 || ns[1] != "1" {
		t.Fatalf("agent NSpid = %q; want host pid and 1", st["NSpid"])
	}
	if st["Name"] != "production-agen" { // comm is 15 bytes at most
		t.Fatalf("PID 1 of the namespace is %q; want the agent", st["Name"])
	}
	if code, _ := doJSON(t, http.MethodGet, p.API+"/health/ready", nil, nil); code != http.StatusOK {
		t.Fatalf("/health/ready = %d; want 200", code)
	}
	if err := syscall.Kill(agent, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// unshare exits with its child's status.
	if code, err := p.Wait(); code != 0 || err != nil {
		t.Errorf("exit of PID 1 after SIGTERM = %d, %v; want 0", code, err)
	}
}

// TestChrootHTTPSUsesCABundle points the OpenAI-compatible client at a TLS
// server whose certificate is signed by a CA that exists only in the
// rootfs's /etc/ssl/certs/ca-certificates.crt: the call succeeds with that
// CA in the bundle and fails without it, so the static binary in an empty
// root finds and uses the bundle (distroless ships one at that path).
func TestChrootHTTPSUsesCABundle(t *testing.T) {
	chroot, _ := requireChrootTools(t)
	caPEM, leaf := makeTestPKI(t)
	var calls atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer x" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var req struct {
			Stream bool `json:"stream"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		writeOpenAIAnswer(w, req.Stream, "Hello over TLS")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the "CA missing" handshake failures
	srv.StartTLS()
	t.Cleanup(srv.Close)
	args := append(append([]string(nil), serveArgs...), "-provider", "openai",
		"-set", "llm.base_url="+srv.URL+"/v1", "-set", "llm.model=gpt-4o-mini", "-set", "llm.max_retries=0")
	chat := map[string]any{"user_id": "u", "session_id": "s", "message": "Say hello"}

	t.Run("CA in bundle", func(t *testing.T) {
		root := makeRootfs(t, caPEM)
		p := startAgentCmd(t, chrootCmd(t, chroot, root, []string{"OPENAI_API_KEY=x"}, args...))
		code, body := doJSON(t, http.MethodPost, p.API+"/chat", nil, chat)
		var resp struct {
			Message string `json:"message"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &resp) != nil || resp.Message != "Hello over TLS" {
			t.Errorf("POST /chat via HTTPS = %d %s; want 200 with message %q", code, body, "Hello over TLS")
		}
	})
	t.Run("CA missing", func(t *testing.T) {
		root := makeRootfs(t, nil)
		before := calls.Load()
		p := startAgentCmd(t, chrootCmd(t, chroot, root, []string{"OPENAI_API_KEY=x"}, args...))
		code, body := doJSON(t, http.MethodPost, p.API+"/chat", nil, chat)
		if code == http.StatusOK {
			t.Errorf("POST /chat with the CA absent from the bundle = 200 %s; want an upstream error", body)
		}
		t.Logf("without the CA: %d %s", code, body)
		if n := calls.Load() - before; n != 0 {
			t.Errorf("the TLS server answered %d requests; want 0 (handshake must fail)", n)
		}
	})
}

// writeOpenAIAnswer writes a chat-completions answer with text, as one
// JSON object or as a stream of chunks ending in a usage chunk and [DONE].
func writeOpenAIAnswer(w http.ResponseWriter, stream bool, text string) {
	usage := map[string]int{"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
	base := func() map[string]any {
		return map[string]any{"id": "chatcmpl-e2e", "created": 1700000000, "model": "gpt-4o-mini"}
	}
	if !stream {
		body := base()
		body["object"] = "chat.completion"
		body["choices"] = []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": text}}}
		body["usage"] = usage
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(choices []any, u any) {
		c := base()
		c["object"] = "chat.completion.chunk"
		c["choices"] = choices
		if u != nil {
			c["usage"] = u
		}
		b, _ := json.Marshal(c)
		_, _ = w.Write([]byte("data: " + string(b) + "\n\n"))
	}
	chunk([]any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": text}, "finish_reason": nil}}, nil)
	chunk([]any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": "stop"}}, nil)
	chunk([]any{}, usage)
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
}

// makeTestPKI returns a new CA's certificate (PEM) and a server
// certificate for 127.0.0.1 signed by it.
func makeTestPKI(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "production-agent e2e CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
}
