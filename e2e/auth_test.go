package e2e

// Authentication and authorization, black-box: JWTs minted by
// github.com/golang-jwt/jwt/v5 (HS256, RS256, ES256; PEM keys and a JWKS
// endpoint) are accepted and a named catalogue of bad tokens is refused
// with 401 for the right reason (read back from the audit trail); API keys
// from `keygen` carry the user, service and admin roles; the security
// monitor's auto-block stops a source after a privilege escalation.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// authzIssuer and authzAudience are the iss and aud the JWT agents require.
const (
	authzIssuer   = "https://issuer.e2e.example"
	authzAudience = "production-agent-e2e"
)

// authzErrBody is the JSON of every error answer.
type authzErrBody struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		TraceID string `json:"trace_id"`
	} `json:"error"`
}

// authzErr decodes an error answer.
func authzErr(t *testing.T, r httpResp) authzErrBody {
	t.Helper()
	var e authzErrBody
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.Body, err)
	}
	return e
}

// authzWantError checks status and error type of r.
func authzWantError(t *testing.T, what string, r httpResp, status int, typ string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s = %d %s; want %d %s", what, r.Status, r.Body, status, typ)
	}
	if got := authzErr(t, r).Error.Type; got != typ {
		t.Errorf("%s: error type %q; want %q (body %s)", what, got, typ, r.Body)
	}
}

// authzWant401 checks a 401 unauthenticated with WWW-Authenticate: Bearer
// whose body does not echo token (nor any long part of it).
func authzWant401(t *testing.T, what string, r httpResp, token string) {
	t.Helper()
	authzWantError(t, what, r, http.StatusUnauthorized, "unauthenticated")
	if wa := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
		t.Errorf("%s: WWW-Authenticate = %q; want a Bearer challenge", what, wa)
	}
	for _, part := range authzSecretParts(token) {
		if bytes.Contains(r.Body, []byte(part)) {
			t.Errorf("%s: error body %s echoes the presented token (%q)", what, r.Body, part)
		}
	}
}

// authzSecretParts is token and each of its dot-separated segments of 8
// bytes or more: none of them may appear in answers or logs.
func authzSecretParts(token string) []string {
	if token == "" {
		return nil
	}
	parts := []string{token}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && seg != token {
			parts = append(parts, seg)
		}
	}
	return parts
}

// authzNoTokensInLogs fails if the agent's output holds any of tokens.
func authzNoTokensInLogs(t *testing.T, p *agentProc, tokens []string) {
	t.Helper()
	logs := strings.Join(p.Logs(), "\n")
	for _, tok := range tokens {
		if tok != "" && strings.Contains(logs, tok) {
			t.Errorf("the agent's log contains a presented token %q", tok)
		}
	}
}

// authzKeys generates one key per "user:role" spec, writes the keys file
// and returns its path and the keys by user.
func authzKeys(t *testing.T, specs ...string) (path string, keys map[string]string) {
	t.Helper()
	keys = make(map[string]string)
	var lines []string
	for _, s := range specs {
		user, role, _ := strings.Cut(s, ":")
		k, line := keygen(t, user, role)
		keys[user] = k
		lines = append(lines, line)
	}
	path = filepath.Join(t.TempDir(), "api_keys")
	if err := os.WriteFile(path, []byte("# e2e keys\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, keys
}

// authzWriteFile writes data to name in a new temporary directory.
func authzWriteFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// authzPublicPEM is pub as a PKIX "PUBLIC KEY" PEM block.
func authzPublicPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// authzSigner holds the keys the JWT tests sign with.
type authzSigner struct {
	secret, otherSecret []byte
	rsa, otherRSA       *rsa.PrivateKey
	ec, otherEC         *ecdsa.PrivateKey
}

func authzNewSigner(t *testing.T) *authzSigner {
	t.Helper()
	s := &authzSigner{
		secret:      []byte("e2e-hs256-secret-of-at-least-32-bytes!!"),
		otherSecret: []byte("another-hs256-secret-of-32-bytes-or-more"),
	}
	var err error
	for _, k := range []**rsa.PrivateKey{&s.rsa, &s.otherRSA} {
		if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []**ecdsa.PrivateKey{&s.ec, &s.otherEC} {
		if *k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// authzClaims are valid claims for sub with roleClaim = role (exp in five
// minutes, iss and aud as required); edit adjusts them.
func authzClaims(sub, roleClaim, role string, edit func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"sub": sub, roleClaim: role, "iss": authzIssuer, "aud": authzAudience,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// authzSign signs claims with golang-jwt (kid "" for none).
func authzSign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// authzSegment is base64url(JSON(v)) without padding.
func authzSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// authzTamper re-encodes token's payload with claims, keeping header and
// signature.
func authzTamper(t *testing.T, token string, claims jwt.MapClaims) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not three segments", token)
	}
	return parts[0] + "." + authzSegment(t, claims) + "." + parts[2]
}

// authzTruncate drops token's signature segment ("header.payload").
func authzTruncate(token string) string {
	i := strings.LastIndexByte(token, '.')
	return token[:i]
}

// authzGoodToken is a token that must be accepted for /chat as user.
type authzGoodToken struct {
	name, token, user string
}

// authzBadToken is a token that must be refused with 401; reason is the
// audit record's reason.
type authzBadToken struct {
	name, token, reason string
}

// authzCheckTokens runs every good and bad token as its own subtest
// against p; admin is a header that may read /audit.
func authzCheckTokens(t *testing.T, p *agentProc, admin http.Header, good []authzGoodToken, bad []authzBadToken) {
	t.Helper()
	for _, c := range good {
		t.Run("accepts/"+c.name, func(t *testing.T) {
			r := doHTTP(t, nil, http.MethodPost, p.API+"/chat", bearer(c.token), chatBody(c.user, "s-"+c.name, "Hello"))
			if r.Status != http.StatusOK {
				t.Fatalf("POST /chat as %s = %d %s; want 200", c.user, r.Status, r.Body)
			}
		})
	}
	var tokens []string
	for _, c := range bad {
		tokens = append(tokens, c.token)
		t.Run("rejects/"+c.name, func(t *testing.T) {
			r := doHTTP(t, nil, http.MethodPost, p.API+"/chat", bearer(c.token), chatBody("alice", "s-bad", "Hello"))
			authzWant401(t, "POST /chat", r, c.token)
			trace := authzErr(t, r).Error.TraceID
			if trace == "" {
				t.Fatalf("401 body %s has no trace_id", r.Body)
			}
			var found *audRecord
			for _, ev := range fetchAudit(t, p, admin, "action=auth.failure&limit=1000") {
				if ev.TraceID == trace {
					found = &ev
					break
				}
			}
			if found == nil {
				t.Fatalf("no auth.failure audit record with trace_id %s", trace)
			}
			if got := found.Metadata["reason"]; got != c.reason {
				t.Errorf("audit reason = %q; want %q", got, c.reason)
			}
			if found.Success || found.SourceIP != "127.0.0.1" {
				t.Errorf("audit record success=%v source_ip=%q; want false, 127.0.0.1", found.Success, found.SourceIP)
			}
		})
	}
	t.Run("no_token_in_logs", func(t *testing.T) { authzNoTokensInLogs(t, p, tokens) })
}

// authzJWTArgs are the flags of an agent with JWT auth and auto-block off
// (every bad token comes from 127.0.0.1: brute force would block it).
func authzJWTArgs(extra ...string) []string {
	return append([]string{
		"-set", "auth.enabled=true",
		"-set", "auth.jwt_issuer=" + authzIssuer,
		"-set", "auth.jwt_audience=" + authzAudience,
		"-set", "security.auto_block=false",
	}, extra...)
}

// TestAuthzJWTSecretAndRSAPEM runs the agent with an HS256 secret and an
// RSA public key file: HS256 and RS256 tokens are accepted, and the whole
// catalogue of bad tokens is refused, each for its reason.
func TestAuthzJWTSecretAndRSAPEM(t *testing.T) {
	s := authzNewSigner(t)
	rsaPEM := authzPublicPEM(t, &s.rsa.PublicKey)
	p := startAgent(t, map[string]string{"AGENT_AUTH_JWT_SECRET": string(s.secret)},
		authzJWTArgs("-set", "auth.jwt_public_key_file="+authzWriteFile(t, "rsa.pem", rsaPEM))...)
	admin := bearer(authzSign(t, jwt.SigningMethodHS256, s.secret, "", authzClaims("ops", "role", "admin", nil)))
	user := func(edit func(jwt.MapClaims)) jwt.MapClaims { return authzClaims("alice", "role", "user", edit) }
	valid := authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user(nil))
	noneUpper := authzSegment(t, map[string]string{"alg": "NONE", "typ": "JWT"}) + "." + authzSegment(t, user(nil)) + "."
	now := time.Now()

	good := []authzGoodToken{
		{"hs256_user", authzSign(t, jwt.SigningMethodHS256, s.secret, "", user(nil)), "alice"},
		{"rs256_user", valid, "alice"},
		{"rs256_service_for_bob", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", authzClaims("svc", "role", "service", nil)), "bob"},
		{"expired_within_leeway", authzSign(t, jwt.SigningMethodHS256, s.secret, "", user(func(c jwt.MapClaims) {
			c["exp"] = now.Add(-20 * time.Second).Unix()
		})), "alice"},
		{"audience_array", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user(func(c jwt.MapClaims) {
			c["aud"] = []string{"someone-else", authzAudience}
		})), "alice"},
	}
	bad := []authzBadToken{
		{"alg_none", authzSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", user(nil)), "alg_none"},
		{"alg_none_uppercase", noneUpper, "alg_none"},
		// The classic confusion: the RSA public key's PEM bytes used as an
		// HMAC secret. The configured secret differs, so it cannot verify.
		{"alg_confusion_hs256_with_rsa_public_pem", authzSign(t, jwt.SigningMethodHS256, rsaPEM, "", user(nil)), "bad_signature"},
		{"es256_against_rsa_key", authzSign(t, jwt.SigningMethodES256, s.ec, "", user(nil)), "alg_confusion"},
		{"unknown_algorithm_hs512", authzSign(t, jwt.SigningMethodHS512, s.secret, "", user(nil)), "unknown_algorithm"},
		{"expired", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user(func(c jwt.MapClaims) {
			c["exp"] = now.Add(-10 * time.Minute).Unix()
		})), "expired"},
		{"not_yet_valid", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user(func(c jwt.MapClaims) {
			c["nbf"] = now.Add(10 * time.Minute).Unix()
		})), "not_yet_valid"},
		{"wrong_issuer", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user(func(c jwt.MapClaims) {
			c["iss"] = "https://evil.example"
		})), "wrong_issuer"},
		{"wrong_audience", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user(func(c jwt.MapClaims) {
			c["aud"] = "another-service"
		})), "wrong_audience"},
		{"tampered_payload", authzTamper(t, valid, user(func(c jwt.MapClaims) { c["sub"] = "mallory" })), "bad_signature"},
		{"tampered_role", authzTamper(t, valid, user(func(c jwt.MapClaims) { c["role"] = "admin" })), "bad_signature"},
		{"truncated_no_signature", authzTruncate(valid), "malformed"},
		{"truncated_empty_signature", authzTruncate(valid) + ".", "bad_signature"},
		{"garbage_segments", "aGVsbG8.d29ybGQ.Z2FyYmFnZQ", "malformed"},
		{"garbage_characters", "eyJ%%.not a jwt.$$$", "malformed"},
		{"garbage_no_dots", "pa_thisIsNotAKeyThatWasEverIssuedZZZZZZZZZZZZ", "unknown_key"},
		{"rs256_signed_by_other_key", authzSign(t, jwt.SigningMethodRS256, s.otherRSA, "", user(nil)), "bad_signature"},
		{"hs256_signed_with_other_secret", authzSign(t, jwt.SigningMethodHS256, s.otherSecret, "", user(nil)), "bad_signature"},
		{"missing_exp", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user(func(c jwt.MapClaims) { delete(c, "exp") })), "missing_exp"},
		{"missing_sub", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user(func(c jwt.MapClaims) { delete(c, "sub") })), "missing_sub"},
		{"unknown_role", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user(func(c jwt.MapClaims) { c["role"] = "superuser" })), "bad_role"},
	}
	authzCheckTokens(t, p, admin, good, bad)

	t.Run("user_token_chats_as_other_user", func(t *testing.T) {
		r := doHTTP(t, nil, http.MethodPost, p.API+"/chat", bearer(valid), chatBody("bob", "s-bob", "Hello"))
		authzWantError(t, "POST /chat as bob with alice's token", r, http.StatusForbidden, "forbidden")
	})
	t.Run("user_token_on_admin_route", func(t *testing.T) {
		r := doHTTP(t, nil, http.MethodGet, p.Admin+"/audit", bearer(valid), nil)
		authzWantError(t, "GET /audit with a user token", r, http.StatusForbidden, "forbidden")
	})
}

// TestAuthzJWTECPEM runs the agent with only an EC P-256 public key file:
// ES256 is accepted; HS256 (a public key as secret) and RS256 are
// algorithm confusion.
func TestAuthzJWTECPEM(t *testing.T) {
	s := authzNewSigner(t)
	ecPEM := authzPublicPEM(t, &s.ec.PublicKey)
	p := startAgent(t, nil, authzJWTArgs("-set", "auth.jwt_public_key_file="+authzWriteFile(t, "ec.pem", ecPEM))...)
	admin := bearer(authzSign(t, jwt.SigningMethodES256, s.ec, "", authzClaims("ops", "role", "admin", nil)))
	user := authzClaims("alice", "role", "user", nil)
	good := []authzGoodToken{
		{"es256_user", authzSign(t, jwt.SigningMethodES256, s.ec, "", user), "alice"},
		{"es256_service_for_carol", authzSign(t, jwt.SigningMethodES256, s.ec, "", authzClaims("svc", "role", "service", nil)), "carol"},
	}
	bad := []authzBadToken{
		{"alg_none", authzSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", user), "alg_none"},
		{"alg_confusion_hs256_with_ec_public_pem", authzSign(t, jwt.SigningMethodHS256, ecPEM, "", user), "alg_confusion"},
		{"rs256_against_ec_key", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user), "alg_confusion"},
		{"es256_signed_by_other_key", authzSign(t, jwt.SigningMethodES256, s.otherEC, "", user), "bad_signature"},
		{"tampered_payload", authzTamper(t, authzSign(t, jwt.SigningMethodES256, s.ec, "", user),
			authzClaims("mallory", "role", "admin", nil)), "bad_signature"},
	}
	authzCheckTokens(t, p, admin, good, bad)
}

// authzJWKSDoc is a JWKS document with the RSA key as kid "rsa-1" (RS256)
// and the EC key as kid "ec-1" (ES256).
func authzJWKSDoc(t *testing.T, s *authzSigner) []byte {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	point, err := s.ec.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
			"n": enc(s.rsa.PublicKey.N.Bytes()), "e": enc(big.NewInt(int64(s.rsa.PublicKey.E)).Bytes())},
		{"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256",
			"x": enc(point[1:33]), "y": enc(point[33:65])},
	}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuthzJWTJWKS serves a JWKS with an RSA and an EC key from an
// httptest server and uses a custom role claim: RS256 and ES256 tokens
// with those kids are accepted; unknown kids, swapped kids, HS256 with the
// public key and the role in the wrong claim are refused.
func TestAuthzJWTJWKS(t *testing.T) {
	s := authzNewSigner(t)
	doc := authzJWKSDoc(t, s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	const roleClaim = "app_role"
	p := startAgent(t, nil, authzJWTArgs("-set", "auth.jwks_url="+srv.URL+"/jwks.json", "-set", "auth.jwt_role_claim="+roleClaim)...)
	admin := bearer(authzSign(t, jwt.SigningMethodRS256, s.rsa, "rsa-1", authzClaims("ops", roleClaim, "admin", nil)))
	user := authzClaims("alice", roleClaim, "user", nil)
	rsaPEM := authzPublicPEM(t, &s.rsa.PublicKey)
	good := []authzGoodToken{
		{"rs256_kid_rsa-1", authzSign(t, jwt.SigningMethodRS256, s.rsa, "rsa-1", user), "alice"},
		{"es256_kid_ec-1", authzSign(t, jwt.SigningMethodES256, s.ec, "ec-1", user), "alice"},
		{"es256_service_for_dave", authzSign(t, jwt.SigningMethodES256, s.ec, "ec-1", authzClaims("svc", roleClaim, "service", nil)), "dave"},
	}
	bad := []authzBadToken{
		{"unknown_kid", authzSign(t, jwt.SigningMethodRS256, s.otherRSA, "rsa-2", user), "unknown_key"},
		{"no_kid", authzSign(t, jwt.SigningMethodRS256, s.rsa, "", user), "unknown_key"},
		{"kid_of_ec_key_on_rs256", authzSign(t, jwt.SigningMethodRS256, s.rsa, "ec-1", user), "alg_confusion"},
		{"alg_confusion_hs256_with_rsa_public_pem", authzSign(t, jwt.SigningMethodHS256, rsaPEM, "rsa-1", user), "alg_confusion"},
		{"rs256_signed_by_other_key_with_known_kid", authzSign(t, jwt.SigningMethodRS256, s.otherRSA, "rsa-1", user), "bad_signature"},
		{"role_in_default_claim", authzSign(t, jwt.SigningMethodRS256, s.rsa, "rsa-1", authzClaims("alice", "role", "admin", nil)), "bad_role"},
		{"alg_none", authzSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", user), "alg_none"},
	}
	authzCheckTokens(t, p, admin, good, bad)
}

// TestAuthzRoles checks what keygen's user, service and admin keys may do
// (auto-block off: every denial comes from 127.0.0.1 and would otherwise
// block the next subtest).
func TestAuthzRoles(t *testing.T) {
	keysFile, keys := authzKeys(t, "alice:user", "bob:user", "svc:service", "ops:admin")
	p := startAgent(t, nil, "-set", "auth.enabled=true", "-set", "auth.api_keys_file="+keysFile,
		"-set", "security.auto_block=false")
	alice, bob, svc, ops := bearer(keys["alice"]), bearer(keys["bob"]), bearer(keys["svc"]), bearer(keys["ops"])
	chat := func(t *testing.T, h http.Header, user, session string) httpResp {
		t.Helper()
		return doHTTP(t, nil, http.MethodPost, p.API+"/chat", h, chatBody(user, session, "What is 6*7?"))
	}

	t.Run("no_key_is_401", func(t *testing.T) {
		authzWant401(t, "POST /chat", chat(t, nil, "alice", "s-anon"), "")
		authzWant401(t, "GET /sessions/s-anon", doHTTP(t, nil, http.MethodGet, p.API+"/sessions/s-anon", nil, nil), "")
		authzWant401(t, "DELETE /sessions/s-anon", doHTTP(t, nil, http.MethodDelete, p.API+"/sessions/s-anon", nil, nil), "")
		authzWant401(t, "GET admin /audit", doHTTP(t, nil, http.MethodGet, p.Admin+"/audit", nil, nil), "")
		authzWant401(t, "GET admin /security/incidents", doHTTP(t, nil, http.MethodGet, p.Admin+"/security/incidents", nil, nil), "")
		authzWant401(t, "GET admin /", doHTTP(t, nil, http.MethodGet, p.Admin+"/", nil, nil), "")
		authzWant401(t, "Basic scheme", chat(t, headerOf("Authorization", "Basic "+keys["alice"]), "alice", "s-anon"), keys["alice"])
	})
	t.Run("metrics_need_no_key", func(t *testing.T) {
		if r := doHTTP(t, nil, http.MethodGet, p.Admin+"/metrics", nil, nil); r.Status != http.StatusOK {
			t.Errorf("GET /metrics without a key = %d; want 200", r.Status)
		}
	})
	t.Run("service_creates_session_for_bob", func(t *testing.T) {
		if r := chat(t, svc, "bob", "s-bob"); r.Status != http.StatusOK {
			t.Fatalf("service POST /chat as bob = %d %s; want 200", r.Status, r.Body)
		}
	})
	t.Run("service_acts_for_any_user", func(t *testing.T) {
		for _, u := range []string{"carol", "dave@example.com", "alice"} {
			if r := chat(t, svc, u, "s-svc-"+u); r.Status != http.StatusOK {
				t.Errorf("service POST /chat as %s = %d %s; want 200", u, r.Status, r.Body)
			}
		}
	})
	t.Run("user_chats_as_self", func(t *testing.T) {
		if r := chat(t, alice, "alice", "s-alice"); r.Status != http.StatusOK {
			t.Fatalf("alice POST /chat as alice = %d %s; want 200", r.Status, r.Body)
		}
	})
	t.Run("user_chats_as_other_user", func(t *testing.T) {
		authzWantError(t, "alice POST /chat as bob", chat(t, alice, "bob", "s-alice-as-bob"), http.StatusForbidden, "forbidden")
	})
	t.Run("user_continues_other_users_session", func(t *testing.T) {
		authzWantError(t, "alice POST /chat in bob's session", chat(t, alice, "alice", "s-bob"), http.StatusForbidden, "forbidden")
	})
	t.Run("user_reads_other_users_session", func(t *testing.T) {
		r := doHTTP(t, nil, http.MethodGet, p.API+"/sessions/s-bob", alice, nil)
		authzWantError(t, "alice GET /sessions/s-bob", r, http.StatusForbidden, "forbidden")
		if bytes.Contains(r.Body, []byte("6*7")) {
			t.Errorf("403 body leaks the session's messages: %s", r.Body)
		}
	})
	t.Run("user_deletes_other_users_session", func(t *testing.T) {
		r := doHTTP(t, nil, http.MethodDelete, p.API+"/sessions/s-bob", alice, nil)
		authzWantError(t, "alice DELETE /sessions/s-bob", r, http.StatusForbidden, "forbidden")
		if r := doHTTP(t, nil, http.MethodGet, p.API+"/sessions/s-bob", bob, nil); r.Status != http.StatusOK {
			t.Errorf("after the refused delete, bob GET /sessions/s-bob = %d %s; want 200", r.Status, r.Body)
		}
	})
	t.Run("owner_reads_own_session", func(t *testing.T) {
		r := doHTTP(t, nil, http.MethodGet, p.API+"/sessions/s-bob", bob, nil)
		if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"user_id":"bob"`)) {
			t.Errorf("bob GET /sessions/s-bob = %d %s; want 200 owned by bob", r.Status, r.Body)
		}
	})
	t.Run("service_reads_any_session", func(t *testing.T) {
		if r := doHTTP(t, nil, http.MethodGet, p.API+"/sessions/s-bob", svc, nil); r.Status != http.StatusOK {
			t.Errorf("service GET /sessions/s-bob = %d %s; want 200", r.Status, r.Body)
		}
	})
	t.Run("user_deletes_own_session", func(t *testing.T) {
		if r := doHTTP(t, nil, http.MethodDelete, p.API+"/sessions/s-alice", alice, nil); r.Status != http.StatusNoContent {
			t.Errorf("alice DELETE /sessions/s-alice = %d %s; want 204", r.Status, r.Body)
		}
	})
	t.Run("user_on_admin_routes", func(t *testing.T) {
		for _, route := range []string{"/audit", "/security/incidents", "/security/dashboard", "/"} {
			r := doHTTP(t, nil, http.MethodGet, p.Admin+route, alice, nil)
			authzWantError(t, "alice GET "+route, r, http.StatusForbidden, "forbidden")
		}
		r := doHTTP(t, nil, http.MethodPatch, p.Admin+"/security/incidents/00000000-0000-4000-8000-000000000000", alice,
			map[string]string{"status": "resolved"})
		authzWantError(t, "alice PATCH /security/incidents/{id}", r, http.StatusForbidden, "forbidden")
	})
	t.Run("service_on_admin_routes", func(t *testing.T) {
		authzWantError(t, "service GET /audit", doHTTP(t, nil, http.MethodGet, p.Admin+"/audit", svc, nil), http.StatusForbidden, "forbidden")
	})
	t.Run("admin_reads_audit", func(t *testing.T) {
		events := fetchAudit(t, p, ops, "limit=1000")
		if len(events) == 0 {
			t.Fatal("GET /audit as admin returned no events")
		}
		denials := map[string]bool{}
		for _, ev := range fetchAudit(t, p, ops, "event_type=authorization&actor=alice&limit=1000") {
			if !ev.Success {
				denials[ev.Action] = true
			}
		}
		for _, action := range []string{"chat.as_other_user", "session.access_other_user", "admin.denied"} {
			if !denials[action] {
				t.Errorf("no failed authorization audit record %q for alice; have %v", action, denials)
			}
		}
	})
	t.Run("admin_reads_incidents", func(t *testing.T) {
		seen := map[string]incidentRecord{}
		for _, inc := range fetchIncidents(t, p, ops, "limit=1000") {
			seen[inc.IncidentType] = inc
		}
		for typ, level := range map[string]string{"privilege_escalation": "critical", "session_hijacking": "high"} {
			inc, ok := seen[typ]
			switch {
			case !ok:
				t.Errorf("no %s incident; have %v", typ, seen)
			case inc.ThreatLevel != level || inc.Source != "127.0.0.1":
				t.Errorf("%s incident level %q source %q; want %q from 127.0.0.1", typ, inc.ThreatLevel, inc.Source, level)
			case strings.Contains(inc.ActionTaken, "blocked"):
				t.Errorf("%s incident action %q: auto_block is off", typ, inc.ActionTaken)
			}
		}
	})
	t.Run("no_key_in_logs", func(t *testing.T) {
		authzNoTokensInLogs(t, p, []string{keys["alice"], keys["bob"], keys["svc"], keys["ops"]})
	})
}

// authzWantBlocked checks a 403 blocked with a Retry-After of 1 to 900 s
// (security.block_duration_seconds defaults to 900).
func authzWantBlocked(t *testing.T, what string, r httpResp) {
	t.Helper()
	authzWantError(t, what, r, http.StatusForbidden, "blocked")
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 900 {
		t.Errorf("%s: Retry-After = %q; want whole seconds in [1, 900]", what, r.Header.Get("Retry-After"))
	}
}

// TestAuthzAutoBlock shows the security monitor's auto-block: a user key
// on an admin route is a critical privilege_escalation incident, after
// which the source (and the principal) get 403 blocked with Retry-After.
func TestAuthzAutoBlock(t *testing.T) {
	t.Run("direct_peer", func(t *testing.T) {
		keysFile, keys := authzKeys(t, "alice:user", "ops:admin")
		p := startAgent(t, nil, "-set", "auth.enabled=true", "-set", "auth.api_keys_file="+keysFile)
		alice, ops := bearer(keys["alice"]), bearer(keys["ops"])
		if r := doHTTP(t, nil, http.MethodPost, p.API+"/chat", alice, chatBody("alice", "s1", "Hello")); r.Status != http.StatusOK {
			t.Fatalf("alice POST /chat before the incident = %d %s; want 200", r.Status, r.Body)
		}
		r := doHTTP(t, nil, http.MethodGet, p.Admin+"/audit", alice, nil)
		authzWantError(t, "alice GET /audit", r, http.StatusForbidden, "forbidden")
		authzWantBlocked(t, "alice POST /chat after the incident",
			doHTTP(t, nil, http.MethodPost, p.API+"/chat", alice, chatBody("alice", "s1", "Hello")))
		authzWantBlocked(t, "admin GET /audit from the blocked source", doHTTP(t, nil, http.MethodGet, p.Admin+"/audit", ops, nil))
		logged := pollUntil(t.Context(), 10*time.Second, func() bool {
			for _, line := range p.Logs() {
				if strings.Contains(line, `"security incident"`) && strings.Contains(line, `"privilege_escalation"`) &&
					strings.Contains(line, `"level":"critical"`) && strings.Contains(line, `"source":"127.0.0.1"`) {
					return true
				}
			}
			return false
		})
		if !logged {
			t.Error("no critical privilege_escalation \"security incident\" log line from 127.0.0.1")
		}
	})
	t.Run("behind_trusted_proxy", func(t *testing.T) {
		// The proxy names each client, so the admin can still look from
		// another address.
		keysFile, keys := authzKeys(t, "alice:user", "ops:admin")
		p := startAgent(t, nil, "-set", "auth.enabled=true", "-set", "auth.api_keys_file="+keysFile,
			"-set", "server.trusted_proxies=127.0.0.1/32")
		const attacker, elsewhere, adminIP = "203.0.113.50", "203.0.113.51", "198.51.100.60"
		r := doHTTP(t, nil, http.MethodGet, p.Admin+"/security/incidents", bearer(keys["alice"], "X-Forwarded-For", attacker), nil)
		authzWantError(t, "alice GET /security/incidents", r, http.StatusForbidden, "forbidden")
		authzWantBlocked(t, "alice POST /chat from the attacking address", doHTTP(t, nil, http.MethodPost, p.API+"/chat",
			bearer(keys["alice"], "X-Forwarded-For", attacker), chatBody("alice", "s1", "Hello")))
		authzWantBlocked(t, "alice POST /chat from another address (principal blocked)", doHTTP(t, nil, http.MethodPost, p.API+"/chat",
			bearer(keys["alice"], "X-Forwarded-For", elsewhere), chatBody("alice", "s1", "Hello")))
		authzWantBlocked(t, "admin GET /audit from the attacking address",
			doHTTP(t, nil, http.MethodGet, p.Admin+"/audit", bearer(keys["ops"], "X-Forwarded-For", attacker), nil))
		incs := fetchIncidents(t, p, bearer(keys["ops"], "X-Forwarded-For", adminIP), "type=privilege_escalation")
		if len(incs) != 1 {
			t.Fatalf("privilege_escalation incidents = %+v; want one", incs)
		}
		inc := incs[0]
		if inc.ThreatLevel != "critical" || inc.Source != attacker || inc.Metadata["principal"] != "alice" ||
			!strings.Contains(inc.ActionTaken, "blocked") {
			t.Errorf("incident = %+v; want critical from %s, principal alice, action blocked", inc, attacker)
		}
	})
}
