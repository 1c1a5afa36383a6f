package main

// This file holds what the Anthropic and OpenAI clients share: the tuned HTTP
// client and the classification of an exchange into *ProviderError. Its
// helpers carry the "sse" prefix of this group of files.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

const (
	// sseMaxBody bounds a complete (non-streamed) 2xx answer, in bytes.
	// max_tokens bounds real answers to well under 1 MiB; anything near
	// 8 MiB is a misbehaving upstream, not a reply.
	sseMaxBody = 8 << 20
	// sseMaxErrorBody bounds an error answer, in bytes: only the
	// provider's short {"error": …} object is wanted from it.
	sseMaxErrorBody = 64 << 10
	// sseUserAgent identifies this service to providers.
	sseUserAgent = "production-agent"
	// sseInvalidResponse is the ProviderError.Type of a 2xx answer that
	// cannot be understood (garbage, wrong media type, bad tool JSON).
	sseInvalidResponse = "invalid_response"
)

// newLLMHTTPClient returns the HTTP client shared by the provider clients,
// sized for maxConcurrent calls in flight (resilience.llm_max_concurrent;
// <= 0 means its default).
// It has no overall Timeout: a streamed answer may legitimately run for
// minutes, so each call's context (the resilience timeout) governs instead.
// The client is safe for concurrent use.
func newLLMHTTPClient(maxConcurrent int) *http.Client {
	if maxConcurrent <= 0 {
		maxConcurrent = defaultConfig().Resilience.LLMMaxConcurrent
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Every LLM call goes to one or two hosts; with the default of 2 idle
	// connections per host, most of up to llm_max_concurrent parallel calls
	// would open a fresh TCP+TLS connection and close it again afterwards.
	// Keeping as many idle as may be in flight lets every call reuse one.
	t.MaxIdleConnsPerHost = maxConcurrent
	t.MaxIdleConns = 2 * maxConcurrent
	// Keep idle connections long enough to be reused between chat turns,
	// but drop them before typical provider/LB idle cut-offs.
	t.IdleConnTimeout = 90 * time.Second
	// A TLS handshake that has not finished in 10s will not; fail it fast
	// so the retry layer can try again instead of burning the call budget.
	t.TLSHandshakeTimeout = 10 * time.Second
	// ResponseHeaderTimeout stays 0: a non-streamed completion sends its
	// headers only when the whole answer is ready, which can take as long
	// as the per-call timeout allows.
	t.ResponseHeaderTimeout = 0
	// Use HTTP/2 where the provider offers it: many concurrent calls share
	// one connection instead of each holding its own.
	t.ForceAttemptHTTP2 = true
	return &http.Client{Transport: t}
}

// sseJoinURL joins a base URL (trailing slashes tolerated) and a path.
func sseJoinURL(base, path string) string {
	return strings.TrimRight(base, "/") + path
}

// sseCtxError wraps the done context's error (and its cause, when that
// differs) into a *ProviderError so that errors.Is(err, ctx.Err()) holds
// while a partial answer can still be carried.
func sseCtxError(ctx context.Context, provider, requestID string, partial *LLMResponse) *ProviderError {
	cerr := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != cerr {
		cerr = fmt.Errorf("%w: %w", cerr, cause)
	}
	return &ProviderError{Provider: provider, RequestID: requestID, Partial: partial, Err: cerr}
}

// sseTransportError classifies an error from sending a request or reading
// an answer: the context's error when ctx is done, else a transport error.
func sseTransportError(ctx context.Context, provider, requestID string, err error) error {
	if ctx.Err() != nil {
		return sseCtxError(ctx, provider, requestID, nil)
	}
	return &ProviderError{Provider: provider, RequestID: requestID, Err: err}
}

// sseInvalid returns the non-retryable error for a 2xx answer that cannot be
// understood.
func sseInvalid(provider, requestID, msg string, partial *LLMResponse, err error) *ProviderError {
	return &ProviderError{Provider: provider, Type: sseInvalidResponse, Message: msg, RequestID: requestID, Partial: partial, Err: err}
}

// sseReadAll reads at most limit bytes of r. tooLong reports a body longer
// than limit (then b is nil); err is a read error.
func sseReadAll(r io.Reader, limit int64) (b []byte, tooLong bool, err error) {
	b, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return b, false, err
	}
	if int64(len(b)) > limit {
		return nil, true, nil
	}
	return b, false, nil
}

// sseMediaType reports whether the response's Content-Type is want
// (parameters such as charset ignored).
func sseMediaType(resp *http.Response, want string) bool {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return err == nil && strings.EqualFold(mt, want)
}

// sseRetryAfter reads the provider's wait hint: retry-after-ms (milliseconds,
// preferred when present) or retry-after (delay-seconds or an HTTP-date,
// measured from now). It returns 0 when absent, unparseable or past.
func sseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e12 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 && s < 1e9 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// sseRedact removes every occurrence of key from s, so that an upstream
// echoing our credential never puts it into an error message.
func sseRedact(s, key string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, "[redacted]")
}

// sseSnippet returns the start of an unparseable error body as printable
// text, for the error message.
func sseSnippet(b []byte) string {
	const max = 256
	b = bytes.TrimSpace(b)
	if len(b) > max {
		b = b[:max]
	}
	return strings.ToValidUTF8(string(b), string(utf8.RuneError))
}

// sseIsObject reports whether raw is one valid JSON object.
func sseIsObject(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// sseCloneResponse returns a copy of r whose ToolCalls slice is its own, for
// ProviderError.Partial.
func sseCloneResponse(r *LLMResponse) *LLMResponse {
	c := *r
	c.ToolCalls = append([]ToolCall(nil), r.ToolCalls...)
	return &c
}

// sseNewRequest encodes payload as the JSON body of a POST to url, with
// tools (an encoded JSON array, or nil for none) spliced in as its "tools"
// member, and sets the extra headers.
//
// The tools arrive encoded because they are the same on every call: as a
// json.RawMessage field they would be validated and compacted again by
// encoding/json each time, which cost more than the rest of the body.
func sseNewRequest(ctx context.Context, provider, url string, payload any, tools []byte, header map[string]string) (*http.Request, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", provider, err)
	}
	if len(tools) > 0 {
		if len(body) < 2 || body[len(body)-1] != '}' {
			return nil, fmt.Errorf("%s: encode request: body is not a JSON object", provider)
		}
		sep := ","
		if len(body) == 2 {
			sep = ""
		}
		whole := make([]byte, 0, len(body)+len(sep)+len(`"tools":`)+len(tools))
		body = append(append(append(append(append(whole, body[:len(body)-1]...), sep...), `"tools":`...), tools...), '}')
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", provider, err)
	}
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	return hr, nil
}

// sseToolsCache remembers the encoded tools array of the last tool list a
// client sent: the agent passes the same specs (one backing array, never
// modified) on every call. Safe for concurrent use.
type sseToolsCache struct {
	last atomic.Pointer[sseToolsEntry]
}

type sseToolsEntry struct {
	first *ToolSpec // &specs[0]: the same backing array means the same list
	n     int
	json  []byte
}

// encode returns the JSON array of wire(spec) for each spec (nil for no
// specs), from the cache when specs is the list encoded last time.
func (c *sseToolsCache) encode(provider string, specs []ToolSpec, wire func(ToolSpec) any) ([]byte, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	if e := c.last.Load(); e != nil && e.first == &specs[0] && e.n == len(specs) {
		return e.json, nil
	}
	tools := make([]any, len(specs))
	for i, t := range specs {
		tools[i] = wire(t)
	}
	enc, err := json.Marshal(tools)
	if err != nil {
		return nil, fmt.Errorf("%s: encode tools: %w", provider, err)
	}
	c.last.Store(&sseToolsEntry{first: &specs[0], n: len(specs), json: enc})
	return enc, nil
}

// sseHeaderKeys are the request headers both clients set, in canonical form.
var sseHeaderKeys = [...]string{"Content-Type", "User-Agent", "Accept"}

// sseDo sets the headers both clients share, sends hr, and turns a
// transport failure or a non-2xx answer into a *ProviderError.
func sseDo(ctx context.Context, hc *http.Client, hr *http.Request, stream bool, provider, apiKey, requestIDHeader string,
	now time.Time, parse func(body []byte) (typ, msg, requestID string, ok bool)) (*http.Response, error) {
	accept := "application/json"
	if stream {
		accept = "text/event-stream"
	}
	setHeaders(hr.Header, sseHeaderKeys[:], "application/json", sseUserAgent, accept)
	// The request goes straight to the client's transport, not through
	// hc.Do: an LLM API answers, it does not redirect, and following a
	// redirect would send the API key header (x-api-key is not among the
	// headers net/http drops on a cross-host redirect) wherever it points.
	// A 3xx is an error like any other non-2xx answer. Skipping the
	// redirect machinery also spares a copy of every request's headers.
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if u := hr.URL.User; u != nil && hr.Header.Get("Authorization") == "" {
		// What hc.Do does with a base_url holding user:password.
		pw, _ := u.Password()
		hr.SetBasicAuth(u.Username(), pw)
	}
	resp, err := rt.RoundTrip(hr)
	if err != nil {
		// Named like hc.Do's errors, so a logged cause says which URL failed
		// (password redacted).
		op := hr.Method[:1] + strings.ToLower(hr.Method[1:])
		return nil, sseTransportError(ctx, provider, "", &url.Error{Op: op, URL: hr.URL.Redacted(), Err: err})
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, sseStatusError(provider, apiKey, requestIDHeader, resp, now, parse)
	}
	return resp, nil
}

// sseReadAnswer reads a complete 2xx answer: it must be JSON and at most
// sseMaxBody bytes. It returns the body and the provider's request id.
func sseReadAnswer(ctx context.Context, resp *http.Response, provider, requestIDHeader string) ([]byte, string, error) {
	rid := resp.Header.Get(requestIDHeader)
	if !sseMediaType(resp, "application/json") {
		return nil, rid, sseInvalid(provider, rid, fmt.Sprintf("unexpected content type %q", resp.Header.Get("Content-Type")), nil, nil)
	}
	body, tooLong, err := sseReadAll(resp.Body, sseMaxBody)
	if err != nil {
		return nil, rid, sseTransportError(ctx, provider, rid, err)
	}
	if tooLong {
		return nil, rid, sseInvalid(provider, rid, fmt.Sprintf("response body longer than %d bytes", sseMaxBody), nil, nil)
	}
	return body, rid, nil
}

func sseStatusError(provider, apiKey, requestIDHeader string, resp *http.Response, now time.Time,
	parse func(body []byte) (typ, msg, requestID string, ok bool)) *ProviderError {
	pe := &ProviderError{
		Provider:   provider,
		StatusCode: resp.StatusCode,
		RequestID:  resp.Header.Get(requestIDHeader),
		RetryAfter: sseRetryAfter(resp.Header, now),
	}
	body, _, err := sseReadAll(resp.Body, sseMaxErrorBody)
	if typ, msg, rid, ok := parse(body); ok {
		pe.Type, pe.Message = typ, msg
		if pe.RequestID == "" {
			pe.RequestID = rid
		}
	} else if len(body) > 0 {
		pe.Message = sseSnippet(body)
	}
	if err != nil && pe.Message == "" {
		pe.Err = err
	}
	pe.Message = sseRedact(pe.Message, apiKey)
	return pe
}
