package main

import "strings"

// streamRedactor removes secrets from a streamed answer. Text is held back
// and released only up to a whitespace at least redactHoldBack bytes before
// the end, and only at a cut that splits no secret (scanning the two sides
// apart gives the same text as scanning them together); a private-key block
// is held whole until its END line arrives.
type streamRedactor struct {
	raw   string
	kinds []string
}

// redactHoldBack is the tail kept unreleased. Secrets without whitespace
// (keys, tokens, JWTs) can never straddle a cut at whitespace, whatever
// their length; the tail only has to cover the secrets that contain
// spaces — card numbers in groups, at most 23 bytes.
const redactHoldBack = 64

// push adds a delta and returns the redacted text that may be sent now.
func (sr *streamRedactor) push(delta string) string {
	sr.raw += delta
	if len(sr.raw) < 2*redactHoldBack {
		return ""
	}
	limit := len(sr.raw) - redactHoldBack
	if i := strings.LastIndex(sr.raw, "-----BEGIN"); i >= 0 && i < limit && !strings.Contains(sr.raw[i:], "-----END") {
		limit = i
	}
	whole, _ := scanSecrets(sr.raw)
	for tries := 0; tries < 4; tries++ {
		cut := strings.LastIndexAny(sr.raw[:limit], " \t\r\n")
		if cut <= 0 {
			return ""
		}
		head, kinds := scanSecrets(sr.raw[:cut])
		if tail, _ := scanSecrets(sr.raw[cut:]); head+tail == whole {
			sr.kinds = append(sr.kinds, kinds...)
			sr.raw = sr.raw[cut:]
			return head
		}
		limit = cut
	}
	return ""
}

// flush returns everything still held, redacted.
func (sr *streamRedactor) flush() string {
	out, kinds := scanSecrets(sr.raw)
	sr.kinds = append(sr.kinds, kinds...)
	sr.raw = ""
	return out
}
