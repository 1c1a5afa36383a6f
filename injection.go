package main

import (
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
)

// injectionThreshold is the score at or above which a message is an injection.
// Rules are weighted so that one unambiguous cue ("ignore all previous
// instructions", a chat-template marker) reaches it alone while weak cues
// ("act as", "from now on") need company.
const injectionThreshold = 0.5

// InjectionVerdict is the detector's judgement of one message.
type InjectionVerdict struct {
	Injection bool     `json:"injection"`
	Score     float64  `json:"score"`   // [0,1]
	Signals   []string `json:"signals"` // stable snake_case names; never nil
	Invisible bool     `json:"-"`       // message carried invisible/tag characters
	Encoded   bool     `json:"-"`       // a signal was found only in decoded Base64/hex/ROT13 content
}

// InjectionDetector scores messages for prompt injection and jailbreak
// attempts. It normalises the text (invisible characters, full-width forms,
// look-alike letters, case, punctuation, spaced-out letters, leetspeak,
// Base64/hex/ROT13), then matches families of rules where the words of the
// token view can start them, and a few literal markers in the raw text. Each matching rule
// adds its weight; weights combine as independent evidence
// (1 - Π(1 - w)), one per rule group, so the score stays in [0, 1].
//
// Build it once with newInjectionDetector (the service shares
// sharedDetector); each rule's regular expressions are compiled the first
// time a message reaches them. A detector is immutable and safe for
// concurrent use.
// Scanning costs time linear in the message length.
type InjectionDetector struct {
	opts   normOptions
	rules  []injRule
	groups int
	index  injIndex // heads of the rules (see injHeads); ROT13 text is decoded to look them up
	// prefixRules are rules whose first token is only known by a prefix.
	prefixRules []injPrefixRule
	// blobIndex maps the first bytes (up to four) of every rule's first
	// token to the rule, for text without word breaks.
	blobIndex map[string][]int

	exfilImage *regexp.Regexp
	htmlImage  *regexp.Regexp

	// Indices of the rules matched outside the token view.
	ruleChat, ruleTrace, ruleRoleLine, ruleEscape, ruleDAN, ruleInventedGPT int
	ruleExfilQuery, ruleExfilImage, ruleHTMLImage                           int
	// Indices of the pseudo-rules for the normalisation findings.
	ruleTags, ruleInWordInvisible, ruleInvisible, ruleHomoglyph, ruleEncoded int
}

// injRule is a rule; re is nil for rules matched by code.
//
// Its regular expressions are compiled on first use: most rules never get
// past the head index and the third-token check on ordinary traffic, and
// compiling all of them up front took most of the detector's start-up time
// and memory.
type injRule struct {
	signal  string
	lexicon bool // counts towards its group's vocabulary density
	group   int
	weight  float64
	third   map[string]bool // the words the third token can be; nil: any
	// span is the longest text re and unless can match, in bytes (at most
	// injWindow): the window a rule is matched on is cut to it, which keeps
	// the regexp engine's work (and its per-match state) to what the rule
	// can reach.
	span int
	// need lists strings one of which every match of re contains (nil: no
	// such list is known); a window without any of them is rejected without
	// running the regexp engine. The head index only proves the first words.
	need    []string
	re      *injLazyRegexp // anchored at a token of the token view
	compact *injLazyRegexp // the same, for spaced-out letters joined without spaces
	unless  *injLazyRegexp // when it matches at the same token, the rule does not fire; nil: none
}

// Scan tuning constants.
const (
	// injWindow is how far past its first token a rule may reach, in bytes of the
	// token view; the longest rule spans about twenty words.
	injWindow = 256
	// injMaxImages caps the markdown/HTML images examined per message.
	injMaxImages = 64
)

// injFound records where a rule matched: in the message itself (including
// leetspeak, spaced letters and hidden tag text) or only in decoded content.
const (
	injPlain   uint8 = 1
	injDecoded uint8 = 2
)

// sharedDetector is the process's detector, built on first use (a detector
// is immutable and depends on no configuration). serve starts building it
// before it reads its configuration, so that the build overlaps start-up.
var sharedDetector = sync.OnceValue(newInjectionDetector)

// newInjectionDetector compiles the rule table into a ready detector.
func newInjectionDetector() *InjectionDetector {
	return injNewDetector(normAllOptions())
}

// injNewDetector builds a detector with the given normalisation steps; tests
// switch steps off one at a time to measure what each costs and buys.
func injNewDetector(o normOptions) *InjectionDetector {
	d := &InjectionDetector{
		opts:       o,
		blobIndex:  make(map[string][]int),
		exfilImage: regexp.MustCompile(`^!\[[^\]\n]{0,300}\]\(\s*<?((?:https?:)?//[^\s)>]+)`),
		htmlImage:  regexp.MustCompile(`^<img\b[^>]{0,300}\bsrc\s*=\s*["']?(?:https?:)?//[^\s"'>]*\?[^\s"'>]*=`),
	}
	heads := make(injIndexBuilder)
	groups := make(map[string]int)
	groupOf := func(signal, name string) int {
		key := signal + "/" + name
		g, ok := groups[key]
		if !ok {
			g = len(groups)
			groups[key] = g
		}
		return g
	}
	for _, s := range injRuleSpecs() {
		r, h, err := injCompile(s, groupOf(s.signal, s.group))
		if err != nil {
			// The rule table is part of the program: a bad rule is a bug.
			panic(fmt.Sprintf("injection rule %s/%s: %v", s.signal, s.group, err))
		}
		d.indexHeads(heads, len(d.rules), h)
		d.rules = append(d.rules, r)
	}
	add := func(signal, group string, w float64) int {
		d.rules = append(d.rules, injRule{signal: signal, group: groupOf(signal, group), weight: w})
		return len(d.rules) - 1
	}
	d.ruleChat = add(injSigTemplate, "chat_template", 0.75)
	d.ruleTrace = add(injSigTemplate, "agent_trace", 0.6)
	d.ruleRoleLine = add(injSigTemplate, "role_line", 0.35)
	d.ruleEscape = add(injSigTemplate, "escaped_newlines", 0.35)
	d.ruleDAN = add(injSigPersona, "jailbreak_name", 0.45)
	d.ruleInventedGPT = add(injSigPersona, "invented_model", 0.35)
	d.ruleExfilQuery = add(injSigExfil, "image", 0.8)
	d.ruleHTMLImage = add(injSigExfil, "image", 0.6)
	d.ruleExfilImage = add(injSigExfil, "image", 0.35)
	d.ruleTags = add(injSigInvisible, "invisible", 0.6)
	d.ruleInWordInvisible = add(injSigInvisible, "invisible", 0.35)
	d.ruleInvisible = add(injSigInvisible, "invisible", 0.1)
	d.ruleHomoglyph = add(injSigHomoglyph, "homoglyph", 0.35)
	d.ruleEncoded = add(injSigEncoded, "encoded", 0.3)
	d.groups = len(groups)
	d.index = heads.freeze()
	return d
}

// injCompile compiles one rule and derives where it can start.
func injCompile(s injRuleSpec, group int) (injRule, injHeadSet, error) {
	// Tokens of the view end at a space or at the end, which also holds for
	// non-ASCII words where RE2's ASCII-only \b would not.
	pattern := strings.TrimSuffix(s.pattern, `\b`)
	compact := strings.ReplaceAll(strings.ReplaceAll(pattern, `\b`, ""), " ", " ?")
	r := injRule{signal: s.signal, lexicon: s.lexicon, group: group, weight: s.weight}
	r.re = injLazy(`^` + pattern + `(?: |$)`)
	r.compact = injLazy(`^` + compact)
	r.span = injMaxSpan(r.re.expr)
	if s.unless != "" {
		r.unless = injLazy(`^` + strings.TrimSuffix(s.unless, `\b`) + `(?: |$)`)
		r.span = max(r.span, injMaxSpan(r.unless.expr))
	}
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return r, injHeadSet{}, fmt.Errorf("parse %q: %w", pattern, err)
	}
	parsed = parsed.Simplify()
	r.need = injNeeded(parsed)
	if r.third, err = injTokenSet(pattern, parsed, 2); err != nil {
		return r, injHeadSet{}, err
	}
	heads, err := injHeads(pattern, parsed)
	return r, heads, err
}

// injPrefixRule is a rule whose first token is only known to start with p.
type injPrefixRule struct {
	p  string
	id int
}

// indexHeads records where rule id can start. The index holds the plain
// heads only: scanView finds ROT13-encoded ones by decoding the token.
func (d *InjectionDetector) indexHeads(index injIndexBuilder, id int, h injHeadSet) {
	if id >= math.MaxUint16 {
		panic("injection rules: more than the index's 65,535") // ~100 today
	}
	for _, p := range h.pairs {
		index.add(p, id)
		index.markPairs(p)
	}
	for _, s := range h.singles {
		index.add(s, id)
	}
	for _, p := range h.prefixes {
		d.prefixRules = append(d.prefixRules, injPrefixRule{p: p, id: id})
	}
	firsts := append(append([]string{}, h.singles...), h.prefixes...)
	for _, p := range h.pairs {
		firsts = append(firsts, p[:strings.IndexByte(p, ' ')])
	}
	for _, f := range firsts {
		k := injKey(f)
		d.blobIndex[k] = injAppendUnique(d.blobIndex[k], id)
	}
}

// injKey is the blob-index key of a token: its first four bytes.
func injKey(tok string) string {
	if len(tok) > 4 {
		return tok[:4]
	}
	return tok
}

func injAppendUnique(ids []int, id int) []int {
	for _, x := range ids {
		if x == id {
			return ids
		}
	}
	return append(ids, id)
}

// injState collects the rules matched while scanning one message.
type injState struct {
	found []uint8 // per rule: injPlain and/or injDecoded bits
}

func (st *injState) mark(id int, origin uint8) { st.found[id] |= origin }

// done reports whether evaluating rule id again from origin cannot change
// the verdict.
func (st *injState) done(id int, origin uint8) bool {
	f := st.found[id]
	return f&injPlain != 0 || f&origin != 0
}

// Scan judges one message. It is safe for concurrent use.
func (d *InjectionDetector) Scan(text string) InjectionVerdict {
	st := injState{found: make([]uint8, len(d.rules))}
	n := normalize(text, d.opts)
	d.scanView(&st, n.words, injPlain, d.opts.decode)
	if n.leet != "" {
		d.scanView(&st, n.leet, injPlain, false)
	}
	for _, b := range n.blobs {
		d.scanBlob(&st, b)
	}
	d.scanRaw(&st, n.raw, n.lower, injPlain)

	inner := d.opts
	inner.decode = false
	if n.hidden != "" {
		h := normalize(n.hidden, inner)
		d.scanView(&st, h.words, injPlain, false)
		d.scanRaw(&st, h.raw, h.lower, injPlain)
	}
	if d.opts.decode {
		for _, dec := range normDecodeRuns(n.raw) {
			h := normalize(dec, inner)
			d.scanView(&st, h.words, injDecoded, false)
			if h.leet != "" {
				d.scanView(&st, h.leet, injDecoded, false)
			}
			d.scanRaw(&st, h.raw, h.lower, injDecoded)
		}
	}

	switch {
	case n.tags > 0:
		st.mark(d.ruleTags, injPlain)
	case n.inWordInvisible:
		st.mark(d.ruleInWordInvisible, injPlain)
	case n.invisible > 0:
		st.mark(d.ruleInvisible, injPlain)
	}
	if n.mixedScript {
		st.mark(d.ruleHomoglyph, injPlain)
	}
	return d.verdict(&st)
}

// scanView matches the rules at every token of a token view where the first
// one or two tokens can start them. With rot set it also reads the tokens as
// ROT13 and matches the decoded window.
func (d *InjectionDetector) scanView(st *injState, v string, origin uint8, rot bool) {
	for i := 0; i < len(v); {
		end := injTokenEnd(v, i)
		tok := v[i:end]
		if len(tok) > 4 && strings.HasSuffix(tok, "gpt") && tok != "chatgpt" {
			// Jailbreak personas are named after the model: "DarkGPT", "BasedGPT".
			st.mark(d.ruleInventedGPT, origin)
		}
		if ids, pairs, ok := d.index.lookup(tok); ok {
			d.try(st, v, i, ids, origin, false)
			if pairs && end < len(v) {
				if ids, _, ok := d.index.lookup(v[i:injTokenEnd(v, end+1)]); ok {
					d.try(st, v, i, ids, origin, false)
				}
			}
		}
		if rot {
			d.scanROT13(st, v, i, end)
		}
		for _, pr := range d.prefixRules {
			if strings.HasPrefix(tok, pr.p) {
				d.try(st, v, i, []uint16{uint16(pr.id)}, origin, false)
			}
		}
		i = end + 1
	}
}

// scanROT13 matches the rules whose heads are the ROT13 decoding of the
// token v[i:end] (and of the pair it starts). Tokens longer than any head
// are skipped without decoding.
func (d *InjectionDetector) scanROT13(st *injState, v string, i, end int) {
	var buf [injMaxHead]byte
	if end-i > len(buf) {
		return
	}
	ids, pairs, ok := d.index.lookup(string(normAppendROT13(buf[:0], v[i:end])))
	if !ok {
		return
	}
	d.try(st, v, i, ids, injDecoded, true)
	if pairs && end < len(v) {
		pairEnd := injTokenEnd(v, end+1)
		if pairEnd-i > len(buf) {
			return
		}
		if ids, _, ok := d.index.lookup(string(normAppendROT13(buf[:0], v[i:pairEnd]))); ok {
			d.try(st, v, i, ids, injDecoded, true)
		}
	}
}

// injMaxHead bounds the heads (one token or a pair) looked up in ROT13:
// longer text cannot be a head (TestInjectionHeadsFitROT13Buffer).
const injMaxHead = 64

// injThirdToken returns the third token of v from i on, or "" if none.
func injThirdToken(v string, i int) string {
	for k := 0; k < 2; k++ {
		i = injTokenEnd(v, i) + 1
		if i >= len(v) {
			return ""
		}
	}
	return v[i:injTokenEnd(v, i)]
}

// injTokenEnd returns the end of the token of v that starts at i.
func injTokenEnd(v string, i int) int {
	if j := strings.IndexByte(v[i:], ' '); j >= 0 {
		return i + j
	}
	return len(v)
}

// try runs rules ids on the window of v starting at i, ROT13-decoded if rot.
func (d *InjectionDetector) try(st *injState, v string, i int, ids []uint16, origin uint8, rot bool) {
	var w, third string
	thirdKnown := false
	for _, id16 := range ids {
		id := int(id16)
		if st.done(id, origin) {
			continue
		}
		if set := d.rules[id].third; set != nil {
			if !thirdKnown {
				third, thirdKnown = injThirdToken(v, i), true
				if rot {
					third = normROT13(third)
				}
			}
			if !set[third] {
				continue
			}
		}
		if w == "" {
			w = injWindowAt(v, i)
			if rot {
				w = normROT13(w)
			}
		}
		if d.rules[id].matches(w) {
			st.mark(id, origin)
		}
	}
}

// injWindowAt returns the text from i to about injWindow bytes on, ending at
// a token boundary so that no rule matches half a word.
func injWindowAt(v string, i int) string {
	end := i + injWindow
	if end >= len(v) {
		return v[i:]
	}
	if sp := strings.IndexByte(v[end:], ' '); sp >= 0 {
		return v[i : end+sp]
	}
	return v[i:]
}

// scanBlob matches the spaced-letter form of the rules inside a run of
// letters that had no word breaks ("s a y t h a t" joined to "saythat").
func (d *InjectionDetector) scanBlob(st *injState, b string) {
	for p := 0; p < len(b); p++ {
		for k := 4; k >= 1; k-- {
			if p+k > len(b) {
				continue
			}
			for _, id := range d.blobIndex[b[p:p+k]] {
				if r := &d.rules[id]; !st.done(id, injPlain) && r.compact.MatchString(injWindowAt(b, p)) &&
					(r.unless == nil || !r.unless.MatchString(injWindowAt(b, p))) {
					st.mark(id, injPlain)
				}
			}
		}
	}
}

// verdict combines the matched rules into a score and the named signals.
func (d *InjectionDetector) verdict(st *injState) InjectionVerdict {
	if !slices.ContainsFunc(st.found, func(f uint8) bool { return f != 0 }) {
		// Nothing matched (most messages): score 0, no signal, as below.
		return InjectionVerdict{Signals: []string{}}
	}
	weights := make([]float64, d.groups)
	lexicon := make([]int, d.groups)
	plain := make(map[string]bool)
	seen := make(map[string]bool)
	for id, f := range st.found {
		if f == 0 {
			continue
		}
		r := d.rules[id]
		if r.lexicon {
			lexicon[r.group]++
			if w := injLexiconWeight(lexicon[r.group]); w == 0 {
				continue
			} else {
				r.weight = w
			}
		}
		weights[r.group] = math.Max(weights[r.group], r.weight)
		seen[r.signal] = true
		if f&injPlain != 0 {
			plain[r.signal] = true
		}
	}
	v := InjectionVerdict{Signals: []string{}}
	for sig := range seen {
		if !plain[sig] {
			v.Encoded = true
		}
	}
	if v.Encoded {
		g := d.rules[d.ruleEncoded].group
		weights[g] = d.rules[d.ruleEncoded].weight
		seen[injSigEncoded] = true
	}
	v.Invisible = seen[injSigInvisible]
	keep := 1.0
	for _, w := range weights {
		keep *= 1 - w
	}
	v.Score = math.Round((1-keep)*1000) / 1000
	v.Injection = v.Score >= injectionThreshold
	for _, sig := range injSignalOrder() {
		if seen[sig] {
			v.Signals = append(v.Signals, sig)
		}
	}
	return v
}
