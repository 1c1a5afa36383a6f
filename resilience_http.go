package main

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// setRateLimitHeaders writes the IETF draft headers for d, the decision of the
// bucket called name:
//
//	RateLimit-Policy: "<name>";q=<b>;w=<window secs>   (w omitted when the rate is Inf or 0)
//	RateLimit: "<name>";r=<remaining>;t=<ceil secs to next token, 0 when full>
//
// the legacy Envoy-compatible X-RateLimit-Limit (b), X-RateLimit-Remaining
// (floor tokens) and X-RateLimit-Reset (the same t), and, when !d.Allowed,
// Retry-After: <ceil(RetryAfter) seconds, ≥ 1 and ≥ t>. The values are
// structured-field lists of one item (name is reduced to printable ASCII and
// quoted). Call it before WriteHeader: these are header fields, never trailers.
func setRateLimitHeaders(h http.Header, name string, d Decision) {
	item, policy := rlPolicy(name, d)
	t := rlCeilSeconds(d.Reset)
	ts := strconv.FormatInt(t, 10)
	remaining := strconv.Itoa(max(d.Remaining, 0))
	// Canonical keys set directly, with one backing array for the values:
	// Header.Set would canonicalise and allocate for each of them.
	setHeaders(h, rlHeaderKeys[:], policy, item+";r="+remaining+";t="+ts, strconv.Itoa(d.Limit), remaining, ts)
	if !d.Allowed {
		h["Retry-After"] = []string{strconv.FormatInt(rlRetryAfterSeconds(d.RetryAfter, t), 10)}
	}
}

// rlHeaderKeys are the canonical forms of the headers setRateLimitHeaders writes.
var rlHeaderKeys = [...]string{"Ratelimit-Policy", "Ratelimit", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"}

// rlPolicyCache remembers the RateLimit-Policy values built, one slot per
// bucket name (by a hash of it; a request passes both the "ip" and the
// "user" bucket): a bucket's name, size and window change only with the
// configuration.
var rlPolicyCache [8]atomic.Pointer[rlPolicyEntry]

// rlPolicySlot picks name's slot of rlPolicyCache.
func rlPolicySlot(name string) *atomic.Pointer[rlPolicyEntry] {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return &rlPolicyCache[h%uint32(len(rlPolicyCache))]
}

type rlPolicyEntry struct {
	name   string
	limit  int
	window time.Duration
	item   string // rlSFString(name)
	policy string
}

// rlPolicy returns the bucket's name as an sf-string and the RateLimit-Policy
// value `<item>;q=<limit>[;w=<secs>]`.
func rlPolicy(name string, d Decision) (item, policy string) {
	slot := rlPolicySlot(name)
	if e := slot.Load(); e != nil && e.name == name && e.limit == d.Limit && e.window == d.Window {
		return e.item, e.policy
	}
	item = rlSFString(name)
	policy = item + ";q=" + strconv.Itoa(d.Limit)
	if d.Window > 0 {
		policy += ";w=" + strconv.FormatInt(rlCeilSeconds(d.Window), 10)
	}
	slot.Store(&rlPolicyEntry{name: name, limit: d.Limit, window: d.Window, item: item, policy: policy})
	return item, policy
}

// setHeaders sets each of keys, which must be in canonical form
// (textproto.CanonicalMIMEHeaderKey), to the value at the same index, with one
// allocation for all the value slices.
func setHeaders(h http.Header, keys []string, values ...string) {
	vs := make([]string, len(values))
	copy(vs, values)
	for i, k := range keys {
		h[k] = vs[i : i+1 : i+1]
	}
}

// rlRetryAfterSeconds converts a wait into a Retry-After value: whole seconds
// rounded up, at least 1 and at least floor (the RateLimit t parameter, so the
// two headers never disagree).
func rlRetryAfterSeconds(d time.Duration, floor int64) int64 {
	return max(rlCeilSeconds(d), 1, floor)
}

// rlCeilSeconds rounds a non-negative duration up to whole seconds without
// overflowing near math.MaxInt64; negative durations give 0.
func rlCeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// rlSFString renders s as a structured-field sf-string (RFC 8941 §3.3.3):
// printable ASCII only (others are dropped), with " and \ escaped.
func rlSFString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			continue
		}
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// rlHTTPStatus maps the resilience errors to the HTTP answer of DESIGN §4
// (HD1/HD2): ErrRateLimited → 429 "rate_limited" (Retry-After from the
// limiter's Decision, so retryAfter is 0 here); *OpenError / ErrOpen → 503
// "circuit_open" with the remaining open time; ErrTooManyRequests (half-open
// probes busy) → 503 "circuit_open", 1 s; ErrFull (bulkhead queue full or
// queue timeout) → 503 "overloaded", 1 s; ErrTimeout (our own per-operation
// timeout) → 504 "upstream_timeout" with no Retry-After. ok is false for any
// other error, which the caller maps itself.
func rlHTTPStatus(err error) (status int, errType string, retryAfter time.Duration, ok bool) {
	var open *OpenError
	switch {
	case err == nil:
		return 0, "", 0, false
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests, "rate_limited", 0, true
	case errors.As(err, &open):
		return http.StatusServiceUnavailable, "circuit_open", max(open.Remaining, time.Second), true
	case errors.Is(err, ErrOpen), errors.Is(err, ErrTooManyRequests):
		return http.StatusServiceUnavailable, "circuit_open", time.Second, true
	case errors.Is(err, ErrFull):
		return http.StatusServiceUnavailable, "overloaded", time.Second, true
	case errors.Is(err, ErrTimeout):
		return http.StatusGatewayTimeout, "upstream_timeout", 0, true
	}
	return 0, "", 0, false
}
