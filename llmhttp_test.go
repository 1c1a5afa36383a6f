package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sseTestKey is the API key the fake-server clients use; tests check it
// never appears in an error message.
const sseTestKey = "sk-test-secret-key-123"

// sseDecodeBody reads r's JSON body into a generic value.
func sseDecodeBody(t testing.TB, r *http.Request) map[string]any {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("read request body: %v", err)
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("request body is not a JSON object: %v: %s", err, b)
	}
	return m
}

// sseJSONEqual reports (as a test error) whether got, marshalled, differs
// from the JSON text want, compared as decoded values.
func sseJSONEqual(t testing.TB, what string, got any, want string) {
	t.Helper()
	gb, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("marshal %s: %v", what, err)
	}
	var g, w any
	if err := json.Unmarshal(gb, &g); err != nil {
		t.Fatalf("unmarshal %s: %v", what, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON for %s: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s; want %s", what, gb, want)
	}
}

// sseHijackReset takes over the connection of w (anything already written
// is flushed first; with nothing written, no status line goes out) and
// closes it with a TCP reset, simulating an upstream that dies.
func sseHijackReset(t testing.TB, w http.ResponseWriter) {
	t.Helper()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// sseAsProviderError returns err as *ProviderError or fails the test.
func sseAsProviderError(t testing.TB, err error) *ProviderError {
	t.Helper()
	var pe *ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ProviderError", err, err)
	}
	return pe
}

// sseProviderCase is one fake provider used by the provider-neutral tests.
type sseProviderCase struct {
	name string
	// start returns a Provider whose every call is answered by h.
	start func(t testing.TB, h http.HandlerFunc) Provider
	// replyError writes the provider's error body with that status.
	replyError func(w http.ResponseWriter, status int, typ, msg string)
	// requestIDHeader is the header carrying the provider's request id.
	requestIDHeader string
	// validJSON is a well-formed complete answer with text "ok".
	validJSON string
}

func sseProviders() []sseProviderCase {
	return []sseProviderCase{
		{
			name: "anthropic",
			start: func(t testing.TB, h http.HandlerFunc) Provider {
				c, _ := anthFake(t, h)
				return c
			},
			replyError:      anthReplyError,
			requestIDHeader: "request-id",
			validJSON:       anthTextMessage("ok", 1, 1),
		},
		{
			name: "openai",
			start: func(t testing.TB, h http.HandlerFunc) Provider {
				c, _ := oaiFake(t, h)
				return c
			},
			replyError:      oaiReplyError,
			requestIDHeader: "x-request-id",
			validJSON:       oaiTextCompletion("ok", 1, 1),
		},
	}
}

func TestProviderStatusErrors(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		status        int
		typ           string
		header        map[string]string
		wantRetry     time.Duration
		wantRetryable bool
	}{
		{400, "invalid_request_error", nil, 0, false},
		{401, "authentication_error", nil, 0, false},
		{403, "permission_error", nil, 0, false},
		{404, "not_found_error", nil, 0, false},
		{408, "timeout_error", nil, 0, true},
		{413, "request_too_large", nil, 0, false},
		{429, "rate_limit_error", map[string]string{"Retry-After": "7"}, 7 * time.Second, true},
		{429, "rate_limit_error", map[string]string{"Retry-After": now.Add(30 * time.Second).Format(http.TimeFormat)}, 30 * time.Second, true},
		{429, "rate_limit_error", map[string]string{"Retry-After": "7", "Retry-After-Ms": "1500"}, 1500 * time.Millisecond, true},
		{500, "api_error", nil, 0, true},
		{503, "api_error", map[string]string{"Retry-After": "2"}, 2 * time.Second, true},
		{529, "overloaded_error", nil, 0, true},
	}
	for _, pc := range sseProviders() {
		for _, tt := range tests {
			t.Run(pc.name+"/"+http.StatusText(tt.status)+"/"+tt.typ, func(t *testing.T) {
				p := pc.start(t, func(w http.ResponseWriter, r *http.Request) {
					for k, v := range tt.header {
						w.Header().Set(k, v)
					}
					w.Header().Set(pc.requestIDHeader, "req_123")
					// The message echoes our key to prove it is redacted.
					pc.replyError(w, tt.status, tt.typ, "boom for "+sseTestKey)
				})
				sseSetClock(p, func() time.Time { return now })
				_, err := p.Complete(context.Background(), &LLMRequest{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}})
				pe := sseAsProviderError(t, err)
				if pe.StatusCode != tt.status || pe.Type != tt.typ || pe.RequestID != "req_123" || pe.Provider != pc.name {
					t.Errorf("error = {status %d type %q request-id %q provider %q}; want {%d %q req_123 %s}",
						pe.StatusCode, pe.Type, pe.RequestID, pe.Provider, tt.status, tt.typ, pc.name)
				}
				if pe.RetryAfter != tt.wantRetry {
					t.Errorf("RetryAfter = %v; want %v", pe.RetryAfter, tt.wantRetry)
				}
				if got := pe.Retryable(); got != tt.wantRetryable {
					t.Errorf("Retryable() = %v; want %v", got, tt.wantRetryable)
				}
				if !strings.HasPrefix(pe.Message, "boom for ") {
					t.Errorf("Message = %q; want the provider's message", pe.Message)
				}
				if strings.Contains(err.Error(), sseTestKey) {
					t.Errorf("error %q contains the API key", err)
				}
			})
		}
	}
}

// sseSetClock sets the clock of a provider client built by the fakes.
func sseSetClock(p Provider, now func() time.Time) {
	switch c := p.(type) {
	case *AnthropicClient:
		c.now = now
	case *OpenAIClient:
		c.now = now
	}
}

func TestProviderUnparseableErrorBody(t *testing.T) {
	for _, pc := range sseProviders() {
		t.Run(pc.name, func(t *testing.T) {
			p := pc.start(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				io.WriteString(w, "<html>bad gateway</html>")
			})
			_, err := p.Complete(context.Background(), &LLMRequest{Model: "m"})
			pe := sseAsProviderError(t, err)
			if pe.StatusCode != 502 || pe.Type != "" || pe.Message != "<html>bad gateway</html>" || !pe.Retryable() {
				t.Errorf("error = {%d %q %q retryable %v}; want {502 \"\" body snippet true}", pe.StatusCode, pe.Type, pe.Message, pe.Retryable())
			}
		})
	}
}

func TestProviderInvalidResponses(t *testing.T) {
	tests := []struct {
		name        string
		handler     func(t testing.TB, pc sseProviderCase) http.HandlerFunc
		wantType    string // "" → transport error
		wantRetry   bool   // checked for transport errors only
		wantWrapped error
	}{
		{
			name: "garbage 200 body",
			handler: func(t testing.TB, pc sseProviderCase) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, "this is not json")
				}
			},
			wantType: "invalid_response",
		},
		{
			name: "json of another shape",
			handler: func(t testing.TB, pc sseProviderCase) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"hello":"world"}`)
				}
			},
			wantType: "invalid_response",
		},
		{
			name: "wrong content type",
			handler: func(t testing.TB, pc sseProviderCase) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					io.WriteString(w, pc.validJSON)
				}
			},
			wantType: "invalid_response",
		},
		{
			name: "truncated json in a complete body",
			handler: func(t testing.TB, pc sseProviderCase) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, pc.validJSON[:len(pc.validJSON)/2])
				}
			},
			wantType: "invalid_response",
		},
		{
			name: "body cut mid-JSON",
			handler: func(t testing.TB, pc sseProviderCase) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Content-Length", "100000")
					io.WriteString(w, pc.validJSON[:len(pc.validJSON)/2])
				}
			},
			wantRetry: true,
		},
		{
			name: "connection reset",
			handler: func(t testing.TB, pc sseProviderCase) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					sseHijackReset(t, w)
				}
			},
			wantRetry: true,
		},
	}
	for _, pc := range sseProviders() {
		for _, tt := range tests {
			t.Run(pc.name+"/"+tt.name, func(t *testing.T) {
				p := pc.start(t, tt.handler(t, pc))
				resp, err := p.Complete(context.Background(), &LLMRequest{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}})
				if resp != nil {
					t.Errorf("response = %+v; want nil", resp)
				}
				pe := sseAsProviderError(t, err)
				if pe.StatusCode != 0 || pe.Type != tt.wantType {
					t.Errorf("error = {status %d type %q} (%v); want {0 %q}", pe.StatusCode, pe.Type, err, tt.wantType)
				}
				if tt.wantType == "" {
					if pe.Err == nil || pe.Retryable() != tt.wantRetry {
						t.Errorf("transport error: Err %v, Retryable %v; want cause and %v", pe.Err, pe.Retryable(), tt.wantRetry)
					}
				}
			})
		}
	}
}

func TestProviderContextCanceledDuringRequest(t *testing.T) {
	for _, pc := range sseProviders() {
		for _, stream := range []bool{false, true} {
			name := pc.name + "/complete"
			if stream {
				name = pc.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				reached := make(chan struct{})
				p := pc.start(t, func(w http.ResponseWriter, r *http.Request) {
					// Drain the body: the server notices a client that
					// went away only once it reads past the request.
					io.Copy(io.Discard, r.Body)
					close(reached)
					<-r.Context().Done()
				})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go func() {
					<-reached
					cancel()
				}()
				req := &LLMRequest{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}}
				var err error
				if stream {
					_, err = p.Stream(ctx, req, func(StreamEvent) error { return nil })
				} else {
					_, err = p.Complete(ctx, req)
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("error = %v; want one wrapping context.Canceled", err)
				}
				if strings.Contains(err.Error(), sseTestKey) {
					t.Errorf("error %q contains the API key", err)
				}
			})
		}
	}
}

func TestProviderContextCause(t *testing.T) {
	cause := errors.New("llm call budget spent")
	c, _ := anthFake(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeoutCause(context.Background(), time.Nanosecond, cause)
	defer cancel()
	<-ctx.Done()
	_, err := c.Complete(ctx, &LLMRequest{Model: "m"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, cause) {
		t.Errorf("error = %v; want it to wrap DeadlineExceeded and the cause", err)
	}
}

func TestSSERetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name string
		h    map[string]string
		want time.Duration
	}{
		{"absent", nil, 0},
		{"seconds", map[string]string{"Retry-After": "12"}, 12 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{"http date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"past http date", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"negative", map[string]string{"Retry-After": "-3"}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"ms wins", map[string]string{"Retry-After": "12", "Retry-After-Ms": "250"}, 250 * time.Millisecond},
		{"bad ms falls back", map[string]string{"Retry-After": "12", "Retry-After-Ms": "x"}, 12 * time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.h {
			h.Set(k, v)
		}
		if got := sseRetryAfter(h, now); got != tt.want {
			t.Errorf("%s: sseRetryAfter(%v) = %v; want %v", tt.name, tt.h, got, tt.want)
		}
	}
}

func TestNewLLMHTTPClient(t *testing.T) {
	if tr := newLLMHTTPClient(4096).Transport.(*http.Transport); tr.MaxIdleConnsPerHost != 4096 || tr.MaxIdleConns != 8192 {
		t.Errorf("sized for 4096 calls: idle per host %d, idle %d; want 4096, 8192", tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
	}
	c := newLLMHTTPClient(0)
	if c.Timeout != 0 {
		t.Errorf("Timeout = %v; want 0 (per-call contexts govern)", c.Timeout)
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport is %T; want *http.Transport", c.Transport)
	}
	if tr.MaxIdleConnsPerHost != 256 || tr.IdleConnTimeout != 90*time.Second || tr.TLSHandshakeTimeout != 10*time.Second ||
		tr.ResponseHeaderTimeout != 0 || !tr.ForceAttemptHTTP2 || tr.Proxy == nil {
		t.Errorf("transport = {idle/host %d idle %v tls %v header %v h2 %v proxy %v}; want {256 90s 10s 0 true set}",
			tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout, tr.ForceAttemptHTTP2, tr.Proxy != nil)
	}
}

func TestSSEJoinURL(t *testing.T) {
	for _, tt := range []struct{ base, path, want string }{
		{"https://api.anthropic.com", "/v1/messages", "https://api.anthropic.com/v1/messages"},
		{"https://api.anthropic.com/", "/v1/messages", "https://api.anthropic.com/v1/messages"},
		{"http://localhost:11434/v1//", "/chat/completions", "http://localhost:11434/v1/chat/completions"},
	} {
		if got := sseJoinURL(tt.base, tt.path); got != tt.want {
			t.Errorf("sseJoinURL(%q, %q) = %q; want %q", tt.base, tt.path, got, tt.want)
		}
	}
}

// TestProviderRedirectNotFollowed: a provider answering with a redirect
// gets no second request from us: the target never sees the API key, and
// the call fails with the 3xx status, not retried.
func TestProviderRedirectNotFollowed(t *testing.T) {
	for _, pc := range sseProviders() {
		for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			t.Run(pc.name+"/"+http.StatusText(status), func(t *testing.T) {
				target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					t.Errorf("redirect followed: %s %s with headers %v", r.Method, r.URL, r.Header)
				}))
				defer target.Close()
				p := pc.start(t, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, target.URL+r.URL.Path, status)
				})
				_, err := p.Complete(context.Background(), &LLMRequest{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}})
				pe := sseAsProviderError(t, err)
				if pe.StatusCode != status || pe.Retryable() {
					t.Errorf("error status %d retryable %v; want %d, not retryable", pe.StatusCode, pe.Retryable(), status)
				}
			})
		}
	}
}

// TestProviderBasicAuthFromBaseURL: user:password in llm.base_url is sent
// as Basic authorization when the provider's own scheme sets none
// (Anthropic's x-api-key), as net/http's client would.
func TestProviderBasicAuthFromBaseURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, pw, ok := r.BasicAuth(); !ok || u != "gw" || pw != "s3cret" {
			t.Errorf("basic auth %q %q %v; want gw s3cret", u, pw, ok)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, anthTextMessage("ok", 1, 1))
	}))
	defer srv.Close()
	c := newAnthropicClient(strings.Replace(srv.URL, "http://", "http://gw:s3cret@", 1), sseTestKey, srv.Client())
	if _, err := c.Complete(context.Background(), &LLMRequest{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
}

// TestProviderTransportErrorNamesURL: a call that cannot reach the
// provider fails with an error naming the method and URL, the password of
// a base_url holding one redacted, as http.Client's errors do.
func TestProviderTransportErrorNamesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := strings.Replace(srv.URL, "http://", "http://gw:s3cret@", 1)
	srv.Close() // nothing listens any more
	c := newOpenAIClient(base+"/v1", sseTestKey, &http.Client{})
	_, err := c.Complete(context.Background(), &LLMRequest{Model: "m", Messages: []Message{{Role: "user", Content: "hi"}}})
	if err == nil {
		t.Fatal("call to a closed server succeeded")
	}
	u, perr := url.Parse(base + "/v1/chat/completions")
	if perr != nil {
		t.Fatal(perr)
	}
	want := `Post "` + u.Redacted() + `"` // the password replaced
	if msg := err.Error(); !strings.Contains(msg, want) || strings.Contains(msg, "s3cret") || strings.Contains(msg, sseTestKey) {
		t.Errorf("error %q; want it to name %s, without the password or key", msg, want)
	}
}
