package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var (
	rlRetryAfterRe = regexp.MustCompile(`^[0-9]+$`)
	rlPolicyRe     = regexp.MustCompile(`^"(?:[^"\\]|\\["\\])*";q=([0-9]+)(?:;w=([0-9]+))?$`)
	rlRateLimitRe  = regexp.MustCompile(`^"(?:[^"\\]|\\["\\])*";r=([0-9]+);t=([0-9]+)$`)
)

// HD1, HD3, HD4: header values for allowed and refused decisions.
func TestSetRateLimitHeaders(t *testing.T) {
	tests := []struct {
		name                 string
		d                    Decision
		policy, rl           string
		retryAfter           string // "" = absent
		xLimit, xRem, xReset string
	}{
		{
			name:   "allowed, partly used",
			d:      Decision{Allowed: true, Limit: 20, Remaining: 17, Reset: 80 * time.Millisecond, Window: 2 * time.Second},
			policy: `"principal";q=20;w=2`, rl: `"principal";r=17;t=1`,
			xLimit: "20", xRem: "17", xReset: "1",
		},
		{
			name:   "allowed, full again",
			d:      Decision{Allowed: true, Limit: 20, Remaining: 20, Window: 2 * time.Second},
			policy: `"principal";q=20;w=2`, rl: `"principal";r=20;t=0`,
			xLimit: "20", xRem: "20", xReset: "0",
		},
		{
			name:   "refused, sub-second wait rounds up to 1",
			d:      Decision{Limit: 20, Reset: 100 * time.Millisecond, RetryAfter: 100 * time.Millisecond, Window: 2 * time.Second},
			policy: `"principal";q=20;w=2`, rl: `"principal";r=0;t=1`, retryAfter: "1",
			xLimit: "20", xRem: "0", xReset: "1",
		},
		{
			name:   "refused, 2.5s",
			d:      Decision{Limit: 5, Reset: 2500 * time.Millisecond, RetryAfter: 2500 * time.Millisecond, Window: 50 * time.Second},
			policy: `"principal";q=5;w=50`, rl: `"principal";r=0;t=3`, retryAfter: "3",
			xLimit: "5", xRem: "0", xReset: "3",
		},
		{
			name:   "refused, retry shorter than t still ≥ t",
			d:      Decision{Limit: 5, Reset: 4 * time.Second, RetryAfter: time.Second, Window: 50 * time.Second},
			policy: `"principal";q=5;w=50`, rl: `"principal";r=0;t=4`, retryAfter: "4",
			xLimit: "5", xRem: "0", xReset: "4",
		},
		{
			name:   "rate 0: no window",
			d:      Decision{Limit: 3, RetryAfter: rlInfDuration, Reset: rlInfDuration},
			policy: `"principal";q=3`, rl: `"principal";r=0;t=9223372037`, retryAfter: "9223372037",
			xLimit: "3", xRem: "0", xReset: "9223372037",
		},
	}
	for _, tc := range tests {
		h := http.Header{}
		setRateLimitHeaders(h, "principal", tc.d)
		for _, c := range []struct{ key, want string }{
			{"RateLimit-Policy", tc.policy}, {"RateLimit", tc.rl}, {"Retry-After", tc.retryAfter},
			{"X-RateLimit-Limit", tc.xLimit}, {"X-RateLimit-Remaining", tc.xRem}, {"X-RateLimit-Reset", tc.xReset},
		} {
			if got := h.Get(c.key); got != c.want {
				t.Errorf("%s: %s = %q; want %q", tc.name, c.key, got, c.want)
			}
		}
		rlCheckHeaderSyntax(t, tc.name, h)
	}
}

// rlCheckHeaderSyntax checks HD1/HD3: SF-list syntax, Retry-After digits ≥ 1
// and Retry-After ≥ t.
func rlCheckHeaderSyntax(t *testing.T, name string, h http.Header) {
	t.Helper()
	if !rlPolicyRe.MatchString(h.Get("RateLimit-Policy")) {
		t.Errorf("%s: RateLimit-Policy %q is not a one-item SF list", name, h.Get("RateLimit-Policy"))
	}
	m := rlRateLimitRe.FindStringSubmatch(h.Get("RateLimit"))
	if m == nil {
		t.Errorf("%s: RateLimit %q is not a one-item SF list", name, h.Get("RateLimit"))
		return
	}
	ra := h.Get("Retry-After")
	if ra == "" {
		return
	}
	if !rlRetryAfterRe.MatchString(ra) {
		t.Errorf("%s: Retry-After %q does not match ^[0-9]+$", name, ra)
	}
	raN, _ := strconv.ParseInt(ra, 10, 64)
	tN, _ := strconv.ParseInt(m[2], 10, 64)
	if raN < 1 || raN < tN {
		t.Errorf("%s: Retry-After %d; want ≥ 1 and ≥ t=%d", name, raN, tN)
	}
}

// HD3: a name with quotes, backslashes and control bytes still yields a valid
// sf-string.
func TestSetRateLimitHeadersEscapesName(t *testing.T) {
	h := http.Header{}
	setRateLimitHeaders(h, "ip\"\\\x01é", Decision{Allowed: true, Limit: 1, Remaining: 1, Window: time.Second})
	if got, want := h.Get("RateLimit-Policy"), `"ip\"\\";q=1;w=1`; got != want {
		t.Errorf("RateLimit-Policy = %q; want %q", got, want)
	}
}

// HD1, HD3: end to end through a real limiter and an HTTP round trip; the
// headers arrive as header fields (never trailers) and a refusal is 429.
func TestRateLimitHeadersOverHTTP(t *testing.T) {
	clock := &rlFakeClock{t: rlT0}
	k := NewKeyedLimiter(0.5, 2, 100, clock.Now)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := k.Decide("user")
		setRateLimitHeaders(w.Header(), "user", d)
		if !d.Allowed {
			w.WriteHeader(http.StatusTooManyRequests)
		}
		fmt.Fprint(w, "{}")
	}))
	defer srv.Close()
	var statuses []int
	for range 3 {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if len(resp.Trailer) != 0 {
			t.Errorf("trailers %v; want none", resp.Trailer)
		}
		rlCheckHeaderSyntax(t, "http", resp.Header)
		if resp.StatusCode == http.StatusTooManyRequests {
			if got := resp.Header.Get("Retry-After"); got != "2" {
				t.Errorf("429 Retry-After = %q; want \"2\" (one token at 0.5/s)", got)
			}
		}
	}
	if want := []int{200, 200, 429}; fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("statuses = %v; want %v", statuses, want)
	}
}

// HD2: the status and Retry-After for each resilience error.
func TestResilienceHTTPStatus(t *testing.T) {
	tests := []struct {
		err        error
		status     int
		typ        string
		retryAfter time.Duration
		ok         bool
	}{
		{fmt.Errorf("chat: %w", ErrRateLimited), 429, "rate_limited", 0, true},
		{&OpenError{Name: "llm", Remaining: 1500 * time.Millisecond}, 503, "circuit_open", 1500 * time.Millisecond, true},
		{&OpenError{Name: "llm"}, 503, "circuit_open", time.Second, true},
		{ErrTooManyRequests, 503, "circuit_open", time.Second, true},
		{&FullError{Name: "tools", Reason: "queue_timeout"}, 503, "overloaded", time.Second, true},
		{fmt.Errorf("llm: %w", ErrTimeout), 504, "upstream_timeout", 0, true},
		{context.DeadlineExceeded, 0, "", 0, false},
		{nil, 0, "", 0, false},
	}
	for _, tc := range tests {
		status, typ, ra, ok := rlHTTPStatus(tc.err)
		if status != tc.status || typ != tc.typ || ra != tc.retryAfter || ok != tc.ok {
			t.Errorf("rlHTTPStatus(%v) = %d, %q, %v, %v; want %d, %q, %v, %v",
				tc.err, status, typ, ra, ok, tc.status, tc.typ, tc.retryAfter, tc.ok)
		}
	}
	// HD2: Retry-After for an open breaker is ceil(remaining open time).
	if got := rlRetryAfterSeconds(1500*time.Millisecond, 0); got != 2 {
		t.Errorf("Retry-After for 1.5s open = %d; want 2", got)
	}
}

// TestRateLimitPolicyCache: the two buckets a request passes keep their own
// cached policy (one slot each), and a changed size is not served stale.
func TestRateLimitPolicyCache(t *testing.T) {
	if rlPolicySlot("ip") == rlPolicySlot("principal") {
		t.Error(`"ip" and "principal" share a policy cache slot: every request would rebuild both`)
	}
	d := Decision{Limit: 20, Window: 2 * time.Second}
	_, p1 := rlPolicy("ip", d)
	_, p2 := rlPolicy("ip", d)
	if p1 != `"ip";q=20;w=2` || p2 != p1 {
		t.Errorf("policy %q then %q; want \"ip\";q=20;w=2 twice", p1, p2)
	}
	d.Limit = 30
	if _, p := rlPolicy("ip", d); p != `"ip";q=30;w=2` {
		t.Errorf("after a size change: %q", p)
	}
}
