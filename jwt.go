package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"strings"
	"time"
)

const (
	// jwtLeeway absorbs clock skew between the token issuer and us when
	// checking exp and nbf.
	jwtLeeway = 60 * time.Second
	// jwtMinRSABits rejects RSA keys below NIST's 2048-bit floor.
	jwtMinRSABits = 2048
)

// jwtPublicKey is a verification key: *rsa.PublicKey (≥ 2048 bits) or
// *ecdsa.PublicKey on P-256. kid and alg come from the JWKS ("" when
// absent or for the PEM key); a non-empty alg restricts the key to it.
type jwtPublicKey struct {
	kid string
	alg string
	key crypto.PublicKey
}

// jwtToken is a structurally valid compact JWS whose signature is not yet
// verified.
type jwtToken struct {
	alg          string
	kid          string
	claims       map[string]any // numbers are json.Number
	signingInput string         // "header.payload", the bytes the signature covers
	signature    []byte
	identity     string // sub when it is a valid user id, else ""
}

// jwtParse splits and decodes a compact JWS: exactly three segments of
// unpadded base64url, a JSON object header with a string alg, a JSON object
// payload. It checks no signature and no claim.
func jwtParse(token string) (*jwtToken, *AuthError) {
	if len(token) > authMaxTokenBytes {
		return nil, authFail("too_large", "", fmt.Sprintf("token over %d bytes", authMaxTokenBytes))
	}
	// The decoder below skips \r and \n, so the alphabet is checked first:
	// no padding, no standard-alphabet characters, no whitespace.
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, authFail("malformed", "", "token has a character outside base64url")
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return nil, authFail("malformed", "", "token is not three base64url segments")
	}
	enc := base64.RawURLEncoding.Strict()
	var hb, pb []byte
	var err error
	t := &jwtToken{signingInput: parts[0] + "." + parts[1]}
	if hb, err = enc.DecodeString(parts[0]); err != nil {
		return nil, authFail("malformed", "", "header is not base64url")
	}
	if pb, err = enc.DecodeString(parts[1]); err != nil {
		return nil, authFail("malformed", "", "payload is not base64url")
	}
	if t.signature, err = enc.DecodeString(parts[2]); err != nil {
		return nil, authFail("malformed", "", "signature is not base64url")
	}
	header, err := jwtDecodeObject(hb)
	if err != nil {
		return nil, authFail("malformed", "", "header is not a json object")
	}
	if t.claims, err = jwtDecodeObject(pb); err != nil {
		return nil, authFail("malformed", "", "payload is not a json object")
	}
	if sub, ok := t.claims["sub"].(string); ok && authValidUserID(sub) {
		t.identity = sub
	}
	var ok bool
	if t.alg, ok = header["alg"].(string); !ok {
		return nil, authFail("malformed", t.identity, "header has no string alg")
	}
	if v, present := header["kid"]; present {
		if t.kid, ok = v.(string); !ok {
			return nil, authFail("malformed", t.identity, "header kid is not a string")
		}
	}
	if v, present := header["typ"]; present {
		typ, ok := v.(string)
		if !ok || !jwtAcceptedType(typ) {
			return nil, authFail("bad_type", t.identity, "header typ is not a jwt type")
		}
	}
	if _, present := header["crit"]; present {
		// RFC 7515 §4.1.11: extensions we do not implement must be refused.
		return nil, authFail("unsupported_crit", t.identity, "header lists critical extensions")
	}
	return t, nil
}

// jwtAcceptedType reports whether typ names a JWT (RFC 7519 §5.1, RFC 9068).
func jwtAcceptedType(typ string) bool {
	switch strings.ToLower(typ) {
	case "jwt", "application/jwt", "at+jwt", "application/at+jwt":
		return true
	}
	return false
}

// jwtDecodeObject decodes exactly one JSON object, numbers as json.Number.
func jwtDecodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode json object: %w", err)
	}
	if m == nil {
		return nil, errors.New("json value is null, want an object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after json object")
	}
	return m, nil
}

// jwtAuthenticate verifies a JWT bearer token: the algorithm must be
// HS256, RS256 or ES256 and match the key's type, the signature must hold,
// then exp, nbf, iss, aud, sub and the role claim are checked.
func (a *Authenticator) jwtAuthenticate(ctx context.Context, token string) (Principal, error) {
	t, aerr := jwtParse(token)
	if aerr != nil {
		return Principal{}, aerr
	}
	id := t.identity
	digest := sha256.Sum256([]byte(t.signingInput))
	switch {
	case strings.EqualFold(t.alg, "none"):
		return Principal{}, authFail("alg_none", id, "unsigned token")
	case t.alg == "HS256":
		if a.secret == nil {
			if a.static != nil || a.jwks != nil {
				// Only public keys are configured: an HS256 token here is
				// the classic attack that uses a public key as the secret.
				return Principal{}, authFail("alg_confusion", id, "hs256 token but only public keys are configured")
			}
			return Principal{}, authFail("unknown_key", id, "hs256 token but no jwt secret is configured")
		}
		mac := hmac.New(sha256.New, a.secret)
		mac.Write([]byte(t.signingInput))
		if !hmac.Equal(mac.Sum(nil), t.signature) {
			return Principal{}, authFail("bad_signature", id, "hs256 signature mismatch")
		}
	case t.alg == "RS256" || t.alg == "ES256":
		k, aerr := a.jwtKeyFor(ctx, t)
		if aerr != nil {
			return Principal{}, aerr
		}
		if !jwtKeyFits(t.alg, k) {
			return Principal{}, authFail("alg_confusion", id, "token algorithm does not match the key type")
		}
		if !jwtVerifyAsymmetric(t.alg, k.key, digest[:], t.signature) {
			return Principal{}, authFail("bad_signature", id, strings.ToLower(t.alg)+" signature does not verify")
		}
	default:
		return Principal{}, authFail("unknown_algorithm", id, "algorithm is not HS256, RS256 or ES256")
	}
	return a.jwtCheckClaims(t)
}

// jwtKeyFor finds the public key for t: by kid in the JWKS when one is
// configured, else the PEM key.
func (a *Authenticator) jwtKeyFor(ctx context.Context, t *jwtToken) (*jwtPublicKey, *AuthError) {
	if t.kid != "" && a.jwks != nil {
		k, err := a.jwks.lookup(ctx, t.kid)
		if k != nil {
			return k, nil
		}
		if err != nil && a.static == nil {
			return nil, authFail("jwks_unavailable", t.identity, "jwks could not be fetched")
		}
	}
	if a.static != nil {
		return a.static, nil
	}
	return nil, authFail("unknown_key", t.identity, "no public key for this token")
}

// jwtKeyFits reports whether key k may verify alg: RS256 needs an RSA key,
// ES256 a P-256 key, and a JWKS alg, when given, must equal alg.
func jwtKeyFits(alg string, k *jwtPublicKey) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256"
	case *ecdsa.PublicKey:
		return alg == "ES256" && key.Curve == elliptic.P256()
	}
	return false
}

// jwtVerifyAsymmetric checks an RS256 (PKCS #1 v1.5) or ES256 (raw r||s,
// 64 bytes, RFC 7518 §3.4) signature over a SHA-256 digest.
func jwtVerifyAsymmetric(alg string, key crypto.PublicKey, digest, sig []byte) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" && rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		if alg != "ES256" || len(sig) != 64 {
			return false
		}
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}

// jwtCheckClaims validates the claims of a token whose signature holds and
// maps it to a Principal.
func (a *Authenticator) jwtCheckClaims(t *jwtToken) (Principal, error) {
	id := t.identity
	now := a.now()
	nowSec := float64(now.Unix()) + float64(now.Nanosecond())/1e9
	leeway := jwtLeeway.Seconds()

	exp, present, ok := jwtNumericClaim(t.claims, "exp")
	switch {
	case !present:
		return Principal{}, authFail("missing_exp", id, "token has no exp")
	case !ok:
		return Principal{}, authFail("malformed", id, "exp is not a number")
	case nowSec >= exp+leeway:
		return Principal{}, authFail("expired", id, "token expired")
	}
	nbf, present, ok := jwtNumericClaim(t.claims, "nbf")
	switch {
	case present && !ok:
		return Principal{}, authFail("malformed", id, "nbf is not a number")
	case present && nowSec+leeway < nbf:
		return Principal{}, authFail("not_yet_valid", id, "token not valid yet")
	}
	if a.issuer != "" {
		if iss, _ := t.claims["iss"].(string); iss != a.issuer {
			return Principal{}, authFail("wrong_issuer", id, "issuer does not match auth.jwt_issuer")
		}
	}
	if a.audience != "" && !jwtHasAudience(t.claims["aud"], a.audience) {
		return Principal{}, authFail("wrong_audience", id, "audience does not include auth.jwt_audience")
	}
	sub, _ := t.claims["sub"].(string)
	if sub == "" {
		return Principal{}, authFail("missing_sub", id, "token has no sub")
	}
	if !authValidUserID(sub) {
		return Principal{}, authFail("invalid_sub", "", "sub is not a valid user id")
	}
	role, _ := t.claims[a.roleClaim].(string)
	if !authValidRole(role) {
		return Principal{}, authFail("bad_role", id, "role claim "+a.roleClaim+" is not user, service or admin")
	}
	return Principal{Subject: sub, Role: role, Method: "jwt", KeyID: jwtSafeKID(t.kid)}, nil
}

// jwtSafeKID returns kid when it is short printable ASCII without quotes
// or backslashes, so it can go into logs as is; otherwise "".
func jwtSafeKID(kid string) string {
	if len(kid) > 128 {
		return ""
	}
	for i := 0; i < len(kid); i++ {
		if c := kid[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return ""
		}
	}
	return kid
}

// jwtNumericClaim returns claims[name] as seconds. present reports whether
// the claim exists, ok whether it is a finite JSON number.
func jwtNumericClaim(claims map[string]any, name string) (v float64, present, ok bool) {
	raw, present := claims[name]
	if !present {
		return 0, false, false
	}
	n, isNum := raw.(json.Number)
	if !isNum {
		return 0, true, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, true, false
	}
	return f, true, true
}

// jwtHasAudience reports whether aud (a string or an array of strings)
// contains want.
func jwtHasAudience(aud any, want string) bool {
	switch v := aud.(type) {
	case string:
		return v == want
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// jwtLoadPEMFile reads the one public key in a PEM file: "PUBLIC KEY"
// (PKIX), "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE"; RSA ≥ 2048 bits or
// ECDSA P-256.
func jwtLoadPEMFile(path string) (*jwtPublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read jwt public key file: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("jwt public key file %s: no PEM block", path)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, fmt.Errorf("jwt public key file %s: more than one PEM block; the file holds exactly one public key", path)
	}
	var pub crypto.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("jwt public key file %s: PEM block %q is not a public key or certificate", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("jwt public key file %s: %w", path, err)
	}
	if err := jwtCheckPublicKey(pub); err != nil {
		return nil, fmt.Errorf("jwt public key file %s: %w", path, err)
	}
	return &jwtPublicKey{key: pub}, nil
}

// jwtCheckPublicKey accepts RSA keys of at least 2048 bits and ECDSA P-256.
func jwtCheckPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < jwtMinRSABits {
			return fmt.Errorf("rsa key has %d bits, want at least %d", k.N.BitLen(), jwtMinRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return errors.New("ecdsa key is not on P-256 (ES256)")
		}
		return nil
	}
	return fmt.Errorf("unsupported public key type %T (want RSA or ECDSA P-256)", pub)
}
