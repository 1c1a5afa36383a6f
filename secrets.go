package main

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
)

// scanSecrets finds secrets in model or tool output and returns text with
// each replaced by "[REDACTED:<kind>]", plus the kinds found (deduplicated,
// sorted; nil when none). Kinds:
//
//   - anthropic_api_key: "sk-ant-" and at least 20 more key characters
//   - openai_api_key: "sk-" (also sk-proj-, sk-svcacct-) and at least 32
//     more key characters, some of them digits and some letters
//   - aws_access_key: "AKIA" or "ASIA" and exactly 16 of [A-Z0-9]
//   - github_token: ghp_/gho_/ghs_/ghu_/ghr_ and at least 36 alphanumerics,
//     or github_pat_ and at least 22
//   - slack_token: xoxa-/xoxb-/xoxp-/xoxr- and at least 10 more, with a digit
//   - api_key: this service's keys, "pa_" and exactly 43 base64url characters
//   - private_key: a "-----BEGIN … PRIVATE KEY-----" block through its END
//     line (unterminated: through its base64 body)
//   - jwt: three base64url segments whose first decodes to a JSON object
//     with "alg"
//   - card_number: 13–19 digits, optionally grouped by single spaces or
//     dashes (first group of 4), with a Visa, Mastercard, Amex or Discover
//     prefix and length, passing the Luhn check
//
// Prefixed tokens must start a word (not follow a letter or digit). Where
// matches overlap, their union is redacted once. Any other occurrence of a
// detected secret's exact text is redacted too, so the output never
// contains one. Matches begin and end on ASCII bytes, so valid UTF-8 stays
// valid. It runs in time linear in len(text) and is safe for concurrent use.
func scanSecrets(text string) (redacted string, kinds []string) {
	ms := secretFind(text)
	if len(ms) == 0 {
		return text, nil
	}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for i := 0; i < len(ms); {
		start, end := ms[i].start, ms[i].end
		kinds = append(kinds, ms[i].kind)
		j := i + 1
		for ; j < len(ms) && ms[j].start < end; j++ {
			end = max(end, ms[j].end)
			kinds = append(kinds, ms[j].kind)
		}
		b.WriteString(text[last:start])
		b.WriteString("[REDACTED:" + ms[i].kind + "]")
		last, i = end, j
	}
	b.WriteString(text[last:])
	out := b.String()

	// A detected secret's text can recur where a boundary rule did not
	// match it (say, glued to a letter); redact those occurrences too. A
	// private_key value starts with its BEGIN line, and every BEGIN line
	// of the input is inside a match, so those cannot recur.
	var values, valueKinds []string
	seen := make(map[string]bool)
	for _, m := range ms {
		if v := text[m.start:m.end]; m.kind != "private_key" && !seen[v] {
			seen[v] = true
			values, valueKinds = append(values, v), append(valueKinds, m.kind)
		}
	}
	out = secretRedactAll(out, values, valueKinds)
	slices.Sort(kinds)
	return out, slices.Compact(kinds)
}

// secretMatch is one detected secret: text[start:end] of kind.
type secretMatch struct {
	start, end int
	kind       string
}

// secretFind returns every match in text, ordered by start (longer first
// on a tie); matches may overlap.
func secretFind(text string) []secretMatch {
	var ms []secretMatch
	ms = secretFindPrivateKeys(text, ms)
	ms = secretFindTokens(text, ms)
	ms = secretFindJWTs(text, ms)
	ms = secretFindCards(text, ms)
	slices.SortFunc(ms, func(a, b secretMatch) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(b.end, a.end))
	})
	return ms
}

// Byte classes.
const (
	secretB64URL     = iota // A-Z a-z 0-9 _ -
	secretAlnum             // A-Z a-z 0-9
	secretUpperDigit        // A-Z 0-9
	secretAlnumDash         // A-Z a-z 0-9 -
	secretAlnumUnder        // A-Z a-z 0-9 _
)

func secretIs(class int, c byte) bool {
	upper, lower, digit := 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9'
	switch class {
	case secretB64URL:
		return upper || lower || digit || c == '_' || c == '-'
	case secretAlnum:
		return upper || lower || digit
	case secretUpperDigit:
		return upper || digit
	case secretAlnumDash:
		return upper || lower || digit || c == '-'
	case secretAlnumUnder:
		return upper || lower || digit || c == '_'
	}
	return false
}

// secretTokenRule describes a prefixed token: prefix, then a run of body
// bytes of length minLen… (maxLen, 0 for no bound).
type secretTokenRule struct {
	prefix, kind   string
	body           int  // byte class of the body
	minLen, maxLen int  // body length bounds
	notAfter       int  // byte class that must not precede the prefix
	notBefore      bool // no alphanumeric may follow the body
	mixed          bool // the body must hold a digit and a letter
	digit          bool // the body must hold a digit
}

// secretFindTokens appends the prefixed tokens of text to ms. After a
// candidate the scan resumes at the end of its run, which misses nothing:
// a later candidate in the same run either fails notAfter (the class
// contains the body bytes: exact-length rules) or has a body that is a
// suffix of the first one's, and the checks (a minimum length, a digit, a
// letter) hold for a suffix only if they hold for the whole body.
func secretFindTokens(text string, ms []secretMatch) []secretMatch {
	rules := [...]secretTokenRule{
		{prefix: "sk-ant-", kind: "anthropic_api_key", body: secretB64URL, minLen: 20, notAfter: secretAlnum, mixed: true},
		{prefix: "sk-", kind: "openai_api_key", body: secretB64URL, minLen: 32, notAfter: secretAlnum, mixed: true},
		{prefix: "AKIA", kind: "aws_access_key", body: secretUpperDigit, minLen: 16, maxLen: 16, notAfter: secretAlnum, notBefore: true},
		{prefix: "ASIA", kind: "aws_access_key", body: secretUpperDigit, minLen: 16, maxLen: 16, notAfter: secretAlnum, notBefore: true},
		{prefix: "ghp_", kind: "github_token", body: secretAlnum, minLen: 36, notAfter: secretAlnumUnder},
		{prefix: "gho_", kind: "github_token", body: secretAlnum, minLen: 36, notAfter: secretAlnumUnder},
		{prefix: "ghs_", kind: "github_token", body: secretAlnum, minLen: 36, notAfter: secretAlnumUnder},
		{prefix: "ghu_", kind: "github_token", body: secretAlnum, minLen: 36, notAfter: secretAlnumUnder},
		{prefix: "ghr_", kind: "github_token", body: secretAlnum, minLen: 36, notAfter: secretAlnumUnder},
		{prefix: "github_pat_", kind: "github_token", body: secretAlnumUnder, minLen: 22, notAfter: secretAlnumUnder},
		{prefix: "xoxa-", kind: "slack_token", body: secretAlnumDash, minLen: 10, notAfter: secretAlnum, digit: true},
		{prefix: "xoxb-", kind: "slack_token", body: secretAlnumDash, minLen: 10, notAfter: secretAlnum, digit: true},
		{prefix: "xoxp-", kind: "slack_token", body: secretAlnumDash, minLen: 10, notAfter: secretAlnum, digit: true},
		{prefix: "xoxr-", kind: "slack_token", body: secretAlnumDash, minLen: 10, notAfter: secretAlnum, digit: true},
		{prefix: "pa_", kind: "api_key", body: secretB64URL, minLen: 43, maxLen: 43, notAfter: secretB64URL},
	}
	for i := range rules {
		r := &rules[i]
		for off := 0; off < len(text); {
			k := strings.Index(text[off:], r.prefix)
			if k < 0 {
				break
			}
			q := off + k
			if (q > 0 && secretIs(r.notAfter, text[q-1])) ||
				(r.kind == "openai_api_key" && strings.HasPrefix(text[q:], "sk-ant-")) {
				off = q + 1
				continue
			}
			body := q + len(r.prefix)
			e := body
			for e < len(text) && secretIs(r.body, text[e]) {
				e++
			}
			if secretTokenValid(r, text[body:e]) && (!r.notBefore || e == len(text) || !secretIs(secretAlnum, text[e])) {
				ms = append(ms, secretMatch{start: q, end: e, kind: r.kind})
			}
			off = max(e, q+1)
		}
	}
	return ms
}

func secretTokenValid(r *secretTokenRule, body string) bool {
	if len(body) < r.minLen || (r.maxLen > 0 && len(body) > r.maxLen) {
		return false
	}
	if !r.mixed && !r.digit {
		return true
	}
	hasDigit, hasLetter := false, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		hasDigit = hasDigit || ('0' <= c && c <= '9')
		hasLetter = hasLetter || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
	}
	return hasDigit && (hasLetter || !r.mixed)
}

// secretFindPrivateKeys appends PEM private-key blocks to ms.
func secretFindPrivateKeys(text string, ms []secretMatch) []secretMatch {
	const begin, end, dashes = "-----BEGIN ", "-----END ", "-----"
	label := func(i int) int { // end of a PEM label starting at i
		for i < len(text) && (secretIs(secretUpperDigit, text[i]) || text[i] == ' ') {
			i++
		}
		return i
	}
	nextEnd := 0 // index of the next END line at or after the search point; -1: none left
	for off := 0; off < len(text); {
		k := strings.Index(text[off:], begin)
		if k < 0 {
			break
		}
		q := off + k
		l := label(q + len(begin))
		if !strings.HasSuffix(text[q+len(begin):l], "PRIVATE KEY") || !strings.HasPrefix(text[l:], dashes) {
			off = l
			continue
		}
		stop := l + len(dashes)
		if nextEnd >= 0 && nextEnd < stop {
			if nextEnd = strings.Index(text[stop:], end); nextEnd >= 0 {
				nextEnd += stop
			}
		}
		if nextEnd >= 0 {
			stop = label(nextEnd + len(end))
			if strings.HasPrefix(text[stop:], dashes) {
				stop += len(dashes)
			}
		} else {
			for stop < len(text) && secretPEMBody(text[stop]) {
				stop++
			}
		}
		ms = append(ms, secretMatch{start: q, end: stop, kind: "private_key"})
		off = stop
	}
	return ms
}

func secretPEMBody(c byte) bool {
	return secretIs(secretAlnum, c) || c == '+' || c == '/' || c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t'
}

// secretMaxJWTHeader bounds the header segment decoded per candidate.
const secretMaxJWTHeader = 4096

// secretFindJWTs appends JSON Web Tokens (header.payload.signature, the
// header a base64url JSON object with "alg"; the signature may be empty)
// to ms.
func secretFindJWTs(text string, ms []secretMatch) []secretMatch {
	run := func(i int) int {
		for i < len(text) && secretIs(secretB64URL, text[i]) {
			i++
		}
		return i
	}
	for off := 0; off < len(text); {
		k := strings.Index(text[off:], "eyJ")
		if k < 0 {
			break
		}
		q := off + k
		h := run(q)
		off = h
		if h >= len(text) || text[h] != '.' {
			continue
		}
		p := run(h + 1)
		if p == h+1 || p >= len(text) || text[p] != '.' || !secretJWTHeader(text[q:h]) {
			continue
		}
		s := run(p + 1)
		ms = append(ms, secretMatch{start: q, end: s, kind: "jwt"})
		off = s
	}
	return ms
}

// secretJWTHeader reports whether seg is base64url (unpadded) of a JSON
// object with an "alg" string member.
func secretJWTHeader(seg string) bool {
	if len(seg) > secretMaxJWTHeader {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	var hdr map[string]json.RawMessage
	if json.Unmarshal(raw, &hdr) != nil {
		return false
	}
	var alg string
	return json.Unmarshal(hdr["alg"], &alg) == nil
}

// secretFindCards appends payment card numbers to ms: runs of digit groups
// joined by single spaces or dashes, not glued to letters, digits or "_",
// are searched for windows of whole groups that form a card number.
func secretFindCards(text string, ms []secretMatch) []secretMatch {
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	var groups [][2]int
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}
		groups = groups[:0]
		j := i
		for {
			gs := j
			for j < len(text) && isDigit(text[j]) {
				j++
			}
			groups = append(groups, [2]int{gs, j})
			if j+1 < len(text) && (text[j] == ' ' || text[j] == '-') && isDigit(text[j+1]) {
				j++
				continue
			}
			break
		}
		startOK := i == 0 || !secretIs(secretAlnumUnder, text[i-1])
		endOK := j == len(text) || !secretIs(secretAlnumUnder, text[j])
		ms = secretCardWindows(text, groups, startOK, endOK, ms)
		i = j
	}
	return ms
}

// secretCardWindows appends, scanning left to right, the longest window of
// whole groups at each start that is a card number.
func secretCardWindows(text string, groups [][2]int, startOK, endOK bool, ms []secretMatch) []secretMatch {
	var digits [19]byte
	for s := 0; s < len(groups); {
		best := -1
		if s > 0 || startOK {
			n := 0
			var sep byte
			for e := s; e < len(groups); e++ {
				g := groups[e]
				if n+g[1]-g[0] > len(digits) || (e == len(groups)-1 && !endOK) {
					break
				}
				if e > s {
					c := text[g[0]-1]
					if sep == 0 {
						sep = c
					} else if c != sep {
						break
					}
					// Grouped numbers start with a group of four; the
					// middle groups hold 4–6 digits (Amex is 4-6-5).
					if l := groups[e-1][1] - groups[e-1][0]; (e-1 == s && l != 4) || (e-1 > s && (l < 4 || l > 6)) {
						break
					}
					if g[1]-g[0] > 6 {
						break
					}
				}
				n += copy(digits[n:], text[g[0]:g[1]])
				if n >= 13 && secretCardValid(digits[:n]) {
					best = e
				}
			}
		}
		if best < 0 {
			s++
			continue
		}
		ms = append(ms, secretMatch{start: groups[s][0], end: groups[best][1], kind: "card_number"})
		s = best + 1
	}
	return ms
}

// secretCardValid reports whether d (13–19 ASCII digits) has the prefix and
// length of a Visa, Mastercard, American Express or Discover card and
// passes the Luhn check.
func secretCardValid(d []byte) bool {
	prefix := func(k int) int {
		v := 0
		for _, c := range d[:k] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	n := len(d)
	var ok bool
	switch p2, p3, p4, p6 := prefix(2), prefix(3), prefix(4), prefix(6); {
	case d[0] == '4': // Visa
		ok = n == 13 || n == 16 || n == 19
	case (p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720): // Mastercard
		ok = n == 16
	case p2 == 34 || p2 == 37: // American Express
		ok = n == 15
	case p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || (p6 >= 622126 && p6 <= 622925): // Discover
		ok = n >= 16 && n <= 19
	}
	if !ok {
		return false
	}
	sum := 0
	for i := n - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if (n-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}
