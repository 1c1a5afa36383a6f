package main

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"
)

// normDecodeRuns finds Base64 and hex runs of at least normMinEncodedRun
// characters in s and returns those that decode to mostly printable UTF-8
// text. Total decoded output is capped at normMaxDecoded bytes.
func normDecodeRuns(s string) []string {
	var out []string
	budget := normMaxDecoded
	attempts := 0
	for i := 0; i < len(s) && budget > 0 && attempts < normMaxDecodeRuns; {
		if !normIsB64(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && normIsB64(s[j]) {
			j++
		}
		run := s[i:j]
		for j < len(s) && s[j] == '=' {
			j++
		}
		start := i
		i = j
		if len(run) < normMinEncodedRun {
			continue
		}
		if start > 0 && s[start-1] >= utf8.RuneSelf {
			continue // part of a non-ASCII word
		}
		attempts++
		if d, ok := normDecodeRun(run, budget); ok {
			budget -= len(d)
			out = append(out, d)
		}
	}
	return out
}

// normDecodeRun decodes one run as hex or Base64 (standard or URL alphabet),
// reading at most about budget output bytes.
func normDecodeRun(run string, budget int) (string, bool) {
	if h := strings.TrimPrefix(strings.TrimPrefix(run, "0x"), "0X"); normIsHex(h) && len(h)%2 == 0 {
		if len(h) > 2*budget {
			h = h[:2*budget]
		}
		if b, err := hex.DecodeString(h); err == nil && normPrintable(b) {
			return string(b), true
		}
		return "", false
	}
	if max := budget / 3 * 4; len(run) > max {
		run = run[:max]
	}
	if len(run)%4 == 1 {
		run = run[:len(run)-1]
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(run, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(run)
	if err != nil || !normPrintable(b) {
		return "", false
	}
	return string(b), true
}

func normIsB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_'
}

func normIsHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// normPrintable reports whether b is valid UTF-8 text of at least 8 bytes in
// which at least 90% of the runes are printable and at least half are letters
// or spaces, the shape of a natural-language payload rather than binary.
func normPrintable(b []byte) bool {
	if len(b) < 8 || !utf8.Valid(b) {
		return false
	}
	var n, printable, letters int
	for _, r := range string(b) {
		n++
		if unicode.IsPrint(r) || r == '\n' || r == '\t' || r == '\r' {
			printable++
		}
		if unicode.IsLetter(r) || r == ' ' {
			letters++
		}
	}
	return printable*10 >= n*9 && letters*2 >= n
}

// normROT13 returns s with ASCII letters rotated by 13 places.
func normROT13(s string) string {
	return string(normAppendROT13(make([]byte, 0, len(s)), s))
}

// normAppendROT13 appends the ROT13 form of s to b.
func normAppendROT13(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			c = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			c = 'A' + (c-'A'+13)%26
		}
		b = append(b, c)
	}
	return b
}
