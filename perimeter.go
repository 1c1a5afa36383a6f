package main

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// parseTrustedProxies parses server.trusted_proxies: CIDR prefixes, or
// single addresses which become /32 or /128. IPv4-mapped IPv6 entries are
// turned into IPv4 so they match the unmapped peer addresses clientIP
// compares; empty entries are skipped; zones are rejected.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			p = p.Masked()
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("trusted proxy %q: zoned addresses are not supported", s)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

// authInPrefixes reports whether a lies in one of the prefixes.
func authInPrefixes(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// authParseAddr parses an address as found in RemoteAddr or
// X-Forwarded-For ("ip", "ip:port", "[ipv6]:port"), unmapped and without
// zone.
func authParseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// clientIP returns the address of the client that sent r. It is the
// connection's peer (r.RemoteAddr) unless the peer is in trusted; then
// X-Forwarded-For (all such headers, comma-joined) is read right to left,
// skipping trusted hops, and the first untrusted address is the client. A
// malformed entry stops the walk and the last trusted hop seen is returned;
// when every hop is trusted the leftmost one is. viaTrustedProxy reports
// whether the immediate peer is a trusted proxy. An unparseable RemoteAddr
// yields the invalid Addr and false.
func clientIP(r *http.Request, trusted []netip.Prefix) (ip netip.Addr, viaTrustedProxy bool) {
	peer, ok := authParseAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if !authInPrefixes(peer, trusted) {
		return peer, false
	}
	values := r.Header.Values("X-Forwarded-For")
	if len(values) == 0 {
		return peer, true
	}
	hops := strings.Split(strings.Join(values, ","), ",")
	current := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := authParseAddr(hops[i])
		if !ok {
			return current, true
		}
		if !authInPrefixes(a, trusted) {
			return a, true
		}
		current = a
	}
	return current, true
}

// corsAllowMethods, corsAllowHeaders and corsExposeHeaders are what
// browsers may use and read cross-origin: the API's methods, the request
// headers it understands (JSON body, bearer token, W3C trace context) and
// the rate-limit and tracing headers it answers with.
const (
	corsAllowMethods  = "GET, POST, DELETE, OPTIONS"
	corsAllowHeaders  = "Content-Type, Authorization, traceparent, tracestate"
	corsExposeHeaders = "Retry-After, RateLimit, RateLimit-Policy, traceparent"
	// corsMaxAge lets browsers cache a preflight for 10 minutes (seconds);
	// short enough that a changed allow-list takes effect soon.
	corsMaxAge = "600"
)

// CORS answers cross-origin requests from the origins in
// server.cors_allowed_origins only. Origins are compared case-insensitively
// without a trailing slash; "*" allows any origin but then answers "*" and
// never Access-Control-Allow-Credentials. Immutable after newCORS; safe for
// concurrent use.
type CORS struct {
	any     bool
	origins map[string]bool
}

// newCORS builds a CORS policy from the allowed origins; an empty list
// allows no cross-origin request.
func newCORS(allowedOrigins []string) *CORS {
	c := &CORS{origins: make(map[string]bool)}
	for _, o := range allowedOrigins {
		o = strings.TrimSpace(o)
		switch o {
		case "":
		case "*":
			c.any = true
		default:
			c.origins[corsNormalize(o)] = true
		}
	}
	return c
}

// corsNormalize lower-cases an origin and drops a trailing slash.
func corsNormalize(o string) string {
	return strings.ToLower(strings.TrimSuffix(o, "/"))
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin and
// whether it is allowed.
func (c *CORS) allowOrigin(origin string) (string, bool) {
	if c.any {
		return "*", true
	}
	if c.origins[corsNormalize(origin)] {
		return origin, true
	}
	return "", false
}

// Middleware applies the policy before next. Requests without Origin pass
// through untouched but for Vary: Origin. A preflight (OPTIONS with Origin
// and Access-Control-Request-Method) is answered here: 204 with the allowed
// methods, headers and Max-Age for an allowed origin, 403 JSON with no CORS
// headers otherwise. Other requests from an allowed origin get
// Allow-Origin and Expose-Headers; from another origin no CORS header.
func (c *CORS) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The answer depends on Origin, so shared caches must key on it.
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		allow, ok := c.allowOrigin(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if !ok {
				// The error shape of every answer, trace id included (DESIGN §4).
				writeError(w, r, nil, &apiError{Status: http.StatusForbidden, Type: "forbidden", Message: "origin not allowed"})
				return
			}
			c.setAllowOrigin(h, allow)
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ok {
			c.setAllowOrigin(h, allow)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}

// setAllowOrigin sets Allow-Origin, and Allow-Credentials for explicit
// origins only: browsers refuse credentials with "*", and we never send it.
func (c *CORS) setAllowOrigin(h http.Header, allow string) {
	h.Set("Access-Control-Allow-Origin", allow)
	if allow != "*" {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}
