package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

const (
	// jwtJWKSFetchTimeout bounds one JWKS download; it runs on the request
	// path, so a slow identity provider must not hold requests for long.
	jwtJWKSFetchTimeout = 5 * time.Second
	// jwtJWKSRefetchInterval is the least time between two JWKS downloads.
	// Tokens with made-up kids would otherwise make us fetch on every
	// request: an amplifier against the identity provider.
	jwtJWKSRefetchInterval = 30 * time.Second
	// jwtJWKSMaxAge is how long a downloaded JWKS is used before it is
	// refreshed, so that keys the provider removed stop being accepted.
	jwtJWKSMaxAge = time.Hour
	// jwtJWKSMaxBytes caps the JWKS document; real ones are a few KiB.
	jwtJWKSMaxBytes = 1 << 20
)

// jwtKeySet is a cached JWKS document. The first lookup downloads it; a
// lookup of an unknown kid, or one made when the cache is older than
// jwtJWKSMaxAge, downloads it again, at most once per jwtJWKSRefetchInterval. A
// failed download keeps the previous keys. Safe for concurrent use.
type jwtKeySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	fetchMu sync.Mutex // serialises downloads; held across the HTTP round trip

	mu          sync.Mutex // guards the fields below
	keys        map[string]*jwtPublicKey
	lastAttempt time.Time // zero before the first download
	lastSuccess time.Time
	lastErr     error // outcome of the last download; nil after a success
}

// jwtNewKeySet returns an empty key set for url; nothing is fetched yet.
func jwtNewKeySet(url string, client *http.Client, now func() time.Time) *jwtKeySet {
	return &jwtKeySet{url: url, client: client, now: now}
}

// cached returns the cached key for kid and whether the cache is fresh.
func (s *jwtKeySet) cached(kid string, now time.Time) (*jwtPublicKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := !s.lastSuccess.IsZero() && now.Sub(s.lastSuccess) < jwtJWKSMaxAge
	return s.keys[kid], fresh
}

// lookup returns the key with this kid, downloading the set when the kid
// is unknown or the cache stale and the refetch interval allows. It returns
// nil, nil for a kid the set does not hold. When the last download failed
// it also returns that error, with the cached key if there is one: callers
// use a returned key regardless of the error.
func (s *jwtKeySet) lookup(ctx context.Context, kid string) (*jwtPublicKey, error) {
	if k, fresh := s.cached(kid, s.now()); k != nil && fresh {
		return k, nil
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	now := s.now() // after waiting: another caller may have just downloaded
	k, fresh := s.cached(kid, now)
	if k != nil && fresh {
		return k, nil
	}
	s.mu.Lock()
	mayFetch := s.lastAttempt.IsZero() || now.Sub(s.lastAttempt) >= jwtJWKSRefetchInterval
	if mayFetch {
		s.lastAttempt = now
	}
	lastErr := s.lastErr
	s.mu.Unlock()
	if !mayFetch {
		return k, lastErr
	}
	keys, err := s.fetch(ctx)
	s.mu.Lock()
	s.lastErr = err
	if err == nil {
		s.keys = keys
		s.lastSuccess = now
	}
	s.mu.Unlock()
	if err != nil {
		return k, err
	}
	return keys[kid], nil
}

// fetch downloads and parses the JWKS document.
func (s *jwtKeySet) fetch(ctx context.Context) (map[string]*jwtPublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, jwtJWKSFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwtJWKSMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > jwtJWKSMaxBytes {
		return nil, fmt.Errorf("jwks document over %d bytes", jwtJWKSMaxBytes)
	}
	return jwtParseJWKS(body)
}

// jwtParseJWKS parses a JWKS document (RFC 7517), keeping the signing keys
// it can use: RSA of at least 2048 bits and EC P-256, each with a kid.
// Other keys are skipped; a document without a usable key is an error.
func jwtParseJWKS(body []byte) (map[string]*jwtPublicKey, error) {
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			Crv string `json:"crv"`
			N   string `json:"n"`
			E   string `json:"e"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	enc := base64.RawURLEncoding.Strict()
	keys := make(map[string]*jwtPublicKey)
	for _, jk := range doc.Keys {
		if jk.Kid == "" || (jk.Use != "" && jk.Use != "sig") || keys[jk.Kid] != nil {
			continue
		}
		var pub crypto.PublicKey
		switch jk.Kty {
		case "RSA":
			n, errN := enc.DecodeString(jk.N)
			e, errE := enc.DecodeString(jk.E)
			if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
				continue
			}
			exp := int(new(big.Int).SetBytes(e).Int64())
			if exp < 3 || exp%2 == 0 {
				continue
			}
			pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
		case "EC":
			x, errX := enc.DecodeString(jk.X)
			y, errY := enc.DecodeString(jk.Y)
			if jk.Crv != "P-256" || errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
				continue
			}
			point := append(append([]byte{4}, x...), y...)
			ec, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
			if err != nil {
				continue
			}
			pub = ec
		default:
			continue
		}
		if jwtCheckPublicKey(pub) != nil {
			continue
		}
		keys[jk.Kid] = &jwtPublicKey{kid: jk.Kid, alg: jk.Alg, key: pub}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks has no usable signing key (RSA ≥ 2048 bits or EC P-256 with a kid)")
	}
	return keys, nil
}
