package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// jwtTestNow is the fixed clock of the JWT tests.
func jwtTestNow() time.Time { return time.Unix(1_700_000_000, 0) }

const (
	jwtTestSecret   = "0123456789abcdef0123456789abcdef-test-secret"
	jwtTestIssuer   = "https://issuer.example"
	jwtTestAudience = "production-agent"
)

// jwtTestKeys holds the private keys the tests sign with.
type jwtTestKeys struct {
	rsa     *rsa.PrivateKey
	rsaWeak *rsa.PrivateKey // 1024 bits
	ec      *ecdsa.PrivateKey
	ec384   *ecdsa.PrivateKey
}

func jwtNewTestKeys(t testing.TB) jwtTestKeys {
	t.Helper()
	var k jwtTestKeys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.rsaWeak, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	return k
}

// jwtSegment is the base64url (no padding) JSON encoding of v.
func jwtSegment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func jwtSignHMAC(secret []byte, input string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return m.Sum(nil)
}

func jwtSignRSA(t testing.TB, k *rsa.PrivateKey, input string) []byte {
	t.Helper()
	d := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// jwtSignES256 returns the raw r||s signature JWS uses.
func jwtSignES256(t testing.TB, k *ecdsa.PrivateKey, input string) []byte {
	t.Helper()
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig
}

// jwtMint builds a compact JWS from header and claims, signed by sign.
func jwtMint(t testing.TB, header, claims map[string]any, sign func(input string) []byte) string {
	t.Helper()
	input := jwtSegment(t, header) + "." + jwtSegment(t, claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign(input))
}

// jwtClaims returns valid claims for alice, changed by mod.
func jwtClaims(mod func(c map[string]any)) map[string]any {
	c := map[string]any{
		"sub":  "alice",
		"role": "user",
		"iss":  jwtTestIssuer,
		"aud":  jwtTestAudience,
		"exp":  jwtTestNow().Unix() + 300,
		"iat":  jwtTestNow().Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// jwtJWKS is the JWKS document of the public halves of the given keys.
func jwtJWKS(t testing.TB, keys map[string]crypto.PublicKey) []byte {
	t.Helper()
	enc := base64.RawURLEncoding
	var list []map[string]string
	for kid, pub := range keys {
		switch k := pub.(type) {
		case *rsa.PublicKey:
			list = append(list, map[string]string{"kty": "RSA", "kid": kid, "use": "sig",
				"n": enc.EncodeToString(k.N.Bytes()), "e": enc.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			b, err := k.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256",
				"x": enc.EncodeToString(b[1:33]), "y": enc.EncodeToString(b[33:])})
		}
	}
	b, err := json.Marshal(map[string]any{"keys": list})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwtJWKSServer serves a JWKS document that the test may replace, and
// counts downloads.
type jwtJWKSServer struct {
	srv     *httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	doc     []byte // guarded by mu
	status  int    // guarded by mu
}

func jwtNewJWKSServer(t testing.TB, doc []byte) *jwtJWKSServer {
	t.Helper()
	s := &jwtJWKSServer{doc: doc, status: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		doc, status := s.doc, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// jwtWritePEM writes one PEM block to a file in dir and returns its path.
func jwtWritePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func jwtPKIX(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// jwtBearer authenticates a request carrying token with a.
func jwtBearer(a *Authenticator, token string) (Principal, error) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return a.Authenticate(r)
}

func TestJWTAuthenticate(t *testing.T) {
	keys := jwtNewTestKeys(t)
	jwks := jwtNewJWKSServer(t, jwtJWKS(t, map[string]crypto.PublicKey{
		"rsa1":     &keys.rsa.PublicKey,
		"ec1":      &keys.ec.PublicKey,
		"rsa-weak": &keys.rsaWeak.PublicKey, // skipped: under 2048 bits
	}))
	now := jwtTestNow
	hs, err := newAuthenticator(AuthSettings{Enabled: true, JWTSecret: jwtTestSecret,
		JWTIssuer: jwtTestIssuer, JWTAudience: jwtTestAudience, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := newAuthenticator(AuthSettings{Enabled: true, JWKSURL: jwks.srv.URL,
		JWTIssuer: jwtTestIssuer, JWTAudience: jwtTestAudience, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	rsaPEMPath := jwtWritePEM(t, t.TempDir(), "rsa.pem", "PUBLIC KEY", jwtPKIX(t, &keys.rsa.PublicKey))
	static, err := newAuthenticator(AuthSettings{Enabled: true, JWTPublicKeyFile: rsaPEMPath, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	customRole, err := newAuthenticator(AuthSettings{Enabled: true, JWTSecret: jwtTestSecret,
		JWTRoleClaim: "https://example.com/role", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	both, err := newAuthenticator(AuthSettings{Enabled: true, JWTSecret: jwtTestSecret, JWTPublicKeyFile: rsaPEMPath, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM, err := os.ReadFile(rsaPEMPath)
	if err != nil {
		t.Fatal(err)
	}

	hsHeader := map[string]any{"alg": "HS256", "typ": "JWT"}
	hsSign := func(in string) []byte { return jwtSignHMAC([]byte(jwtTestSecret), in) }
	rsHeader := map[string]any{"alg": "RS256", "kid": "rsa1"}
	rsSign := func(in string) []byte { return jwtSignRSA(t, keys.rsa, in) }
	esHeader := map[string]any{"alg": "ES256", "kid": "ec1"}
	esSign := func(in string) []byte { return jwtSignES256(t, keys.ec, in) }
	noSig := func(string) []byte { return nil }
	hs256 := func(mod func(map[string]any)) string { return jwtMint(t, hsHeader, jwtClaims(mod), hsSign) }

	valid := hs256(nil)
	parts := strings.Split(valid, ".")
	tamperedPayload := parts[0] + "." + jwtSegment(t, jwtClaims(func(c map[string]any) { c["role"] = "admin" })) + "." + parts[2]
	sigFlip := "A"
	if parts[2][0] == 'A' {
		sigFlip = "B"
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + sigFlip + parts[2][1:]

	alice := Principal{Subject: "alice", Role: "user", Method: "jwt"}
	tests := []struct {
		name       string
		auth       *Authenticator
		token      string
		want       Principal // checked when wantReason is ""
		wantReason string
	}{
		{"valid HS256", hs, valid, alice, ""},
		{"valid RS256 via JWKS", pub, jwtMint(t, rsHeader, jwtClaims(nil), rsSign), Principal{"alice", "user", "jwt", "rsa1"}, ""},
		{"valid ES256 via JWKS", pub, jwtMint(t, esHeader, jwtClaims(nil), esSign), Principal{"alice", "user", "jwt", "ec1"}, ""},
		{"valid RS256 via PEM file", static, jwtMint(t, map[string]any{"alg": "RS256"}, jwtClaims(nil), rsSign), alice, ""},
		{"valid admin role", hs, hs256(func(c map[string]any) { c["role"] = "admin" }), Principal{"alice", "admin", "jwt", ""}, ""},
		{"valid typ at+jwt", hs, jwtMint(t, map[string]any{"alg": "HS256", "typ": "at+jwt"}, jwtClaims(nil), hsSign), alice, ""},
		{"custom role claim", customRole, hs256(func(c map[string]any) { delete(c, "role"); c["https://example.com/role"] = "service" }), Principal{"alice", "service", "jwt", ""}, ""},
		{"custom role claim ignores role", customRole, hs256(nil), Principal{}, "bad_role"},
		{"alg none", hs, jwtMint(t, map[string]any{"alg": "none"}, jwtClaims(nil), noSig), Principal{}, "alg_none"},
		{"alg None", hs, jwtMint(t, map[string]any{"alg": "None"}, jwtClaims(nil), noSig), Principal{}, "alg_none"},
		{"alg NONE", pub, jwtMint(t, map[string]any{"alg": "NONE"}, jwtClaims(nil), noSig), Principal{}, "alg_none"},
		{"alg none with HMAC signature", hs, jwtMint(t, map[string]any{"alg": "none"}, jwtClaims(nil), hsSign), Principal{}, "alg_none"},
		{"confusion: RSA public key PEM as HS256 secret (JWKS)", pub,
			jwtMint(t, map[string]any{"alg": "HS256", "kid": "rsa1"}, jwtClaims(nil), func(in string) []byte { return jwtSignHMAC(rsaPEM, in) }), Principal{}, "alg_confusion"},
		{"confusion: RSA public key PEM as HS256 secret (PEM file)", static,
			jwtMint(t, map[string]any{"alg": "HS256"}, jwtClaims(nil), func(in string) []byte { return jwtSignHMAC(rsaPEM, in) }), Principal{}, "alg_confusion"},
		{"RSA public key PEM as HS256 secret with a real secret too", both,
			jwtMint(t, map[string]any{"alg": "HS256"}, jwtClaims(nil), func(in string) []byte { return jwtSignHMAC(rsaPEM, in) }), Principal{}, "bad_signature"},
		{"kid unsafe to log is dropped from KeyID", hs, jwtMint(t, map[string]any{"alg": "HS256", "kid": "a b\n"}, jwtClaims(nil), hsSign), alice, ""},
		{"confusion: RS256 header on the EC key", pub, jwtMint(t, map[string]any{"alg": "RS256", "kid": "ec1"}, jwtClaims(nil), rsSign), Principal{}, "alg_confusion"},
		{"confusion: ES256 header on the RSA key", pub, jwtMint(t, map[string]any{"alg": "ES256", "kid": "rsa1"}, jwtClaims(nil), esSign), Principal{}, "alg_confusion"},
		{"RS256 with no public key configured", hs, jwtMint(t, rsHeader, jwtClaims(nil), rsSign), Principal{}, "unknown_key"},
		{"HS256 wrong secret", hs, jwtMint(t, hsHeader, jwtClaims(nil), func(in string) []byte { return jwtSignHMAC([]byte("another-secret-another-secret-xx"), in) }), Principal{}, "bad_signature"},
		{"expired beyond leeway", hs, hs256(func(c map[string]any) { c["exp"] = jwtTestNow().Unix() - 61 }), Principal{}, "expired"},
		{"expired at exactly the leeway", hs, hs256(func(c map[string]any) { c["exp"] = jwtTestNow().Unix() - 60 }), Principal{}, "expired"},
		{"expired within leeway", hs, hs256(func(c map[string]any) { c["exp"] = jwtTestNow().Unix() - 30 }), alice, ""},
		{"fractional exp", hs, hs256(func(c map[string]any) { c["exp"] = float64(jwtTestNow().Unix()) + 0.5 }), alice, ""},
		{"nbf future beyond leeway", hs, hs256(func(c map[string]any) { c["nbf"] = jwtTestNow().Unix() + 61 }), Principal{}, "not_yet_valid"},
		{"nbf future within leeway", hs, hs256(func(c map[string]any) { c["nbf"] = jwtTestNow().Unix() + 30 }), alice, ""},
		{"nbf not a number", hs, hs256(func(c map[string]any) { c["nbf"] = "soon" }), Principal{}, "malformed"},
		{"wrong iss", hs, hs256(func(c map[string]any) { c["iss"] = "https://evil.example" }), Principal{}, "wrong_issuer"},
		{"missing iss", hs, hs256(func(c map[string]any) { delete(c, "iss") }), Principal{}, "wrong_issuer"},
		{"wrong aud", hs, hs256(func(c map[string]any) { c["aud"] = "other-service" }), Principal{}, "wrong_audience"},
		{"missing aud", hs, hs256(func(c map[string]any) { delete(c, "aud") }), Principal{}, "wrong_audience"},
		{"aud array containing ours", hs, hs256(func(c map[string]any) { c["aud"] = []string{"x", jwtTestAudience} }), alice, ""},
		{"aud array without ours", hs, hs256(func(c map[string]any) { c["aud"] = []string{"x", "y"} }), Principal{}, "wrong_audience"},
		{"tampered payload", hs, tamperedPayload, Principal{}, "bad_signature"},
		{"tampered signature", hs, tamperedSig, Principal{}, "bad_signature"},
		{"empty signature", hs, parts[0] + "." + parts[1] + ".", Principal{}, "bad_signature"},
		{"truncated (2 segments)", hs, parts[0] + "." + parts[1], Principal{}, "malformed"},
		{"4 segments", hs, valid + "." + parts[2], Principal{}, "malformed"},
		{"garbage", hs, "abc.def.ghi!", Principal{}, "malformed"},
		{"garbage segments", hs, "a.b.c", Principal{}, "malformed"},
		{"header not an object", hs, jwtSegment(t, []int{1}) + "." + parts[1] + "." + parts[2], Principal{}, "malformed"},
		{"header null", hs, jwtSegment(t, nil) + "." + parts[1] + "." + parts[2], Principal{}, "malformed"},
		{"header without alg", hs, jwtSegment(t, map[string]any{"typ": "JWT"}) + "." + parts[1] + "." + parts[2], Principal{}, "malformed"},
		{"payload trailing data", hs, parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice"} {}`)) + "." + parts[2], Principal{}, "malformed"},
		{"padding chars", hs, parts[0] + "==." + parts[1] + "." + parts[2], Principal{}, "malformed"},
		{"standard alphabet", hs, strings.ReplaceAll(strings.ReplaceAll(valid, "-", "+"), "_", "/") + "+/", Principal{}, "malformed"},
		{"huge token", hs, parts[0] + "." + strings.Repeat("A", authMaxTokenBytes) + "." + parts[2], Principal{}, "too_large"},
		{"unknown alg HS512", hs, jwtMint(t, map[string]any{"alg": "HS512"}, jwtClaims(nil), hsSign), Principal{}, "unknown_algorithm"},
		{"unknown alg PS256", pub, jwtMint(t, map[string]any{"alg": "PS256", "kid": "rsa1"}, jwtClaims(nil), rsSign), Principal{}, "unknown_algorithm"},
		{"alg in lower case", hs, jwtMint(t, map[string]any{"alg": "hs256"}, jwtClaims(nil), hsSign), Principal{}, "unknown_algorithm"},
		{"unknown kid", pub, jwtMint(t, map[string]any{"alg": "RS256", "kid": "nope"}, jwtClaims(nil), rsSign), Principal{}, "unknown_key"},
		{"no kid with JWKS only", pub, jwtMint(t, map[string]any{"alg": "RS256"}, jwtClaims(nil), rsSign), Principal{}, "unknown_key"},
		{"ES256 with DER signature", pub, jwtMint(t, esHeader, jwtClaims(nil), func(in string) []byte {
			d := sha256.Sum256([]byte(in))
			sig, err := ecdsa.SignASN1(rand.Reader, keys.ec, d[:])
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}), Principal{}, "bad_signature"},
		{"RSA 1024-bit key in JWKS", pub, jwtMint(t, map[string]any{"alg": "RS256", "kid": "rsa-weak"}, jwtClaims(nil), func(in string) []byte { return jwtSignRSA(t, keys.rsaWeak, in) }), Principal{}, "unknown_key"},
		{"RSA 1024-bit signature under a 2048-bit kid", pub, jwtMint(t, rsHeader, jwtClaims(nil), func(in string) []byte { return jwtSignRSA(t, keys.rsaWeak, in) }), Principal{}, "bad_signature"},
		{"missing exp", hs, hs256(func(c map[string]any) { delete(c, "exp") }), Principal{}, "missing_exp"},
		{"exp not a number", hs, hs256(func(c map[string]any) { c["exp"] = "2099-01-01" }), Principal{}, "malformed"},
		{"missing sub", hs, hs256(func(c map[string]any) { delete(c, "sub") }), Principal{}, "missing_sub"},
		{"empty sub", hs, hs256(func(c map[string]any) { c["sub"] = "" }), Principal{}, "missing_sub"},
		{"sub not a user id", hs, hs256(func(c map[string]any) { c["sub"] = "alice smith" }), Principal{}, "invalid_sub"},
		{"bad role", hs, hs256(func(c map[string]any) { c["role"] = "root" }), Principal{}, "bad_role"},
		{"missing role", hs, hs256(func(c map[string]any) { delete(c, "role") }), Principal{}, "bad_role"},
		{"role not a string", hs, hs256(func(c map[string]any) { c["role"] = []string{"admin"} }), Principal{}, "bad_role"},
		{"crit header", hs, jwtMint(t, map[string]any{"alg": "HS256", "crit": []string{"b64"}, "b64": false}, jwtClaims(nil), hsSign), Principal{}, "unsupported_crit"},
		{"typ not a JWT", hs, jwtMint(t, map[string]any{"alg": "HS256", "typ": "JOSE+JSON"}, jwtClaims(nil), hsSign), Principal{}, "bad_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jwtBearer(tt.auth, tt.token)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Authenticate() error = %v; want success", err)
				}
				if got != tt.want {
					t.Errorf("Authenticate() = %+v; want %+v", got, tt.want)
				}
				return
			}
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("Authenticate() = %+v, %v; want *AuthError %q", got, err, tt.wantReason)
			}
			if ae.Reason != tt.wantReason {
				t.Errorf("Reason = %q (%v); want %q", ae.Reason, err, tt.wantReason)
			}
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("errors.Is(%v, ErrInvalidCredentials) = false; want true", err)
			}
			if got != (Principal{}) {
				t.Errorf("Principal = %+v on error; want zero", got)
			}
			if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token[len(tt.token)-20:]) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestJWTErrorIdentity(t *testing.T) {
	a, err := newAuthenticator(AuthSettings{Enabled: true, JWTSecret: jwtTestSecret, Now: jwtTestNow})
	if err != nil {
		t.Fatal(err)
	}
	wrong := func(in string) []byte { return jwtSignHMAC([]byte("wrong-secret-wrong-secret-wrong-s"), in) }
	tests := []struct {
		sub, want string
	}{
		{"mallory", "mallory"},
		{"bad\nsub", ""}, // never echo a value that could forge log lines
	}
	for _, tt := range tests {
		_, err := jwtBearer(a, jwtMint(t, map[string]any{"alg": "HS256"}, jwtClaims(func(c map[string]any) { c["sub"] = tt.sub }), wrong))
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Reason != "bad_signature" {
			t.Fatalf("Authenticate(sub %q) error = %v; want bad_signature", tt.sub, err)
		}
		if ae.Identity != tt.want {
			t.Errorf("Identity = %q; want %q", ae.Identity, tt.want)
		}
	}
}

func TestJWTLoadPEMFile(t *testing.T) {
	keys := jwtNewTestKeys(t)
	dir := t.TempDir()
	ecPath := jwtWritePEM(t, dir, "ec.pem", "PUBLIC KEY", jwtPKIX(t, &keys.ec.PublicKey))
	pkcs1Path := jwtWritePEM(t, dir, "pkcs1.pem", "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&keys.rsa.PublicKey))
	weakPath := jwtWritePEM(t, dir, "weak.pem", "PUBLIC KEY", jwtPKIX(t, &keys.rsaWeak.PublicKey))
	p384Path := jwtWritePEM(t, dir, "p384.pem", "PUBLIC KEY", jwtPKIX(t, &keys.ec384.PublicKey))
	privDER, err := x509.MarshalPKCS8PrivateKey(keys.ec)
	if err != nil {
		t.Fatal(err)
	}
	privPath := jwtWritePEM(t, dir, "priv.pem", "PRIVATE KEY", privDER)
	twoPath := filepath.Join(dir, "two.pem")
	ecPEM, err := os.ReadFile(ecPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(twoPath, append(append([]byte{}, ecPEM...), ecPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"ecdsa P-256 PKIX", ecPath, ""},
		{"rsa PKCS1", pkcs1Path, ""},
		{"rsa 1024 bits", weakPath, "at least 2048"},
		{"ecdsa P-384", p384Path, "P-256"},
		{"private key", privPath, "not a public key"},
		{"two blocks", twoPath, "more than one PEM block"},
		{"not PEM", notPEM, "no PEM block"},
		{"missing file", filepath.Join(dir, "absent.pem"), "read jwt public key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newAuthenticator(AuthSettings{Enabled: true, JWTPublicKeyFile: tt.path})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("newAuthenticator() error = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("newAuthenticator() error = %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseJWT(f *testing.F) {
	secret := []byte(jwtTestSecret)
	seedInput := jwtSegment(f, map[string]any{"alg": "HS256"}) + "." + jwtSegment(f, jwtClaims(nil))
	f.Add(seedInput + "." + base64.RawURLEncoding.EncodeToString(jwtSignHMAC(secret, seedInput)))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("e30.e30.e30")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJhbGciOiJIUzI1NiIsImNyaXQiOm51bGx9.bnVsbA.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjFlOTk5fQ.AA")
	a, err := newAuthenticator(AuthSettings{Enabled: true, JWTSecret: jwtTestSecret, Now: jwtTestNow})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		tok, aerr := jwtParse(token)
		if (tok == nil) == (aerr == nil) {
			t.Fatalf("jwtParse(%q) = %v, %v; want exactly one non-nil", token, tok, aerr)
		}
		p, err := a.jwtAuthenticate(t.Context(), token)
		if err != nil {
			var ae *AuthError
			if !errors.As(err, &ae) || ae.Reason == "" || !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("jwtAuthenticate(%q) error = %v; want *AuthError with a reason", token, err)
			}
			return
		}
		if !authValidUserID(p.Subject) || !authValidRole(p.Role) {
			t.Fatalf("jwtAuthenticate(%q) = %+v; want a valid subject and role", token, p)
		}
	})
}
