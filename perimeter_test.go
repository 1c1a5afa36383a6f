package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{"empty", nil, nil, false},
		{"blank entries skipped", []string{"", "  "}, nil, false},
		{"ipv4 address", []string{"10.0.0.1"}, []string{"10.0.0.1/32"}, false},
		{"ipv6 address", []string{"2001:db8::1"}, []string{"2001:db8::1/128"}, false},
		{"cidrs, masked", []string{" 10.1.2.3/8 ", "fd00::1/8"}, []string{"10.0.0.0/8", "fd00::/8"}, false},
		{"ipv4-mapped address", []string{"::ffff:10.0.0.1"}, []string{"10.0.0.1/32"}, false},
		{"ipv4-mapped cidr", []string{"::ffff:10.0.0.0/104"}, []string{"10.0.0.0/8"}, false},
		{"bad address", []string{"10.0.0.300"}, nil, true},
		{"bad cidr", []string{"10.0.0.0/33"}, nil, true},
		{"hostname", []string{"proxy.internal"}, nil, true},
		{"zone", []string{"fe80::1%eth0"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTrustedProxies(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseTrustedProxies(%q) error = %v; want error %v", tt.in, err, tt.wantErr)
			}
			var gotS []string
			for _, p := range got {
				gotS = append(gotS, p.String())
			}
			if !reflect.DeepEqual(gotS, tt.want) {
				t.Errorf("parseTrustedProxies(%q) = %q; want %q", tt.in, gotS, tt.want)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := parseTrustedProxies([]string{"10.0.0.0/8", "192.168.1.1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		trusted   []netip.Prefix
		remote    string
		xff       []string
		want      string
		wantProxy bool
	}{
		{"no proxies configured", nil, "203.0.113.7:5555", nil, "203.0.113.7", false},
		{"no proxies configured, XFF ignored", nil, "203.0.113.7:5555", []string{"1.2.3.4"}, "203.0.113.7", false},
		{"spoofed XFF from untrusted peer ignored", trusted, "203.0.113.7:5555", []string{"10.0.0.9, 1.2.3.4"}, "203.0.113.7", false},
		{"trusted peer without XFF", trusted, "10.0.0.2:80", nil, "10.0.0.2", true},
		{"trusted peer, one client", trusted, "10.0.0.2:80", []string{"198.51.100.4"}, "198.51.100.4", true},
		{"chain of trusted hops", trusted, "10.0.0.2:80", []string{"198.51.100.4, 192.168.1.1, 10.3.3.3"}, "198.51.100.4", true},
		{"client-supplied prefix left of the real client", trusted, "10.0.0.2:80", []string{"6.6.6.6, 198.51.100.4, 10.3.3.3"}, "198.51.100.4", true},
		{"several XFF headers joined", trusted, "10.0.0.2:80", []string{"6.6.6.6, 198.51.100.4", "10.3.3.3"}, "198.51.100.4", true},
		{"all hops trusted: leftmost", trusted, "10.0.0.2:80", []string{"10.9.9.9, 10.3.3.3"}, "10.9.9.9", true},
		{"ipv6 peer untrusted", trusted, "[2001:db8::5]:443", []string{"1.2.3.4"}, "2001:db8::5", false},
		{"ipv6 trusted peer and client", trusted, "[fd00::1]:443", []string{"2001:db8::7, fd00::2"}, "2001:db8::7", true},
		{"ipv6 with zone in peer", nil, "[fe80::1%eth0]:443", nil, "fe80::1", false},
		{"ipv4-mapped peer", trusted, "[::ffff:10.0.0.2]:80", []string{"198.51.100.4"}, "198.51.100.4", true},
		{"XFF entry with port", trusted, "10.0.0.2:80", []string{"198.51.100.4:3333"}, "198.51.100.4", true},
		{"XFF bracketed ipv6 with port", trusted, "10.0.0.2:80", []string{"[2001:db8::9]:3333"}, "2001:db8::9", true},
		{"malformed XFF stops at the peer", trusted, "10.0.0.2:80", []string{"1.2.3.4, garbage"}, "10.0.0.2", true},
		{"malformed XFF after a trusted hop", trusted, "10.0.0.2:80", []string{"1.2.3.4, not-an-ip, 10.3.3.3"}, "10.3.3.3", true},
		{"empty XFF entry stops the walk", trusted, "10.0.0.2:80", []string{"1.2.3.4,,10.3.3.3"}, "10.3.3.3", true},
		{"empty XFF header", trusted, "10.0.0.2:80", []string{""}, "10.0.0.2", true},
		{"remote addr without port", nil, "203.0.113.7", nil, "203.0.113.7", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, via := clientIP(r, tt.trusted)
			if got.String() != tt.want || via != tt.wantProxy {
				t.Errorf("clientIP(%q, XFF %q) = %v, %v; want %v, %v", tt.remote, tt.xff, got, via, tt.want, tt.wantProxy)
			}
		})
	}
	t.Run("unparseable remote addr", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "@"
		if got, via := clientIP(r, trusted); got.IsValid() || via {
			t.Errorf("clientIP(%q) = %v, %v; want invalid, false", r.RemoteAddr, got, via)
		}
	})
}

func TestCORS(t *testing.T) {
	explicit := newCORS([]string{"https://app.example", "https://Admin.Example/"})
	wildcard := newCORS([]string{"*"})
	none := newCORS(nil)
	tests := []struct {
		name        string
		cors        *CORS
		method      string
		origin      string
		acrm        string // Access-Control-Request-Method
		wantStatus  int
		wantNext    bool
		wantHeaders map[string]string // "" value: header must be absent
		wantVary    string
	}{
		{
			name: "preflight allowed origin", cors: explicit, method: http.MethodOptions, origin: "https://app.example", acrm: "POST",
			wantStatus: http.StatusNoContent,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin":      "https://app.example",
				"Access-Control-Allow-Methods":     "GET, POST, DELETE, OPTIONS",
				"Access-Control-Allow-Headers":     "Content-Type, Authorization, traceparent, tracestate",
				"Access-Control-Max-Age":           "600",
				"Access-Control-Allow-Credentials": "true",
			},
			wantVary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		},
		{
			name: "preflight origin matched case-insensitively", cors: explicit, method: http.MethodOptions, origin: "https://admin.example", acrm: "DELETE",
			wantStatus:  http.StatusNoContent,
			wantHeaders: map[string]string{"Access-Control-Allow-Origin": "https://admin.example"},
		},
		{
			name: "preflight wildcard: * and never credentials", cors: wildcard, method: http.MethodOptions, origin: "https://any.example", acrm: "POST",
			wantStatus: http.StatusNoContent,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin":      "*",
				"Access-Control-Allow-Credentials": "",
				"Access-Control-Max-Age":           "600",
			},
		},
		{
			name: "preflight disallowed origin", cors: explicit, method: http.MethodOptions, origin: "https://evil.example", acrm: "POST",
			wantStatus: http.StatusForbidden,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin":  "",
				"Access-Control-Allow-Methods": "",
				"Access-Control-Max-Age":       "",
				"Content-Type":                 "application/json; charset=utf-8",
			},
		},
		{
			name: "preflight with no origins configured", cors: none, method: http.MethodOptions, origin: "https://app.example", acrm: "POST",
			wantStatus:  http.StatusForbidden,
			wantHeaders: map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "preflight from a lookalike origin", cors: explicit, method: http.MethodOptions, origin: "https://app.example.evil.com", acrm: "POST",
			wantStatus: http.StatusForbidden,
		},
		{
			name: "actual request allowed origin", cors: explicit, method: http.MethodPost, origin: "https://app.example",
			wantStatus: http.StatusTeapot, wantNext: true,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin":      "https://app.example",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers":    "Retry-After, RateLimit, RateLimit-Policy, traceparent",
				"Access-Control-Allow-Methods":     "",
			},
			wantVary: "Origin",
		},
		{
			name: "actual request wildcard", cors: wildcard, method: http.MethodGet, origin: "https://any.example",
			wantStatus: http.StatusTeapot, wantNext: true,
			wantHeaders: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": ""},
		},
		{
			name: "actual request disallowed origin: no CORS headers", cors: explicit, method: http.MethodPost, origin: "https://evil.example",
			wantStatus: http.StatusTeapot, wantNext: true,
			wantHeaders: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Expose-Headers": "", "Access-Control-Allow-Credentials": ""},
			wantVary:    "Origin",
		},
		{
			name: "OPTIONS without Origin passes through", cors: explicit, method: http.MethodOptions, acrm: "POST",
			wantStatus: http.StatusTeapot, wantNext: true,
			wantHeaders: map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "OPTIONS with Origin but no request method is not a preflight", cors: explicit, method: http.MethodOptions, origin: "https://app.example",
			wantStatus: http.StatusTeapot, wantNext: true,
			wantHeaders: map[string]string{"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Max-Age": ""},
		},
		{
			name: "same-origin request without Origin", cors: explicit, method: http.MethodGet,
			wantStatus: http.StatusTeapot, wantNext: true, wantVary: "Origin",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var called bool
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				w.WriteHeader(http.StatusTeapot)
			})
			r := httptest.NewRequest(tt.method, "/chat", nil)
			var tc traceContext
			tc.TraceID[0], tc.SpanID[0] = 0xab, 0xcd
			r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, &requestInfo{trace: tc}))
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.acrm != "" {
				r.Header.Set("Access-Control-Request-Method", tt.acrm)
			}
			w := httptest.NewRecorder()
			tt.cors.Middleware(next).ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d; want %d", w.Code, tt.wantStatus)
			}
			if called != tt.wantNext {
				t.Errorf("next called = %v; want %v", called, tt.wantNext)
			}
			for k, want := range tt.wantHeaders {
				if got := w.Header().Get(k); got != want {
					t.Errorf("header %s = %q; want %q", k, got, want)
				}
			}
			if tt.wantVary != "" {
				if got := strings.Join(w.Header().Values("Vary"), ", "); got != tt.wantVary {
					t.Errorf("Vary = %q; want %q", got, tt.wantVary)
				}
			}
			if tt.wantStatus == http.StatusForbidden {
				if want := `{"error":{"type":"forbidden","message":"origin not allowed","trace_id":"` + tc.TraceIDString() + `"}}` + "\n"; w.Body.String() != want {
					t.Errorf("body = %q; want %q", w.Body.String(), want)
				}
				for k := range w.Header() {
					if strings.HasPrefix(k, "Access-Control-") {
						t.Errorf("403 carries CORS header %s", k)
					}
				}
			}
		})
	}
}
