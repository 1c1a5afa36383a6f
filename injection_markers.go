package main

import "strings"

// injChatMarkers are special tokens of chat templates. They never occur in
// what a user types unless someone is forging conversation turns.
func injChatMarkers() []string {
	return []string{"<|im_start|>", "<|im_end|>", "<|system|>", "<|user|>", "<|assistant|>",
		"<|endoftext|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
		"<|eot_id|>", "[inst]", "[/inst]", "<<sys>>", "<</sys>>", "<start_of_turn>",
		"<end_of_turn>", "### system:", "### instruction:", "[system](#", "<|channel|>"}
}

// scanRaw looks for markers that need punctuation and case: chat-template
// tokens, agent traces, forged role lines, escaped newlines, the "DAN"
// persona and markdown or HTML images that carry data to a URL.
func (d *InjectionDetector) scanRaw(st *injState, raw, lower string, origin uint8) {
	if strings.ContainsAny(lower, "<[#") {
		for _, m := range injChatMarkers() {
			if strings.Contains(lower, m) {
				st.mark(d.ruleChat, origin)
				break
			}
		}
	}
	if strings.Contains(lower, ":") {
		trace := 0
		for _, m := range []string{"thought:", "action:", "action input:", "observation:", "final answer:"} {
			if injAtLineStart(lower, m) {
				trace++
			}
		}
		if trace >= 2 {
			st.mark(d.ruleTrace, origin)
		}
		for _, m := range []string{"system:", "assistant:", "human:"} {
			if injAtLineStart(lower, m) {
				st.mark(d.ruleRoleLine, origin)
				break
			}
		}
	}
	if strings.Contains(lower, `\n\n\n`) || strings.Contains(lower, `\n \n \n`) || strings.Contains(lower, `\ n \ n \ n`) {
		st.mark(d.ruleEscape, origin)
	}
	if injHasWord(raw, "DAN") || injHasWord(raw, "JAILBREAK") {
		st.mark(d.ruleDAN, origin)
	}
	d.scanImages(st, lower, origin)
}

// scanImages inspects markdown and HTML images: an image whose URL carries a
// query string is the classic channel for leaking conversation data.
func (d *InjectionDetector) scanImages(st *injState, lower string, origin uint8) {
	seen := 0
	for i := 0; seen < injMaxImages; seen++ {
		j := strings.Index(lower[i:], "![")
		if j < 0 {
			break
		}
		i += j
		if m := d.exfilImage.FindStringSubmatch(lower[i:min(len(lower), i+1024)]); m != nil {
			url := m[1]
			if strings.Contains(url, "?") && (strings.Contains(url, "=") || strings.ContainsAny(url, "{$<")) ||
				strings.ContainsAny(url, "{$") || strings.Contains(url, "%7b") {
				st.mark(d.ruleExfilQuery, origin)
			} else {
				st.mark(d.ruleExfilImage, origin)
			}
		}
		i += 2
	}
	for i := 0; seen < injMaxImages; seen++ {
		j := strings.Index(lower[i:], "<img")
		if j < 0 {
			break
		}
		i += j
		if d.htmlImage.MatchString(lower[i:min(len(lower), i+1024)]) {
			st.mark(d.ruleHTMLImage, origin)
		}
		i += 4
	}
}

// injAtLineStart reports whether marker occurs at the start of s or of a line,
// after optional spaces.
func injAtLineStart(s, marker string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], marker)
		if j < 0 {
			return false
		}
		k := i + j
		b := k
		for b > 0 && (s[b-1] == ' ' || s[b-1] == '\t') {
			b--
		}
		if b == 0 || s[b-1] == '\n' || s[b-1] == '\r' {
			return true
		}
		i = k + len(marker)
	}
}

// injHasWord reports whether w occurs in s, case-sensitively, not joined to
// ASCII letters or digits on either side.
func injHasWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		k := i + j
		e := k + len(w)
		if (k == 0 || !injIsAlnum(s[k-1])) && (e == len(s) || !injIsAlnum(s[e])) {
			return true
		}
		i = k + 1
	}
}

func injIsAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
