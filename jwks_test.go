package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestJWKSCacheAndRefetchLimit(t *testing.T) {
	keys := jwtNewTestKeys(t)
	ec2, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := jwtNewJWKSServer(t, jwtJWKS(t, map[string]crypto.PublicKey{"k1": &keys.ec.PublicKey}))
	now := jwtTestNow()
	a, err := newAuthenticator(AuthSettings{Enabled: true, JWKSURL: srv.srv.URL, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.fetches.Load(); got != 0 {
		t.Fatalf("fetches after newAuthenticator = %d; want 0 (lazy)", got)
	}
	token := func(kid string, k *ecdsa.PrivateKey) string {
		return jwtMint(t, map[string]any{"alg": "ES256", "kid": kid},
			jwtClaims(func(c map[string]any) { c["exp"] = now.Unix() + 300 }),
			func(in string) []byte { return jwtSignES256(t, k, in) })
	}
	steps := []struct {
		name        string
		advance     time.Duration
		setDoc      []byte // non-nil: the server now serves this document
		setStatus   int
		kid         string
		key         *ecdsa.PrivateKey
		wantReason  string
		wantFetches int64
	}{
		{name: "first use fetches", kid: "k1", key: keys.ec, wantFetches: 1},
		{name: "known kid is cached", advance: time.Second, kid: "k1", key: keys.ec, wantFetches: 1},
		{name: "unknown kid within 30s: no refetch", kid: "k2", key: ec2, wantReason: "unknown_key", wantFetches: 1},
		{name: "rotated, still within 30s", advance: 10 * time.Second,
			setDoc: jwtJWKS(t, map[string]crypto.PublicKey{"k1": &keys.ec.PublicKey, "k2": &ec2.PublicKey}),
			kid:    "k2", key: ec2, wantReason: "unknown_key", wantFetches: 1},
		{name: "30s after the last fetch: refetch finds k2", advance: 20 * time.Second, kid: "k2", key: ec2, wantFetches: 2},
		{name: "made-up kid right after", advance: time.Second, kid: "k3", key: ec2, wantReason: "unknown_key", wantFetches: 2},
		{name: "made-up kid again", advance: time.Second, kid: "k4", key: ec2, wantReason: "unknown_key", wantFetches: 2},
		{name: "made-up kid after 30s refetches once", advance: 30 * time.Second, kid: "k5", key: ec2, wantReason: "unknown_key", wantFetches: 3},
		{name: "known kids still served", advance: time.Second, kid: "k1", key: keys.ec, wantFetches: 3},
		{name: "key removed upstream, cache past max age: refetch drops it", advance: time.Hour,
			setDoc: jwtJWKS(t, map[string]crypto.PublicKey{"k2": &ec2.PublicKey}),
			kid:    "k1", key: keys.ec, wantReason: "unknown_key", wantFetches: 4},
		{name: "provider down, stale key still served", advance: time.Hour + time.Minute, setStatus: http.StatusInternalServerError,
			kid: "k2", key: ec2, wantFetches: 5},
		{name: "provider down, unknown kid", advance: time.Minute, kid: "k9", key: ec2, wantReason: "jwks_unavailable", wantFetches: 6},
		{name: "provider down, no refetch within 30s", advance: time.Second, kid: "k9", key: ec2, wantReason: "jwks_unavailable", wantFetches: 6},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		if st.setDoc != nil || st.setStatus != 0 {
			srv.mu.Lock()
			if st.setDoc != nil {
				srv.doc = st.setDoc
			}
			if st.setStatus != 0 {
				srv.status = st.setStatus
			}
			srv.mu.Unlock()
		}
		_, err := jwtBearer(a, token(st.kid, st.key))
		var reason string
		var ae *AuthError
		if errors.As(err, &ae) {
			reason = ae.Reason
		} else if err != nil {
			t.Fatalf("%s: error %v is not an *AuthError", st.name, err)
		}
		if reason != st.wantReason {
			t.Errorf("%s: reason = %q (%v); want %q", st.name, reason, err, st.wantReason)
		}
		if got := srv.fetches.Load(); got != st.wantFetches {
			t.Errorf("%s: fetches = %d; want %d", st.name, got, st.wantFetches)
		}
	}
}

func TestJWKSConcurrentUnknownKidsFetchOnce(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := jwtNewJWKSServer(t, jwtJWKS(t, map[string]crypto.PublicKey{"k1": &ec.PublicKey}))
	a, err := newAuthenticator(AuthSettings{Enabled: true, JWKSURL: srv.srv.URL, Now: jwtTestNow})
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, 32)
	for i := range tokens {
		kid := "k1"
		if i%2 == 1 {
			kid = "unknown"
		}
		tokens[i] = jwtMint(t, map[string]any{"alg": "ES256", "kid": kid}, jwtClaims(nil), func(in string) []byte { return jwtSignES256(t, ec, in) })
	}
	var wg sync.WaitGroup
	errs := make([]error, len(tokens))
	for i, tok := range tokens {
		wg.Go(func() { _, errs[i] = jwtBearer(a, tok) })
	}
	wg.Wait()
	for i, err := range errs {
		if wantOK := i%2 == 0; (err == nil) != wantOK {
			t.Errorf("token %d: error = %v; want success %v", i, err, wantOK)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("fetches = %d; want 1", got)
	}
}

func TestJWTParseJWKS(t *testing.T) {
	keys := jwtNewTestKeys(t)
	good := string(jwtJWKS(t, map[string]crypto.PublicKey{"r": &keys.rsa.PublicKey}))
	ecb, err := keys.ec.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	x := base64.RawURLEncoding.EncodeToString(ecb[1:33])
	tests := []struct {
		name     string
		doc      string
		wantKids []string
		wantErr  bool
	}{
		{"rsa key", good, []string{"r"}, false},
		{"not json", "{", nil, true},
		{"no keys", `{"keys":[]}`, nil, true},
		{"only unusable keys", `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"},{"kty":"EC","kid":"p384","crv":"P-384","x":"AA","y":"AA"}]}`, nil, true},
		{"encryption key skipped", strings.Replace(good, `"use":"sig"`, `"use":"enc"`, 1), nil, true},
		{"EC point not on the curve skipped", `{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"` + x + `","y":"` + x + `"}]}`, nil, true},
		{"short EC coordinates skipped", `{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"AAAA","y":"AAAA"}]}`, nil, true},
		{"RSA even exponent skipped", strings.Replace(good, `"e":"AQAB"`, `"e":"AQAA"`, 1), nil, true},
		{"key without kid skipped", strings.Replace(good, `"kid":"r"`, `"kid":""`, 1), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jwtParseJWKS([]byte(tt.doc))
			if (err != nil) != tt.wantErr {
				t.Fatalf("jwtParseJWKS() error = %v; want error %v", err, tt.wantErr)
			}
			if len(got) != len(tt.wantKids) {
				t.Fatalf("jwtParseJWKS() = %d keys; want %d", len(got), len(tt.wantKids))
			}
			for _, kid := range tt.wantKids {
				if got[kid] == nil {
					t.Errorf("kid %q missing", kid)
				}
			}
		})
	}
}
