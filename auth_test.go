package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// authWriteKeys writes an API keys file and returns its path.
func authWriteKeys(t *testing.T, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, "keys")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// authKeygen runs keygen and returns its two lines.
func authKeygen(t *testing.T, user, role string) (key, line string) {
	t.Helper()
	var out bytes.Buffer
	if err := runKeygen([]string{"-user", user, "-role", role}, &out); err != nil {
		t.Fatalf("runKeygen() error = %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("runKeygen() printed %d lines; want 2", len(lines))
	}
	return lines[0], lines[1]
}

// authRequest returns a request carrying the given Authorization headers.
func authRequest(authorization ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/chat", nil)
	for _, v := range authorization {
		r.Header.Add("Authorization", v)
	}
	return r
}

func TestKeygenRoundTrip(t *testing.T) {
	key, line := authKeygen(t, "svc.billing@example", "service")
	if !regexp.MustCompile(`^pa_[A-Za-z0-9_-]{43}$`).MatchString(key) {
		t.Errorf("key = %q; want pa_ + 43 base64url characters", key)
	}
	if want := hashAPIKey(key) + " svc.billing@example service"; line != want {
		t.Errorf("line 2 = %q; want %q", line, want)
	}
	if strings.Contains(line, key) {
		t.Errorf("line 2 %q contains the key", line)
	}
	a, err := newAuthenticator(AuthSettings{Enabled: true, APIKeysFile: authWriteKeys(t, t.TempDir(), "# keys\n"+line+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Authenticate(authRequest("Bearer " + key))
	if err != nil {
		t.Fatalf("Authenticate() error = %v", err)
	}
	want := Principal{Subject: "svc.billing@example", Role: "service", Method: "api_key", KeyID: hashAPIKey(key)[:8]}
	if got != want {
		t.Errorf("Authenticate() = %+v; want %+v", got, want)
	}
	if other, _ := authKeygen(t, "svc.billing@example", "service"); other == key {
		t.Errorf("two keygen runs printed the same key")
	}
}

func TestKeygenErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no user", []string{"-role", "user"}, "-user"},
		{"bad user", []string{"-user", "a b", "-role", "user"}, "-user"},
		{"long user", []string{"-user", strings.Repeat("a", 129), "-role", "user"}, "-user"},
		{"no role", []string{"-user", "alice"}, "-role"},
		{"bad role", []string{"-user", "alice", "-role", "root"}, "-role"},
		{"extra argument", []string{"-user", "alice", "-role", "user", "extra"}, "unexpected argument"},
		{"unknown flag", []string{"-user", "alice", "-role", "user", "-x"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runKeygen(tt.args, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("runKeygen(%q) error = %v; want one containing %q", tt.args, err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("runKeygen(%q) printed %q on error; want nothing", tt.args, out.String())
			}
		})
	}
}

func TestAPIKeysFileErrors(t *testing.T) {
	h := hashAPIKey("k1")
	tests := []struct {
		name    string
		content string
		want    string // "" for success
	}{
		{"comments, blank lines and tabs", "# header\n\n   # indented comment\n" + h + "\talice\tuser\n" + hashAPIKey("k2") + "  bob   admin  \n", ""},
		{"upper-case hex", strings.ToUpper(h) + " alice user\n", ""},
		{"empty file", "", ""},
		{"two fields", "# c\n" + h + " alice\n", "keys:2: want"},
		{"four fields", "\n\n" + h + " alice user extra\n", "keys:3: want"},
		{"raw key instead of hash", "pa_secretkey alice user\n", "keys:1: key hash must be 64 hex"},
		{"non-hex hash", strings.Repeat("z", 64) + " alice user\n", "keys:1: key hash is not hex"},
		{"bad user id", h + " al/ice user\n", "keys:1: invalid user id"},
		{"bad role", "# c\n# c\n# c\n" + h + " alice root\n", "keys:4: invalid role"},
		{"duplicate hash", h + " alice user\n" + h + " bob admin\n", "keys:2: duplicate key hash (first on line 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newAuthenticator(AuthSettings{Enabled: true, APIKeysFile: authWriteKeys(t, t.TempDir(), tt.content)})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("newAuthenticator() error = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("newAuthenticator() error = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestAuthenticateAPIKey(t *testing.T) {
	key, line := authKeygen(t, "alice", "user")
	a, err := newAuthenticator(AuthSettings{Enabled: true, APIKeysFile: authWriteKeys(t, t.TempDir(), line+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	alice := Principal{Subject: "alice", Role: "user", Method: "api_key", KeyID: hashAPIKey(key)[:8]}
	tests := []struct {
		name       string
		headers    []string
		want       Principal
		wantReason string
		wantErr    error
	}{
		{"valid", []string{"Bearer " + key}, alice, "", nil},
		{"scheme lower case", []string{"bearer " + key}, alice, "", nil},
		{"scheme upper case, extra spaces", []string{"BEARER   " + key + " "}, alice, "", nil},
		{"no header", nil, Principal{}, "missing_credentials", ErrNoCredentials},
		{"unknown key", []string{"Bearer pa_unknown"}, Principal{}, "unknown_key", ErrInvalidCredentials},
		{"key with a changed last character", []string{"Bearer " + key[:len(key)-1] + "!"}, Principal{}, "unknown_key", ErrInvalidCredentials},
		{"basic scheme", []string{"Basic YWxpY2U6cGFzcw=="}, Principal{}, "bad_scheme", ErrInvalidCredentials},
		{"key without scheme", []string{key}, Principal{}, "bad_scheme", ErrInvalidCredentials},
		{"empty bearer", []string{"Bearer "}, Principal{}, "malformed", ErrInvalidCredentials},
		{"two authorization headers", []string{"Bearer " + key, "Bearer " + key}, Principal{}, "malformed", ErrInvalidCredentials},
		{"huge key", []string{"Bearer " + strings.Repeat("a", authMaxTokenBytes+1)}, Principal{}, "too_large", ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Authenticate(authRequest(tt.headers...))
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Authenticate() = %+v, %v; want %+v, nil", got, err, tt.want)
				}
				return
			}
			var ae *AuthError
			if !errors.As(err, &ae) || ae.Reason != tt.wantReason || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate() error = %v (%#v); want reason %q wrapping %v", err, ae, tt.wantReason, tt.wantErr)
			}
			if got != (Principal{}) {
				t.Errorf("Authenticate() = %+v on error; want zero Principal", got)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
	t.Run("unknown key identity is its hash prefix", func(t *testing.T) {
		_, err := a.Authenticate(authRequest("Bearer pa_unknown"))
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Identity != hashAPIKey("pa_unknown")[:8] {
			t.Errorf("Authenticate() error = %#v; want Identity %q", err, hashAPIKey("pa_unknown")[:8])
		}
	})
}

func TestReloadKeys(t *testing.T) {
	dir := t.TempDir()
	oldKey, oldLine := authKeygen(t, "alice", "user")
	newKey, newLine := authKeygen(t, "bob", "admin")
	path := authWriteKeys(t, dir, oldLine+"\n")
	a, err := newAuthenticator(AuthSettings{Enabled: true, APIKeysFile: path})
	if err != nil {
		t.Fatal(err)
	}
	check := func(step, key, wantSubject string) {
		t.Helper()
		p, err := a.Authenticate(authRequest("Bearer " + key))
		if wantSubject == "" {
			if err == nil {
				t.Errorf("%s: Authenticate() = %+v; want an error", step, p)
			}
			return
		}
		if err != nil || p.Subject != wantSubject {
			t.Errorf("%s: Authenticate() = %+v, %v; want subject %q", step, p, err, wantSubject)
		}
	}
	check("before reload", oldKey, "alice")
	check("before reload", newKey, "")

	authWriteKeys(t, dir, newLine+"\n")
	if err := a.ReloadKeys(); err != nil {
		t.Fatalf("ReloadKeys() error = %v", err)
	}
	check("after reload", oldKey, "")
	check("after reload", newKey, "bob")

	authWriteKeys(t, dir, "garbage\n")
	if err := a.ReloadKeys(); err == nil || !strings.Contains(err.Error(), "keys:1:") {
		t.Fatalf("ReloadKeys() error = %v; want one naming keys:1", err)
	}
	check("after failed reload", newKey, "bob")
}

func TestAuthDisabled(t *testing.T) {
	a, err := newAuthenticator(AuthSettings{APIKeysFile: "/nonexistent/keys"})
	if err != nil {
		t.Fatalf("newAuthenticator(disabled) error = %v; want nil (nothing is read)", err)
	}
	for _, h := range [][]string{nil, {"Bearer whatever"}} {
		got, err := a.Authenticate(authRequest(h...))
		if want := (Principal{Method: "anonymous"}); err != nil || got != want {
			t.Errorf("Authenticate(%q) = %+v, %v; want %+v, nil", h, got, err, want)
		}
	}
	if err := a.ReloadKeys(); err != nil {
		t.Errorf("ReloadKeys() error = %v; want nil", err)
	}
}

func TestNewAuthenticatorErrors(t *testing.T) {
	tests := []struct {
		name string
		s    AuthSettings
		want string
	}{
		{"enabled without any source", AuthSettings{Enabled: true}, "none of"},
		{"short secret", AuthSettings{Enabled: true, JWTSecret: "short"}, "at least 32"},
		{"PEM as secret", AuthSettings{Enabled: true, JWTSecret: "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"}, "PEM document"},
		{"missing keys file", AuthSettings{Enabled: true, APIKeysFile: "/nonexistent/keys"}, "read api keys file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newAuthenticator(tt.s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("newAuthenticator() error = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCanActFor(t *testing.T) {
	tests := []struct {
		p    Principal
		user string
		want bool
	}{
		{Principal{Subject: "alice", Role: "user", Method: "jwt"}, "alice", true},
		{Principal{Subject: "alice", Role: "user", Method: "jwt"}, "bob", false},
		{Principal{Subject: "alice", Role: "user", Method: "api_key"}, "", false},
		{Principal{Subject: "svc", Role: "service", Method: "api_key"}, "bob", true},
		{Principal{Subject: "root", Role: "admin", Method: "jwt"}, "bob", true},
		{Principal{Method: "anonymous"}, "bob", true},
		{Principal{}, "bob", false},
		{Principal{Subject: "x", Role: "superuser", Method: "jwt"}, "x", false},
	}
	for _, tt := range tests {
		if got := tt.p.CanActFor(tt.user); got != tt.want {
			t.Errorf("%+v.CanActFor(%q) = %v; want %v", tt.p, tt.user, got, tt.want)
		}
	}
}

func TestAuthValidUserID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"alice", true},
		{"user-1_a.b:c@d", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"a b", false},
		{"a/b", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := authValidUserID(tt.id); got != tt.want {
			t.Errorf("authValidUserID(%q) = %v; want %v", tt.id, got, tt.want)
		}
	}
}
