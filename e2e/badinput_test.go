package e2e

// Bad input (issue 11): a catalogue of malformed and hostile requests sent
// over raw TCP, so that nothing in a client library cleans them up first.
// Each must get its documented 4xx with the JSON error body of DESIGN §4 —
// or, where net/http itself answers before any handler runs (a request it
// cannot parse), Go's plain-text answer, which the catalogue names
// explicitly (kind relGo). Nothing may answer 5xx, except 501 for a
// transfer coding the server does not implement and 505 for an unsupported
// HTTP version, both mandated by RFC 9112 / RFC 9110 and sent by net/http.
// Nothing may hang, and no log line may mention a panic.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// relAnswerKind says who answers a bad request.
type relAnswerKind int

const (
	relApp relAnswerKind = iota // the service: JSON error of DESIGN §4
	relGo                       // net/http before any handler: text/plain, connection closed
)

// relBadCase is one hostile request. raw, when set, is sent verbatim;
// otherwise the request is built from method, target, headers and body
// (Host, Content-Type application/json unless ct is set or noCT,
// Content-Length unless noCL, Connection: close).
type relBadCase struct {
	name    string
	admin   bool // send to the admin listener
	raw     string
	method  string // default POST
	target  string // default /chat
	ct      string
	noCT    bool
	noCL    bool
	headers []string // "Name: value" lines
	body    string
	// halfClose closes the write side after sending (for a body shorter
	// than its Content-Length).
	halfClose bool
	// onContinue is sent if the server answers 100 Continue.
	onContinue string

	kind   relAnswerKind
	status int
	typ    string // error.type for relApp
	check  func(t *testing.T, resp *http.Response, body []byte)
}

// relChatBody is a valid /chat body with field overrides (nil deletes).
func relChatBody(kv ...any) string {
	m := map[string]any{"user_id": "rel-bad", "session_id": "rel-bad-s", "message": "hello"}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(m, k)
		} else {
			m[k] = kv[i+1]
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// relRawField is a /chat body whose field k holds raw JSON v.
func relRawField(k, v string) string {
	m := map[string]string{"user_id": `"rel-bad"`, "session_id": `"rel-bad-s"`, "message": `"hello"`}
	m[k] = v
	var b strings.Builder
	b.WriteString("{")
	first := true
	for _, key := range []string{"user_id", "session_id", "message", "source_ip", "stream"} {
		if val, ok := m[key]; ok {
			if !first {
				b.WriteString(",")
			}
			first = false
			fmt.Fprintf(&b, "%q:%s", key, val)
		}
	}
	b.WriteString("}")
	return b.String()
}

func (c relBadCase) request(host string) []byte {
	if c.raw != "" {
		return []byte(strings.ReplaceAll(c.raw, "{host}", host))
	}
	method, target := c.method, c.target
	if method == "" {
		method = "POST"
	}
	if target == "" {
		target = "/chat"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: rel-badinput\r\n", method, target, host)
	switch {
	case c.ct != "":
		fmt.Fprintf(&b, "Content-Type: %s\r\n", c.ct)
	case !c.noCT:
		b.WriteString("Content-Type: application/json\r\n")
	}
	if !c.noCL {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(c.body))
	}
	for _, h := range c.headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(c.body)
	return b.Bytes()
}

// relSendRaw sends req to addr and reads its final answer (10 s limit);
// after a 100 Continue it sends onContinue.
func relSendRaw(addr string, req []byte, halfClose bool, onContinue string) (*http.Response, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(req); err != nil && !isConnReset(err) {
		return nil, nil, err
	}
	if halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	br := bufio.NewReader(conn)
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			return nil, nil, err
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusContinue && onContinue != "" {
			if _, err := io.WriteString(conn, onContinue); err != nil && !isConnReset(err) {
				return nil, nil, err
			}
			onContinue = ""
		}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// isConnReset: the server may answer and close before a large request
// is fully written; the answer is still readable.
func isConnReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

var relTraceIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// relBadCases is the catalogue (llm.max_message_bytes = 1024 and the
// default max_body_bytes 65536, max_header_bytes 16384).
func relBadCases() []relBadCase {
	deepArr := `{"user_id":` + strings.Repeat("[", 50000) + strings.Repeat("]", 50000)[:10] + `}`
	deepObj := relChatBody()[:len(relChatBody())-1] + `,"x":` + strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + "}"
	noSetCookie := func(t *testing.T, resp *http.Response, _ []byte) {
		if len(resp.Header.Values("Set-Cookie")) > 0 || resp.Header.Get("Injected") != "" {
			t.Errorf("response carries injected headers: %v", resp.Header)
		}
	}
	freshTraceparent := func(t *testing.T, resp *http.Response, _ []byte) {
		tp := resp.Header.Get("Traceparent")
		if !regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`).MatchString(tp) || strings.Contains(tp, "script") {
			t.Errorf("traceparent %q answered to a hostile one; want a fresh valid one", tp)
		}
	}
	allow := func(want string) func(t *testing.T, resp *http.Response, _ []byte) {
		return func(t *testing.T, resp *http.Response, _ []byte) {
			if got := resp.Header.Get("Allow"); !strings.Contains(got, want) {
				t.Errorf("Allow %q; want it to list %s", got, want)
			}
		}
	}
	manyParams := make([]string, 1000)
	for i := range manyParams {
		manyParams[i] = fmt.Sprintf("p%d=%d", i, i)
	}
	return []relBadCase{
		// Broken JSON.
		{name: "empty body", body: "", status: 400, typ: "invalid_request"},
		{name: "whitespace body", body: " \r\n\t ", status: 400, typ: "invalid_request"},
		{name: "truncated object", body: `{"user_id":"rel-bad"`, status: 400, typ: "invalid_request"},
		{name: "truncated string", body: `{"user_id":"rel-b`, status: 400, typ: "invalid_request"},
		{name: "array instead of object", body: `[]`, status: 400, typ: "invalid_request"},
		{name: "string instead of object", body: `"hello"`, status: 400, typ: "invalid_request"},
		{name: "number instead of object", body: `42`, status: 400, typ: "invalid_request"},
		{name: "null", body: `null`, status: 400, typ: "invalid_request"},
		{name: "two objects", body: relChatBody() + relChatBody(), status: 400, typ: "invalid_request"},
		{name: "trailing garbage", body: relChatBody() + " xyz", status: 400, typ: "invalid_request"},
		{name: "single quotes", body: `{'user_id':'rel-bad'}`, status: 400, typ: "invalid_request"},
		{name: "trailing comma", body: `{"user_id":"rel-bad","session_id":"s","message":"hi",}`, status: 400, typ: "invalid_request"},
		{name: "deeply nested arrays (50000)", body: deepArr, status: 400, typ: "invalid_request"},
		{name: "deeply nested objects (10000) in an unknown field", body: deepObj, status: 400, typ: "invalid_request"},
		{name: "unknown field", body: relChatBody("role", "admin"), status: 400, typ: "invalid_request"},
		{name: "unknown field of 60 KiB name", body: `{"` + strings.Repeat("k", 60000) + `":1}`, status: 400, typ: "invalid_request"},
		// Huge numbers and wrong types.
		{name: "huge exponent as stream", body: relRawField("stream", "1e999999"), status: 400, typ: "invalid_request"},
		{name: "60000-digit number as message", body: relRawField("message", strings.Repeat("9", 60000)), status: 400, typ: "invalid_request"},
		{name: "number as user_id", body: relRawField("user_id", "12345"), status: 400, typ: "invalid_request"},
		{name: "negative zero as session_id", body: relRawField("session_id", "-0"), status: 400, typ: "invalid_request"},
		{name: "boolean as message", body: relRawField("message", "true"), status: 400, typ: "invalid_request"},
		{name: "object as session_id", body: relRawField("session_id", "{}"), status: 400, typ: "invalid_request"},
		{name: "string as stream", body: relRawField("stream", `"yes"`), status: 400, typ: "invalid_request"},
		// NUL bytes and invalid UTF-8.
		{name: "escaped NUL in message", body: relRawField("message", `"hi\u0000there"`), status: 400, typ: "invalid_request"},
		{name: "raw NUL between tokens", body: "{\x00" + relChatBody()[1:], status: 400, typ: "invalid_request"},
		{name: "raw NUL inside a string", body: relRawField("message", "\"hi\x00there\""), status: 400, typ: "invalid_request"},
		{name: "invalid UTF-8 in message", body: relRawField("message", "\"caf\xe9 \xff\xfe\""), status: 400, typ: "invalid_request"},
		{name: "invalid UTF-8 in a key", body: `{"user_id\xff":"x"}`, status: 400, typ: "invalid_request"},
		{name: "overlong UTF-8 encoding of /", body: relRawField("message", "\"\xc0\xaf\""), status: 400, typ: "invalid_request"},
		{name: "UTF-8 encoded surrogate", body: relRawField("message", "\"\xed\xa0\x80\""), status: 400, typ: "invalid_request"},
		{name: "UTF-8 BOM before the object", body: "\xef\xbb\xbf" + relChatBody(), status: 400, typ: "invalid_request"},
		// Invalid field values.
		{name: "blank message", body: relChatBody("message", " \t\n "), status: 400, typ: "invalid_request"},
		{name: "missing message", body: relChatBody("message", nil), status: 400, typ: "invalid_request"},
		{name: "missing user_id", body: relChatBody("user_id", nil), status: 400, typ: "invalid_request"},
		{name: "user_id with spaces and slash", body: relChatBody("user_id", "a b/c"), status: 400, typ: "invalid_request"},
		{name: "user_id of 129 chars", body: relChatBody("user_id", strings.Repeat("u", 129)), status: 400, typ: "invalid_request"},
		{name: "session_id path traversal", body: relChatBody("session_id", "../../etc/passwd"), status: 400, typ: "invalid_request"},
		{name: "session_id with CRLF header injection", body: relChatBody("session_id", "s\r\nSet-Cookie: evil=1"), status: 400, typ: "invalid_request", check: noSetCookie},
		{name: "source_ip not an address", body: relChatBody("source_ip", "999.1.1.1"), status: 400, typ: "invalid_request"},
		{name: "source_ip with markup", body: relChatBody("source_ip", "10.0.0.1<script>"), status: 400, typ: "invalid_request"},
		// Sizes.
		{name: "message over max_message_bytes", body: relChatBody("message", strings.Repeat("a", 2048)), status: 413, typ: "payload_too_large"},
		{name: "body over max_body_bytes", body: relChatBody("message", strings.Repeat("a", 70000)), status: 413, typ: "payload_too_large"},
		{name: "chunked body over max_body_bytes", noCL: true, headers: []string{"Transfer-Encoding: chunked"},
			body: fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 70000, strings.Repeat("a", 70000)), status: 413, typ: "payload_too_large"},
		{name: "Expect 100-continue with a 10 MB Content-Length", noCL: true, headers: []string{"Content-Length: 10000000", "Expect: 100-continue"},
			onContinue: strings.Repeat("a", 70000), status: 413, typ: "payload_too_large"},
		{name: "Content-Length longer than the body", noCL: true, headers: []string{"Content-Length: 500"}, body: relChatBody(), halfClose: true,
			status: 400, typ: "invalid_request"},
		// Content types.
		{name: "no Content-Type", noCT: true, body: relChatBody(), status: 415, typ: "unsupported_media_type"},
		{name: "text/plain", ct: "text/plain", body: relChatBody(), status: 415, typ: "unsupported_media_type"},
		{name: "charset latin1", ct: "application/json; charset=latin1", body: relChatBody(), status: 415, typ: "unsupported_media_type"},
		{name: "form encoded", ct: "application/x-www-form-urlencoded", body: "user_id=a&message=b", status: 415, typ: "unsupported_media_type"},
		{name: "multipart", ct: "multipart/form-data; boundary=x", body: "--x--", status: 415, typ: "unsupported_media_type"},
		{name: "malformed media type", ct: "application/json;;;==", body: relChatBody(), status: 415, typ: "unsupported_media_type"},
		{name: "look-alike media type", ct: "application/jsonx", body: relChatBody(), status: 415, typ: "unsupported_media_type"},
		{name: "event-stream wanted, broken JSON", headers: []string{"Accept: text/event-stream"}, body: `{"user_id":`, status: 400, typ: "invalid_request"},
		// Wrong methods.
		{name: "GET /chat", method: "GET", noCT: true, status: 405, typ: "method_not_allowed", check: allow("POST")},
		{name: "PUT /chat", method: "PUT", body: relChatBody(), status: 405, typ: "method_not_allowed", check: allow("POST")},
		{name: "DELETE /chat", method: "DELETE", noCT: true, status: 405, typ: "method_not_allowed"},
		{name: "PATCH /health", method: "PATCH", target: "/health", body: "{}", status: 405, typ: "method_not_allowed", check: allow("GET")},
		{name: "made-up method BREW", method: "BREW", body: relChatBody(), status: 405, typ: "method_not_allowed"},
		{name: "TRACE /chat", method: "TRACE", noCT: true, status: 405, typ: "method_not_allowed"},
		// Path tricks.
		{name: "trailing slash /chat/", target: "/chat/", body: relChatBody(), status: 404, typ: "not_found"},
		{name: "double slash //chat", target: "//chat", body: relChatBody(), status: 404, typ: "not_found"},
		{name: "dot segments /x/../chat", target: "/x/../chat", body: relChatBody(), status: 404, typ: "not_found"},
		{name: "encoded dot segments /%2e%2e/chat", target: "/%2e%2e/chat", body: relChatBody(), status: 404, typ: "not_found"},
		{name: "encoded NUL /chat%00", target: "/chat%00", body: relChatBody(), status: 404, typ: "not_found"},
		{name: "encoded traversal in a session id", method: "GET", noCT: true, target: "/sessions/..%2f..%2fetc%2fpasswd", status: 404, typ: "not_found"},
		{name: "session id of 300 chars", method: "GET", noCT: true, target: "/sessions/" + strings.Repeat("s", 300), status: 404, typ: "not_found"},
		{name: "empty session id", method: "GET", noCT: true, target: "/sessions/", status: 404, typ: "not_found"},
		{name: "unknown session DELETE", method: "DELETE", noCT: true, target: "/sessions/rel-none", status: 404, typ: "not_found"},
		{name: "unknown route", method: "GET", noCT: true, target: "/admin", status: 404, typ: "not_found"},
		{name: "12 KiB path", method: "GET", noCT: true, target: "/" + strings.Repeat("p", 12<<10), status: 404, typ: "not_found"},
		{name: "absolute-form target for another host", target: "http://evil.example/chat", ct: "text/plain", body: "x", status: 415, typ: "unsupported_media_type"},
		{name: "1000 query parameters", target: "/chat?" + strings.Join(manyParams, "&"), body: "nope", status: 400, typ: "invalid_request"},
		// Headers.
		{name: "CRLF in the query string", target: "/chat?x=%0d%0aSet-Cookie:%20evil=1", body: "{", status: 400, typ: "invalid_request", check: noSetCookie},
		{name: "hostile traceparent", headers: []string{"traceparent: 00-<script>alert(1)</script>-x-01"}, body: "{", status: 400, typ: "invalid_request", check: freshTraceparent},
		{name: "forged X-Forwarded-For", headers: []string{"X-Forwarded-For: 1.2.3.4, <script>, 999.999.1.1"}, body: "{", status: 400, typ: "invalid_request"},
		{name: "12 KiB cookie (under max_header_bytes)", headers: []string{"Cookie: c=" + strings.Repeat("c", 12<<10)}, body: "[]", status: 400, typ: "invalid_request"},
		{name: "oversized headers (40 KiB)", headers: []string{"X-Big: " + strings.Repeat("b", 40<<10)}, body: relChatBody(), kind: relGo, status: 431},
		{name: "bare CR in a header value", headers: []string{"X-Evil: a\rInjected: b"}, body: relChatBody(), kind: relGo, status: 400},
		// RFC 9112 §5.2: reject obs-fold or replace it with spaces; net/http replaces.
		{name: "obsolete line folding", headers: []string{"X-Folded: a", " continued"}, body: "{", status: 400, typ: "invalid_request"},
		{name: "space in a header name", headers: []string{"Bad Header: x"}, body: relChatBody(), kind: relGo, status: 400},
		{name: "conflicting Content-Length", noCL: true, headers: []string{"Content-Length: 5", "Content-Length: 6"}, body: "{}", kind: relGo, status: 400},
		{name: "negative Content-Length", noCL: true, headers: []string{"Content-Length: -5"}, kind: relGo, status: 400},
		{name: "20-digit Content-Length", noCL: true, headers: []string{"Content-Length: 99999999999999999999"}, kind: relGo, status: 400},
		// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; the chunked body "{}" lacks every field.
		{name: "Content-Length with chunked", headers: []string{"Transfer-Encoding: chunked"}, body: "2\r\n{}\r\n0\r\n\r\n", status: 400, typ: "invalid_request"},
		{name: "unknown transfer coding", noCL: true, headers: []string{"Transfer-Encoding: gzip"}, body: "xx", kind: relGo, status: 501},
		{name: "missing Host", raw: "POST /chat HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", kind: relGo, status: 400},
		{name: "HTTP/9.9", raw: "GET /health HTTP/9.9\r\nHost: {host}\r\nConnection: close\r\n\r\n", kind: relGo, status: 505},
		{name: "garbage request line", raw: "HELLO\r\n\r\n", kind: relGo, status: 400},
		// Admin listener.
		{name: "admin: /audit limit not a number", admin: true, method: "GET", noCT: true, target: "/audit?limit=abc", status: 400, typ: "invalid_request"},
		{name: "admin: /audit unknown event_type", admin: true, method: "GET", noCT: true, target: "/audit?event_type=%3Cscript%3E", status: 400, typ: "invalid_request"},
		{name: "admin: /audit since not a time", admin: true, method: "GET", noCT: true, target: "/audit?since=yesterday", status: 400, typ: "invalid_request"},
		{name: "admin: incident PATCH with broken JSON", admin: true, method: "PATCH", target: "/security/incidents/" + url.PathEscape("rel-none"), body: "{", status: 400, typ: "invalid_request"},
		{name: "admin: incident PATCH of an unknown incident", admin: true, method: "PATCH", target: "/security/incidents/rel-none", body: `{"status":"resolved"}`, status: 404, typ: "not_found"},
		{name: "admin: POST /metrics", admin: true, method: "POST", target: "/metrics", body: "{}", status: 405, typ: "method_not_allowed"},
	}
}

// TestRelBadInput sends the catalogue and checks each answer, then that
// the service still serves and logged no panic.
func TestRelBadInput(t *testing.T) {
	p := startAgent(t, nil, "-set", "llm.provider=mock", "-set", "llm.max_message_bytes=1024",
		// The catalogue comes from one address in a burst; the buckets
		// are tested elsewhere and would turn some answers into 429.
		"-set", "resilience.rate_limit_enabled=false", "-set", "resilience.ip_rate_limit_enabled=false")
	api := strings.TrimPrefix(p.API, "http://")
	admin := strings.TrimPrefix(p.Admin, "http://")
	cases := relBadCases()
	if len(cases) < 40 {
		t.Fatalf("catalogue holds %d cases; want at least 40", len(cases))
	}
	fiveXX := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := api
			if c.admin {
				addr = admin
			}
			start := time.Now()
			resp, body, err := relSendRaw(addr, c.request(addr), c.halfClose, c.onContinue)
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("answered after %v; want no hang", d)
			}
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode >= 500 {
				fiveXX++
			}
			if resp.StatusCode != c.status {
				t.Errorf("status %d (%.200s); want %d", resp.StatusCode, body, c.status)
			}
			ct := resp.Header.Get("Content-Type")
			switch c.kind {
			case relApp:
				var e struct {
					Error struct {
						Type, Message string
						TraceID       string `json:"trace_id"`
					} `json:"error"`
				}
				if ct != "application/json; charset=utf-8" {
					t.Errorf("Content-Type %q; want application/json; charset=utf-8", ct)
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Type != c.typ || e.Error.Message == "" || !relTraceIDRe.MatchString(e.Error.TraceID) {
					t.Errorf("body %.300s; want a JSON error of type %q with a message and a trace_id", body, c.typ)
				}
				if !utf8Valid(body) {
					t.Errorf("error body is not valid UTF-8: %q", body)
				}
				if len(body) > len(c.body)+1024 {
					t.Errorf("error body of %d bytes for a request body of %d; want no amplification", len(body), len(c.body))
				}
			case relGo:
				if !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type %q; net/http answers this one in text/plain", ct)
				}
			}
			if c.check != nil {
				c.check(t, resp, body)
			}
		})
	}
	if fiveXX > 2 {
		t.Errorf("%d answers were 5xx; only the RFC-mandated 501 and 505 of net/http may be", fiveXX)
	}
	// Still serving after the catalogue.
	if st, b := doJSON(t, http.MethodPost, p.API+"/chat", nil, map[string]any{"user_id": "rel-after", "session_id": "rel-after-s", "message": "hello"}); st != 200 {
		t.Errorf("/chat after the catalogue: %d %s", st, b)
	}
	relNoPanic(t, p)
}

// TestRelSlowLoris holds 30 connections that trickle their headers one
// byte every 300 ms: the server cuts each after its 10 s header timeout
// and keeps answering other clients meanwhile.
func TestRelSlowLoris(t *testing.T) {
	t.Parallel()
	p := startAgent(t, nil, "-set", "llm.provider=mock")
	addr := strings.TrimPrefix(p.API, "http://")
	const conns = 30
	type result struct {
		closedAfter time.Duration
		err         error
	}
	results := make(chan result, conns)
	stop := make(chan struct{})
	defer close(stop)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			start := time.Now()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			header := "POST /chat HTTP/1.1\r\nHost: " + addr + "\r\nX-Slow: " + strings.Repeat("z", 1000)
			// Reader: the server's close (or an answer) ends the wait.
			closed := make(chan struct{})
			go func() {
				io.Copy(io.Discard, conn)
				close(closed)
			}()
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-closed:
					results <- result{closedAfter: time.Since(start)}
					return
				case <-stop:
					results <- result{err: fmt.Errorf("test ended first")}
					return
				case <-tick.C:
					if i < len(header) {
						conn.Write([]byte{header[i]})
					}
				}
			}
		})
	}
	// While they hang on, the service answers others promptly.
	for i := range 5 {
		start := time.Now()
		st, _ := doJSON(t, http.MethodGet, p.API+"/health/live", nil, nil)
		if d := time.Since(start); st != 200 || d > 2*time.Second {
			t.Errorf("probe %d during the slow-loris: %d after %v", i, st, d)
		}
		st, b := doJSON(t, http.MethodPost, p.API+"/chat", nil, map[string]any{"user_id": "rel-sl", "session_id": fmt.Sprintf("rel-sl-%d", i), "message": "hello"})
		if st != 200 {
			t.Errorf("/chat during the slow-loris: %d %s", st, b)
		}
	}
	var worst time.Duration
	for range conns {
		r := <-results
		if r.err != nil {
			t.Errorf("slow connection: %v", r.err)
			continue
		}
		worst = max(worst, r.closedAfter)
	}
	wg.Wait()
	t.Logf("all %d slow-loris connections cut; the last after %v", conns, worst)
	if worst > 20*time.Second {
		t.Errorf("a slow-loris connection lived %v; the header timeout is 10s", worst)
	}
	relNoPanic(t, p)
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }
