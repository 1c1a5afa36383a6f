package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Principal is the caller of one request as established by
// [Authenticator.Authenticate]. Every field is safe to log.
type Principal struct {
	Subject string // user id ("" for anonymous)
	Role    string // "user" | "service" | "admin" | "" (anonymous)
	Method  string // "api_key" | "jwt" | "anonymous"
	KeyID   string // for api keys: first 8 hex chars of the key hash; for JWT: the kid; safe to log
}

// CanActFor reports whether p may act on behalf of userID: a service or
// admin caller for anyone, a user only for itself, and the anonymous
// principal (auth off) for anyone. The zero Principal, which no
// authenticator returns, may act for nobody.
func (p Principal) CanActFor(userID string) bool {
	switch p.Role {
	case "service", "admin":
		return true
	case "user":
		return userID != "" && p.Subject == userID
	case "":
		return p.Method == "anonymous"
	}
	return false
}

// ErrNoCredentials means the request carried no Authorization header.
var ErrNoCredentials = errors.New("no credentials")

// ErrInvalidCredentials means the request carried credentials that were
// rejected: malformed, unknown, expired, badly signed or otherwise invalid.
var ErrInvalidCredentials = errors.New("invalid credentials")

// AuthError is the error [Authenticator.Authenticate] returns. Reason is a
// short fixed token safe for audit records, logs and metrics labels
// ("expired", "bad_signature", "alg_none", "unknown_key", "malformed", ...).
// Identity is the identity the request claimed, if any: the first 8 hex
// characters of an API key's hash, or a JWT's sub when it is a well-formed
// user id (unverified: the signature may have failed). The token itself never
// appears in an AuthError. Err wraps [ErrNoCredentials] or
// [ErrInvalidCredentials], so errors.Is works on the AuthError.
type AuthError struct {
	Reason   string
	Identity string
	Err      error
}

// Error describes the failure without the presented credentials.
func (e *AuthError) Error() string {
	if e.Err == nil {
		return "authentication failed (" + e.Reason + ")"
	}
	return "authentication failed (" + e.Reason + "): " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *AuthError) Unwrap() error { return e.Err }

// authFail builds an AuthError wrapping ErrInvalidCredentials.
func authFail(reason, identity, detail string) *AuthError {
	return &AuthError{Reason: reason, Identity: identity, Err: fmt.Errorf("%s: %w", detail, ErrInvalidCredentials)}
}

// AuthSettings configures an [Authenticator]. With Enabled false every
// request is anonymous and no file is read. JWTRoleClaim "" means "role";
// HTTPClient nil means a client with a 5 s timeout; Now nil means time.Now.
// JWTSecret is the HS256 secret (from AGENT_AUTH_JWT_SECRET); "" disables
// HS256.
type AuthSettings struct {
	Enabled          bool
	APIKeysFile      string // auth.api_keys_file
	JWTIssuer        string // auth.jwt_issuer; "" skips the iss check
	JWTAudience      string // auth.jwt_audience; "" skips the aud check
	JWTPublicKeyFile string // auth.jwt_public_key_file: one PEM public key
	JWKSURL          string // auth.jwks_url
	JWTRoleClaim     string // auth.jwt_role_claim
	JWTSecret        string // AGENT_AUTH_JWT_SECRET
	HTTPClient       *http.Client
	Now              func() time.Time
}

// authMinSecretBytes is the shortest accepted HS256 secret: RFC 7518 §3.2
// requires a key at least as long as the hash output (256 bits).
const authMinSecretBytes = 32

// authMaxTokenBytes caps the bearer token length: API keys are 46 bytes and
// real JWTs a few hundred; the cap bounds the work an anonymous caller can
// make us do (base64, JSON, signature verification).
const authMaxTokenBytes = 8 << 10

// authKeyEntry is one line of the API keys file.
type authKeyEntry struct {
	hash   [sha256.Size]byte
	userID string
	role   string
}

// Authenticator checks the credentials of HTTP requests: API keys from
// auth.api_keys_file and JWT bearer tokens (HS256, RS256, ES256). It is safe
// for concurrent use; [Authenticator.ReloadKeys] may run while requests are
// authenticated. Build it with newAuthenticator; the zero value is not
// usable.
type Authenticator struct {
	enabled   bool
	keysFile  string
	issuer    string
	audience  string
	roleClaim string
	secret    []byte        // HS256 secret; nil when not configured
	static    *jwtPublicKey // key from auth.jwt_public_key_file; nil when not configured
	jwks      *jwtKeySet    // nil when auth.jwks_url is empty
	now       func() time.Time

	mu      sync.RWMutex
	apiKeys map[[sha256.Size]byte]authKeyEntry // guarded by mu; replaced whole by ReloadKeys
}

// newAuthenticator builds an Authenticator from s. With auth enabled it
// loads the API keys file and the PEM public key, and rejects a
// configuration with no credential source at all, an HS256 secret shorter
// than 32 bytes, or a PEM document given as the secret. The JWKS document is
// fetched lazily on the first JWT that needs it.
func newAuthenticator(s AuthSettings) (*Authenticator, error) {
	a := &Authenticator{enabled: s.Enabled, now: s.Now}
	if a.now == nil {
		a.now = time.Now
	}
	if !s.Enabled {
		return a, nil
	}
	a.keysFile = s.APIKeysFile
	a.issuer = s.JWTIssuer
	a.audience = s.JWTAudience
	a.roleClaim = s.JWTRoleClaim
	if a.roleClaim == "" {
		a.roleClaim = "role"
	}
	if s.JWTSecret != "" {
		if strings.Contains(s.JWTSecret, "-----BEGIN") {
			return nil, errors.New("auth: the jwt secret is a PEM document; configure public keys with auth.jwt_public_key_file")
		}
		if len(s.JWTSecret) < authMinSecretBytes {
			return nil, fmt.Errorf("auth: the jwt secret has %d bytes; HS256 needs at least %d", len(s.JWTSecret), authMinSecretBytes)
		}
		a.secret = []byte(s.JWTSecret)
	}
	if s.APIKeysFile == "" && s.JWTSecret == "" && s.JWTPublicKeyFile == "" && s.JWKSURL == "" {
		return nil, errors.New("auth: enabled but none of auth.api_keys_file, AGENT_AUTH_JWT_SECRET, auth.jwt_public_key_file, auth.jwks_url is set")
	}
	if s.APIKeysFile != "" {
		keys, err := authLoadKeysFile(s.APIKeysFile)
		if err != nil {
			return nil, err
		}
		a.apiKeys = keys
	}
	if s.JWTPublicKeyFile != "" {
		k, err := jwtLoadPEMFile(s.JWTPublicKeyFile)
		if err != nil {
			return nil, err
		}
		a.static = k
	}
	if s.JWKSURL != "" {
		client := s.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: jwtJWKSFetchTimeout}
		}
		a.jwks = jwtNewKeySet(s.JWKSURL, client, a.now)
	}
	return a, nil
}

// ReloadKeys re-reads the API keys file (on SIGHUP). On error the keys in
// use are kept. Without an API keys file, or with auth off, it does nothing.
func (a *Authenticator) ReloadKeys() error {
	if !a.enabled || a.keysFile == "" {
		return nil
	}
	keys, err := authLoadKeysFile(a.keysFile)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.apiKeys = keys
	a.mu.Unlock()
	return nil
}

// Authenticate returns the caller of r. With auth off it returns the
// anonymous Principal and nil. With auth on it reads one
// "Authorization: Bearer <token>" header (scheme case-insensitive): a token
// containing dots is a JWT (API keys never contain one), anything else an
// API key. Every failure is an *AuthError wrapping ErrNoCredentials (no
// Authorization header) or ErrInvalidCredentials. It may fetch the JWKS
// document, bounded by r's context and a 5 s timeout.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if !a.enabled {
		return Principal{Method: "anonymous"}, nil
	}
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return Principal{}, &AuthError{Reason: "missing_credentials", Err: fmt.Errorf("no authorization header: %w", ErrNoCredentials)}
	}
	if len(values) > 1 {
		return Principal{}, authFail("malformed", "", "more than one authorization header")
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, authFail("bad_scheme", "", "authorization scheme is not bearer")
	}
	token = strings.TrimSpace(token)
	switch {
	case token == "":
		return Principal{}, authFail("malformed", "", "empty bearer token")
	case len(token) > authMaxTokenBytes:
		return Principal{}, authFail("too_large", "", fmt.Sprintf("bearer token over %d bytes", authMaxTokenBytes))
	case strings.Contains(token, "."):
		return a.jwtAuthenticate(r.Context(), token)
	}
	return a.authAPIKey(token)
}

// authAPIKey looks the key up by its SHA-256 hash. The map lookup is keyed
// by the hash of the presented key, so its timing depends only on that hash,
// which an attacker cannot steer towards a stored hash without a SHA-256
// preimage; it reveals nothing about stored keys. The final comparison is
// still constant-time (crypto/subtle) so that no byte-by-byte comparison of
// secret-derived data ever happens on this path.
func (a *Authenticator) authAPIKey(key string) (Principal, error) {
	sum := sha256.Sum256([]byte(key))
	prefix := hex.EncodeToString(sum[:4])
	a.mu.RLock()
	entry, ok := a.apiKeys[sum]
	a.mu.RUnlock()
	if !ok || subtle.ConstantTimeCompare(entry.hash[:], sum[:]) != 1 {
		return Principal{}, authFail("unknown_key", prefix, "api key not recognised")
	}
	return Principal{Subject: entry.userID, Role: entry.role, Method: "api_key", KeyID: prefix}, nil
}

// hashAPIKey returns the lower-case hex SHA-256 of key, the form stored in
// the API keys file.
func hashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// authValidRole reports whether role is one of user, service, admin.
func authValidRole(role string) bool {
	return role == "user" || role == "service" || role == "admin"
}

// authValidUserID reports whether id matches [A-Za-z0-9._:@-]{1,128}.
func authValidUserID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}

// authLoadKeysFile reads an API keys file: blank lines and lines starting
// with # are ignored; every other line is "<64 hex sha256> <user_id> <role>"
// separated by spaces or tabs. Errors name path:line.
func authLoadKeysFile(path string) (map[[sha256.Size]byte]authKeyEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read api keys file: %w", err)
	}
	return authParseKeys(path, data)
}

// authParseKeys parses the content of an API keys file; name is used in
// error messages.
func authParseKeys(name string, data []byte) (map[[sha256.Size]byte]authKeyEntry, error) {
	keys := make(map[[sha256.Size]byte]authKeyEntry)
	seen := make(map[[sha256.Size]byte]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"<sha256 hex> <user_id> <role>\", got %d fields", name, n, len(fields))
		}
		var e authKeyEntry
		if len(fields[0]) != hex.EncodedLen(sha256.Size) {
			return nil, fmt.Errorf("%s:%d: key hash must be 64 hex characters (the SHA-256 of the key, never the key itself)", name, n)
		}
		if _, err := hex.Decode(e.hash[:], []byte(fields[0])); err != nil {
			return nil, fmt.Errorf("%s:%d: key hash is not hex: %w", name, n, err)
		}
		e.userID, e.role = fields[1], fields[2]
		if !authValidUserID(e.userID) {
			return nil, fmt.Errorf("%s:%d: invalid user id %q (want 1-128 of [A-Za-z0-9._:@-])", name, n, e.userID)
		}
		if !authValidRole(e.role) {
			return nil, fmt.Errorf("%s:%d: invalid role %q (want user, service or admin)", name, n, e.role)
		}
		if prev, dup := seen[e.hash]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate key hash (first on line %d)", name, n, prev)
		}
		seen[e.hash] = n
		keys[e.hash] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return keys, nil
}

// runKeygen implements "production-agent keygen -user U -role R". It writes
// the new key ("pa_" + base64url of 32 random bytes) on the first line —
// shown once, never stored — and on the second the line to append to
// auth.api_keys_file: "<sha256 hex> <user> <role>".
func runKeygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	user := fs.String("user", "", "user id the key authenticates as")
	role := fs.String("role", "", "role: user, service or admin")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keygen: unexpected argument %q", fs.Arg(0))
	}
	if !authValidUserID(*user) {
		return fmt.Errorf("keygen: -user %q must be 1-128 of [A-Za-z0-9._:@-]", *user)
	}
	if !authValidRole(*role) {
		return fmt.Errorf("keygen: -role %q must be user, service or admin", *role)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	key := "pa_" + base64.RawURLEncoding.EncodeToString(raw[:])
	if _, err := fmt.Fprintf(stdout, "%s\n%s %s %s\n", key, hashAPIKey(key), *user, *role); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	return nil
}
