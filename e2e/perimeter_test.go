package e2e

// The perimeter, black-box: which client address the rate limiter, the
// audit trail and the security monitor see (spoofed X-Forwarded-For and
// body source_ip from an untrusted peer change nothing; a trusted proxy's
// X-Forwarded-For names the client), CORS for allowed and foreign origins,
// and TLS with a generated certificate (TLS 1.2 minimum).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// authzIPLimitArgs give each client address a bucket of 3 requests that
// refills far slower than any test runs, with auto-block off (every
// request comes from 127.0.0.1).
func authzIPLimitArgs(keysFile string, extra ...string) []string {
	return append([]string{
		"-set", "auth.enabled=true", "-set", "auth.api_keys_file=" + keysFile,
		"-set", "resilience.ip_rate_limit_burst=3",
		"-set", "resilience.ip_rate_limit_requests_per_second=0.001",
		"-set", "security.auto_block=false",
	}, extra...)
}

// authzWantIPLimited checks a 429 of the per-IP bucket.
func authzWantIPLimited(t *testing.T, what string, r httpResp) {
	t.Helper()
	authzWantError(t, what, r, http.StatusTooManyRequests, "rate_limited")
	if msg := authzErr(t, r).Error.Message; !strings.Contains(msg, "(ip)") {
		t.Errorf("%s: message %q; want the ip scope", what, msg)
	}
	if pol := r.Header.Get("RateLimit-Policy"); !strings.Contains(pol, `"ip"`) {
		t.Errorf("%s: RateLimit-Policy %q; want the \"ip\" policy", what, pol)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: no Retry-After", what)
	}
}

// authzBadKeys sends n requests with unknown API keys and header pairs kv,
// each answered 401.
func authzBadKeys(t *testing.T, p *agentProc, n int, kv ...string) {
	t.Helper()
	for i := range n {
		key := "pa_bruteforce" + strconv.Itoa(i) + "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
		r := doHTTP(t, nil, http.MethodPost, p.API+"/chat", bearer(key, kv...), chatBody("alice", "s-bf", "Hello"))
		authzWant401(t, "POST /chat with an unknown key", r, key)
	}
}

// TestAuthzClientIP checks the client address every perimeter component
// uses, without and with a trusted proxy.
func TestAuthzClientIP(t *testing.T) {
	t.Run("untrusted_peer", func(t *testing.T) {
		keysFile, keys := authzKeys(t, "alice:user", "ops:admin")
		p := startAgent(t, nil, authzIPLimitArgs(keysFile)...)
		ops := bearer(keys["ops"])
		body := chatBody("alice", "s-spoof", "Hello")
		body["source_ip"] = "198.51.100.7"

		t.Run("spoofed_xff_shares_the_ip_bucket", func(t *testing.T) {
			for i, xff := range []string{"203.0.113.9", "203.0.113.10", "203.0.113.11"} {
				r := doHTTP(t, nil, http.MethodPost, p.API+"/chat",
					bearer(keys["alice"], "X-Forwarded-For", xff, "X-Real-IP", xff, "Forwarded", "for="+xff), body)
				if r.Status != http.StatusOK {
					t.Fatalf("request %d with X-Forwarded-For %s = %d %s; want 200", i+1, xff, r.Status, r.Body)
				}
			}
			r := doHTTP(t, nil, http.MethodPost, p.API+"/chat",
				bearer(keys["alice"], "X-Forwarded-For", "203.0.113.12"), body)
			authzWantIPLimited(t, "4th request with a fresh X-Forwarded-For", r)
		})
		t.Run("audit_records_the_peer", func(t *testing.T) {
			events := fetchAudit(t, p, ops, "actor=alice&limit=1000")
			if len(events) == 0 {
				t.Fatal("no audit records for alice")
			}
			claimed := 0
			for _, ev := range events {
				if ev.SourceIP != "127.0.0.1" {
					t.Errorf("audit %s source_ip = %q; want 127.0.0.1", ev.Action, ev.SourceIP)
				}
				if ev.Action == "request.claimed_source_ip" {
					claimed++
					if got := ev.Metadata["claimed_source_ip"]; got != "198.51.100.7" {
						t.Errorf("claimed_source_ip = %q; want 198.51.100.7", got)
					}
				}
			}
			if claimed != 3 {
				t.Errorf("%d request.claimed_source_ip records; want 3 (one per accepted request)", claimed)
			}
			for _, ip := range []string{"203.0.113.9", "203.0.113.12", "198.51.100.7"} {
				if evs := fetchAudit(t, p, ops, "source_ip="+ip); len(evs) != 0 {
					t.Errorf("GET /audit?source_ip=%s = %d records; want none", ip, len(evs))
				}
			}
			var limited bool
			for _, ev := range fetchAudit(t, p, ops, "action=rate_limit.rejected") {
				limited = limited || ev.SourceIP == "127.0.0.1" && ev.Metadata["scope"] == "ip"
			}
			if !limited {
				t.Error("no rate_limit.rejected audit record for scope ip from 127.0.0.1")
			}
		})
		t.Run("monitor_sees_the_peer", func(t *testing.T) {
			authzBadKeys(t, p, 5, "X-Forwarded-For", "203.0.113.66", "X-Real-IP", "203.0.113.66")
			incs := fetchIncidents(t, p, ops, "limit=1000")
			var brute bool
			for _, inc := range incs {
				if inc.Source != "127.0.0.1" {
					t.Errorf("%s incident from %q; want 127.0.0.1", inc.IncidentType, inc.Source)
				}
				brute = brute || inc.IncidentType == "brute_force_attack"
			}
			if !brute {
				t.Errorf("no brute_force_attack incident after 5 bad keys; have %+v", incs)
			}
		})
	})

	t.Run("trusted_proxy", func(t *testing.T) {
		keysFile, keys := authzKeys(t, "alice:user", "ops:admin")
		p := startAgent(t, nil, authzIPLimitArgs(keysFile, "-set", "server.trusted_proxies=127.0.0.1/32")...)
		ops := bearer(keys["ops"])
		chat := func(t *testing.T, xff string) httpResp {
			t.Helper()
			return doHTTP(t, nil, http.MethodPost, p.API+"/chat", bearer(keys["alice"], "X-Forwarded-For", xff),
				chatBody("alice", "s-proxy", "Hello"))
		}

		t.Run("xff_clients_have_their_own_buckets", func(t *testing.T) {
			for i := range 3 {
				if r := chat(t, "203.0.113.9"); r.Status != http.StatusOK {
					t.Fatalf("request %d for 203.0.113.9 = %d %s; want 200", i+1, r.Status, r.Body)
				}
			}
			authzWantIPLimited(t, "4th request for 203.0.113.9", chat(t, "203.0.113.9"))
			// The client may prepend anything; the proxy appends the
			// address it saw, and that is the one that counts.
			if r := chat(t, "203.0.113.9, 203.0.113.10"); r.Status != http.StatusOK {
				t.Errorf("request for 203.0.113.10 (spoofed 203.0.113.9 before it) = %d %s; want 200", r.Status, r.Body)
			}
		})
		t.Run("audit_records_the_xff_client", func(t *testing.T) {
			for ip, want := range map[string]bool{"203.0.113.9": true, "203.0.113.10": true, "127.0.0.1": false} {
				var success int
				for _, ev := range fetchAudit(t, p, ops, "actor=alice&action=auth.success&source_ip="+ip) {
					if ev.SourceIP == ip {
						success++
					}
				}
				if got := success > 0; got != want {
					t.Errorf("auth.success records for alice from %s: %d; want some: %v", ip, success, want)
				}
			}
		})
		t.Run("monitor_records_the_xff_client", func(t *testing.T) {
			authzBadKeys(t, p, 5, "X-Forwarded-For", "203.0.113.66")
			var found bool
			for _, inc := range fetchIncidents(t, p, ops, "type=brute_force_attack") {
				found = found || inc.Source == "203.0.113.66"
			}
			if !found {
				t.Error("no brute_force_attack incident from 203.0.113.66")
			}
		})
	})
}

// authzCORSHeaders returns r's Access-Control-* headers.
func authzCORSHeaders(r httpResp) http.Header {
	out := http.Header{}
	for k, v := range r.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			out[k] = v
		}
	}
	return out
}

// authzVaryHas reports whether r's Vary lists name.
func authzVaryHas(r httpResp, name string) bool {
	for _, v := range r.Header.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

// authzListHas reports whether the comma-separated header value lists
// item (case-insensitively).
func authzListHas(value, item string) bool {
	for f := range strings.SplitSeq(value, ",") {
		if strings.EqualFold(strings.TrimSpace(f), item) {
			return true
		}
	}
	return false
}

// authzPreflight sends a browser's preflight for a POST /chat with JSON
// and a bearer token from origin.
func authzPreflight(t *testing.T, p *agentProc, origin string) httpResp {
	t.Helper()
	return doHTTP(t, nil, http.MethodOptions, p.API+"/chat", headerOf("Origin", origin,
		"Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type,authorization,traceparent"), nil)
}

// TestAuthzCORS checks preflights and simple requests from the configured
// origin, foreign origins and with "*".
func TestAuthzCORS(t *testing.T) {
	const app, evil = "https://app.example.com", "https://evil.example"
	t.Run("explicit_origin", func(t *testing.T) {
		keysFile, keys := authzKeys(t, "alice:user")
		p := startAgent(t, nil, "-set", "auth.enabled=true", "-set", "auth.api_keys_file="+keysFile,
			"-set", "server.cors_allowed_origins="+app)
		chat := func(t *testing.T, h http.Header) httpResp {
			t.Helper()
			return doHTTP(t, nil, http.MethodPost, p.API+"/chat", h, chatBody("alice", "s-cors", "Hello"))
		}

		t.Run("preflight_from_allowed_origin", func(t *testing.T) {
			r := authzPreflight(t, p, app)
			if r.Status != http.StatusNoContent {
				t.Fatalf("preflight = %d %s; want 204", r.Status, r.Body)
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != app {
				t.Errorf("Access-Control-Allow-Origin = %q; want %q", got, app)
			}
			if got := r.Header.Get("Access-Control-Allow-Methods"); !authzListHas(got, "POST") {
				t.Errorf("Access-Control-Allow-Methods = %q; want POST in it", got)
			}
			allowed := r.Header.Get("Access-Control-Allow-Headers")
			for _, h := range []string{"Content-Type", "Authorization", "traceparent"} {
				if !authzListHas(allowed, h) {
					t.Errorf("Access-Control-Allow-Headers = %q; want %s in it", allowed, h)
				}
			}
			if ma, err := strconv.Atoi(r.Header.Get("Access-Control-Max-Age")); err != nil || ma <= 0 {
				t.Errorf("Access-Control-Max-Age = %q; want positive seconds", r.Header.Get("Access-Control-Max-Age"))
			}
			if !authzVaryHas(r, "Origin") {
				t.Errorf("Vary = %q; want Origin", r.Header.Values("Vary"))
			}
		})
		for _, origin := range []string{evil, "https://app.example.com.evil.example", "http://app.example.com", "null"} {
			t.Run("preflight_from_foreign_origin/"+origin, func(t *testing.T) {
				r := authzPreflight(t, p, origin)
				authzWantError(t, "preflight from "+origin, r, http.StatusForbidden, "forbidden")
				if h := authzCORSHeaders(r); len(h) != 0 {
					t.Errorf("preflight from %s answered CORS headers %v; want none", origin, h)
				}
				if !authzVaryHas(r, "Origin") {
					t.Errorf("Vary = %q; want Origin", r.Header.Values("Vary"))
				}
			})
		}
		t.Run("simple_request_from_allowed_origin", func(t *testing.T) {
			r := chat(t, bearer(keys["alice"], "Origin", app))
			if r.Status != http.StatusOK {
				t.Fatalf("POST /chat from %s = %d %s; want 200", app, r.Status, r.Body)
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != app {
				t.Errorf("Access-Control-Allow-Origin = %q; want %q", got, app)
			}
			if !authzVaryHas(r, "Origin") {
				t.Errorf("Vary = %q; want Origin", r.Header.Values("Vary"))
			}
		})
		t.Run("error_from_allowed_origin_is_readable", func(t *testing.T) {
			r := chat(t, headerOf("Origin", app))
			authzWant401(t, "POST /chat without a key from "+app, r, "")
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != app {
				t.Errorf("401 Access-Control-Allow-Origin = %q; want %q", got, app)
			}
		})
		t.Run("simple_request_from_foreign_origin", func(t *testing.T) {
			r := chat(t, bearer(keys["alice"], "Origin", evil))
			if h := authzCORSHeaders(r); len(h) != 0 {
				t.Errorf("POST /chat from %s answered CORS headers %v; want none", evil, h)
			}
			if !authzVaryHas(r, "Origin") {
				t.Errorf("Vary = %q; want Origin", r.Header.Values("Vary"))
			}
		})
		t.Run("request_without_origin", func(t *testing.T) {
			r := chat(t, bearer(keys["alice"]))
			if r.Status != http.StatusOK {
				t.Fatalf("POST /chat = %d %s; want 200", r.Status, r.Body)
			}
			if h := authzCORSHeaders(r); len(h) != 0 {
				t.Errorf("POST /chat without Origin answered CORS headers %v; want none", h)
			}
			if !authzVaryHas(r, "Origin") {
				t.Errorf("Vary = %q; want Origin", r.Header.Values("Vary"))
			}
		})
	})
	t.Run("wildcard", func(t *testing.T) {
		p := startAgent(t, nil, "-set", "server.cors_allowed_origins=*")
		t.Run("preflight", func(t *testing.T) {
			r := authzPreflight(t, p, evil)
			if r.Status != http.StatusNoContent {
				t.Fatalf("preflight = %d %s; want 204", r.Status, r.Body)
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q; want *", got)
			}
			if got, ok := r.Header["Access-Control-Allow-Credentials"]; ok {
				t.Errorf("Access-Control-Allow-Credentials = %q with *; want absent", got)
			}
		})
		t.Run("simple_request", func(t *testing.T) {
			r := doHTTP(t, nil, http.MethodPost, p.API+"/chat", headerOf("Origin", evil), chatBody("alice", "s-star", "Hello"))
			if r.Status != http.StatusOK {
				t.Fatalf("POST /chat = %d %s; want 200", r.Status, r.Body)
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q; want *", got)
			}
			if got, ok := r.Header["Access-Control-Allow-Credentials"]; ok {
				t.Errorf("Access-Control-Allow-Credentials = %q with *; want absent", got)
			}
		})
	})
}

// authzCert generates a self-signed ECDSA P-256 certificate for 127.0.0.1
// and returns it as a tls.Certificate, its PEM files and a pool trusting it.
func authzCert(t *testing.T) (cert tls.Certificate, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "production-agent e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(parsed)
	return cert, authzWriteFile(t, "tls.crt", certPEM), authzWriteFile(t, "tls.key", keyPEM), pool
}

// authzTLSClient trusts pool and speaks only TLS versions min to max.
func authzTLSClient(pool *x509.CertPool, minVersion, maxVersion uint16) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: minVersion, MaxVersion: maxVersion},
	}}
}

// TestAuthzTLS serves the API over TLS with a generated certificate: TLS
// 1.2 and 1.3 work, TLS 1.1 is refused at the handshake, plain HTTP on the
// TLS port gets 400, and the healthcheck subcommand probes over HTTPS.
func TestAuthzTLS(t *testing.T) {
	cert, certFile, keyFile, pool := authzCert(t)
	p := startAgent(t, nil, "-set", "server.tls_cert_file="+certFile, "-set", "server.tls_key_file="+keyFile)
	base := "https://" + strings.TrimPrefix(p.API, "http://")

	t.Run("tls11_client_works_elsewhere", func(t *testing.T) {
		// Control: the TLS 1.1 client below can complete a handshake with
		// a server that allows it, so its failure against the agent is the
		// agent's refusal.
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		r := doHTTP(t, authzTLSClient(pool, tls.VersionTLS11, tls.VersionTLS11), http.MethodGet, srv.URL, nil, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("TLS 1.1 to a permissive server = %d; want 200", r.Status)
		}
	})
	t.Run("tls11_refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		d := &tls.Dialer{Config: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}
		conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(base, "https://"))
		if err == nil {
			conn.Close()
			t.Fatal("TLS 1.1 handshake with the agent succeeded; want it refused (TLS 1.2 minimum)")
		}
		// The server answers a ClientHello below its minimum with the
		// protocol_version alert (RFC 8446 §6.2); crypto/tls reports a
		// received alert as "remote error".
		if msg := err.Error(); !strings.Contains(msg, "remote error") || !strings.Contains(msg, "protocol version") {
			t.Errorf("TLS 1.1 handshake error %v; want the server's protocol_version alert", err)
		}
	})
	for _, v := range []struct {
		name    string
		version uint16
	}{{"tls12", tls.VersionTLS12}, {"tls13", tls.VersionTLS13}} {
		t.Run(v.name, func(t *testing.T) {
			client := authzTLSClient(pool, v.version, v.version)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/health", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET /health over %s: %v", v.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version != v.version {
				t.Errorf("GET /health = %d over %v; want 200 over %s", resp.StatusCode, resp.TLS, v.name)
			}
			r := doHTTP(t, client, http.MethodPost, base+"/chat", nil, chatBody("alice", "s-tls-"+v.name, "Hello"))
			if r.Status != http.StatusOK {
				t.Errorf("POST /chat over %s = %d %s; want 200", v.name, r.Status, r.Body)
			}
		})
	}
	t.Run("plain_http_on_tls_port", func(t *testing.T) {
		r := doHTTP(t, nil, http.MethodPost, p.API+"/chat", nil, chatBody("alice", "s-plain", "Hello"))
		if r.Status != http.StatusBadRequest {
			t.Errorf("plain HTTP POST /chat to the TLS port = %d %s; want 400", r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "conversation_id") {
			t.Errorf("plain HTTP got a chat answer: %s", r.Body)
		}
	})
	t.Run("healthcheck_subcommand", func(t *testing.T) {
		_, port, err := net.SplitHostPort(strings.TrimPrefix(p.API, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			args []string
			want int
		}{
			{"url", []string{"-url", base + "/health"}, 0},
			{"default_url_from_config", []string{"-port", port, "-set", "server.tls_cert_file=" + certFile, "-set", "server.tls_key_file=" + keyFile}, 0},
			{"plain_http_url", []string{"-url", p.API + "/health"}, 1},
		} {
			t.Run(c.name, func(t *testing.T) {
				cmd := exec.CommandContext(t.Context(), agentBinary, append([]string{"healthcheck"}, c.args...)...)
				cmd.Env = cleanEnv(nil)
				cmd.Dir = t.TempDir()
				out, err := cmd.CombinedOutput()
				code := 0
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					code = exit.ExitCode()
				} else if err != nil {
					t.Fatalf("healthcheck: %v", err)
				}
				if code != c.want {
					t.Errorf("healthcheck %v exit %d; want %d\n%s", c.args, code, c.want, out)
				}
			})
		}
	})
}
