package main

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the intent detection the embedded offline model uses to
// decide when to call a tool: findArithmetic for the calculator and wantsTime
// for current_time. Both prefer missing an intent to inventing one.

// toolNLKind is the kind of one token of a natural-language message.
type toolNLKind int

const (
	toolNLNum toolNLKind = iota
	toolNLOp
	toolNLLParen
	toolNLRParen
	toolNLComma
	toolNLPi
	toolNLFunc
	toolNLWord
	toolNLPunct
)

// toolNLToken is one token of a message. space reports whitespace before it;
// spelled marks an operator spelled out in words ("plus", "divided by",
// "12 x 7") rather than written as a symbol.
type toolNLToken struct {
	kind    toolNLKind
	text    string // number spelling, word (lower case, apostrophes removed), function name
	op      byte   // toolNLOp: one of + - * / % ^
	space   bool
	spelled bool
	implied bool // toolNLNum: the exponent a word supplies ("squared" → ^2), not an operand of the text
}

// toolNLLex splits a lower-cased message into numbers, operators, parentheses,
// commas, words and other punctuation.
func toolNLLex(s string) []toolNLToken {
	var toks []toolNLToken
	space := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		tok := toolNLToken{space: space}
		switch {
		case unicode.IsSpace(r):
			space = true
			i += size
			continue
		case r >= '0' && r <= '9' || r == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			n := toolNLNumberLen(s[i:])
			tok.kind, tok.text = toolNLNum, s[i:i+n]
			i += n
		case r == 'π':
			tok.kind = toolNLPi
			i += size
		case unicode.IsLetter(r):
			start := i
			var dropped []byte // the word so far, once an apostrophe was dropped from it
			for i < len(s) {
				r, size := utf8.DecodeRuneInString(s[i:])
				if unicode.IsLetter(r) && r != 'π' {
					if dropped != nil {
						dropped = append(dropped, s[i:i+size]...)
					}
				} else if r == '\'' || r == '’' {
					// An apostrophe inside a word ("what's") is dropped.
					next, _ := utf8.DecodeRuneInString(s[i+size:])
					if !unicode.IsLetter(next) {
						break
					}
					if dropped == nil {
						dropped = append([]byte{}, s[start:i]...)
					}
				} else {
					break
				}
				i += size
			}
			tok.kind, tok.text = toolNLWord, s[start:i]
			if dropped != nil {
				tok.text = string(dropped)
			}
			// log2 is the only function name with a digit in it.
			if tok.text == "log" && strings.HasPrefix(s[i:], "2") && !strings.HasPrefix(s[i:], "2.") &&
				(i+1 == len(s) || s[i+1] < '0' || s[i+1] > '9') {
				tok.text = "log2"
				i++
			}
		case r == '*' && strings.HasPrefix(s[i:], "**"):
			tok.kind, tok.op = toolNLOp, '^'
			i += 2
		case r == '+' || r == '-' || r == '*' || r == '/' || r == '%' || r == '^':
			tok.kind, tok.op = toolNLOp, byte(r)
			i += size
		case r == '×' || r == '÷' || r == '−':
			tok.kind, tok.op = toolNLOp, calcUnicodeOp(r)
			i += size
		case r == '(':
			tok.kind = toolNLLParen
			i += size
		case r == ')':
			tok.kind = toolNLRParen
			i += size
		case r == ',':
			tok.kind = toolNLComma
			i += size
		default:
			tok.kind, tok.text = toolNLPunct, string(r)
			i += size
		}
		toks = append(toks, tok)
		space = false
	}
	return toks
}

// toolNLNumberLen returns the length of the number at the start of s: digits,
// a fraction only when a digit follows the "." (so a full stop after a number
// stays punctuation), and an exponent only when digits follow the "e".
func toolNLNumberLen(s string) int {
	digits := func(i int) int {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i
	}
	i := digits(0)
	if i+1 < len(s) && s[i] == '.' && s[i+1] >= '0' && s[i+1] <= '9' {
		i = digits(i + 1)
	}
	if i < len(s) && s[i] == 'e' {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			i = digits(j)
		}
	}
	return i
}

// toolNLPhrase is a word sequence that spells an operator or a function.
type toolNLPhrase struct {
	words []string
	op    byte   // operator, or 0 for a function
	then  string // digits appended after the operator ("squared" → ^2)
	fn    string // function name
}

// toolNLPhrases lists the spelled-out operators and functions, longest
// phrases first so they win over their prefixes.
// toolNLPhraseTable is built once: the table is read for every word of
// every message the embedded model sees.
var toolNLPhraseTable = toolNLPhrases()

func toolNLPhrases() []toolNLPhrase {
	return []toolNLPhrase{
		{words: []string{"raised", "to", "the", "power", "of"}, op: '^'},
		{words: []string{"to", "the", "power", "of"}, op: '^'},
		{words: []string{"to", "the", "power"}, op: '^'},
		{words: []string{"raised", "to"}, op: '^'},
		{words: []string{"multiplied", "by"}, op: '*'},
		{words: []string{"divided", "by"}, op: '/'},
		{words: []string{"plus"}, op: '+'},
		{words: []string{"minus"}, op: '-'},
		{words: []string{"negative"}, op: '-'},
		{words: []string{"times"}, op: '*'},
		{words: []string{"mod"}, op: '%'},
		{words: []string{"modulo"}, op: '%'},
		{words: []string{"squared"}, op: '^', then: "2"},
		{words: []string{"cubed"}, op: '^', then: "3"},
		{words: []string{"square", "root", "of"}, fn: "sqrt"},
		{words: []string{"square", "root"}, fn: "sqrt"},
		{words: []string{"absolute", "value", "of"}, fn: "abs"},
		{words: []string{"natural", "logarithm", "of"}, fn: "ln"},
		{words: []string{"natural", "log", "of"}, fn: "ln"},
	}
}

// toolNLFuncAllowsOf reports whether "<name> of <number>" reads as a call of
// the function name ("sqrt of 16", "log of 100"). Words such as round, min and
// max are too common in prose ("round of 16", "5 min") to be read that way.
func toolNLFuncAllowsOf(name string) bool {
	switch name {
	case "sqrt", "abs", "ln", "log", "log2", "exp", "sin", "cos", "tan":
		return true
	}
	return false
}

func toolNLWordsAt(toks []toolNLToken, i int, words []string) bool {
	if i+len(words) > len(toks) {
		return false
	}
	for k, w := range words {
		if toks[i+k].kind != toolNLWord || toks[i+k].text != w {
			return false
		}
	}
	return true
}

// toolNLIsOperand reports whether t can end an operand.
func toolNLIsOperand(t toolNLToken) bool {
	return t.kind == toolNLNum || t.kind == toolNLRParen || t.kind == toolNLPi
}

// toolNLSegments turns message tokens into runs of arithmetic tokens, split
// wherever a token cannot belong to an expression. Spelled-out operators
// become symbols, "12 x 7" becomes 12*7, "sqrt of 16" becomes sqrt(16), and
// thousands separators outside parentheses are dropped ("1,000" → 1000).
func toolNLSegments(raw []toolNLToken) [][]toolNLToken {
	var segs [][]toolNLToken
	var cur []toolNLToken
	depth := 0
	flush := func() {
		if len(cur) > 0 {
			segs = append(segs, cur)
		}
		cur, depth = nil, 0
	}
	for i := 0; i < len(raw); {
		t := raw[i]
		switch t.kind {
		case toolNLNum:
			j := i + 1
			if depth == 0 && len(t.text) <= 3 && toolIsDigits(t.text) {
				for j+1 < len(raw) && raw[j].kind == toolNLComma && !raw[j].space &&
					raw[j+1].kind == toolNLNum && !raw[j+1].space && len(raw[j+1].text) == 3 && toolIsDigits(raw[j+1].text) {
					t.text += raw[j+1].text
					j += 2
				}
			}
			cur = append(cur, t)
			i = j
		case toolNLOp, toolNLPi:
			cur = append(cur, t)
			i++
		case toolNLLParen:
			depth++
			cur = append(cur, t)
			i++
		case toolNLRParen:
			depth = max(depth-1, 0)
			cur = append(cur, t)
			i++
		case toolNLComma:
			if depth == 0 {
				flush()
			} else {
				cur = append(cur, t)
			}
			i++
		case toolNLWord:
			emitted, n := toolNLWordToMath(raw, i, cur)
			if n == 0 {
				flush()
				i++
				continue
			}
			cur = append(cur, emitted...)
			i += n
		default:
			flush()
			i++
		}
	}
	flush()
	return segs
}

// toolNLWordToMath reads the word at raw[i] (and the words after it) as
// arithmetic, returning the tokens to emit and how many raw tokens they
// consumed; 0 consumed means the word ends the expression.
func toolNLWordToMath(raw []toolNLToken, i int, cur []toolNLToken) ([]toolNLToken, int) {
	w := raw[i].text
	if w == "pi" {
		return []toolNLToken{{kind: toolNLPi}}, 1
	}
	if w == "x" && len(cur) > 0 && toolNLIsOperand(cur[len(cur)-1]) && i+1 < len(raw) {
		if next := raw[i+1]; next.kind == toolNLNum || next.kind == toolNLLParen || next.kind == toolNLPi {
			return []toolNLToken{{kind: toolNLOp, op: '*', spelled: true}}, 1
		}
	}
	fn, n, bare := "", 0, false
	for _, p := range toolNLPhraseTable {
		if !toolNLWordsAt(raw, i, p.words) {
			continue
		}
		if p.op != 0 {
			out := []toolNLToken{{kind: toolNLOp, op: p.op, spelled: true}}
			if p.then != "" {
				out = append(out, toolNLToken{kind: toolNLNum, text: p.then, implied: true})
			}
			return out, len(p.words)
		}
		fn, n, bare = p.fn, len(p.words), true
		break
	}
	if fn == "" {
		if _, _, ok := calcFuncArity(w); !ok {
			return nil, 0
		}
		fn, n, bare = w, 1, w == "sqrt"
		if toolNLFuncAllowsOf(w) && toolNLWordsAt(raw, i+1, []string{"of"}) {
			n, bare = 2, true
		}
	}
	k := i + n
	if k < len(raw) && raw[k].kind == toolNLLParen {
		return []toolNLToken{{kind: toolNLFunc, text: fn}}, n
	}
	if !bare {
		return nil, 0
	}
	// "sqrt of 16", "square root of -4", "sqrt of pi": wrap the operand.
	out := []toolNLToken{{kind: toolNLFunc, text: fn}, {kind: toolNLLParen}}
	if k < len(raw) && raw[k].kind == toolNLOp && raw[k].op == '-' {
		out = append(out, raw[k])
		k++
	}
	if k >= len(raw) {
		return nil, 0
	}
	switch {
	case raw[k].kind == toolNLNum || raw[k].kind == toolNLPi:
		out = append(out, raw[k])
	case raw[k].kind == toolNLWord && raw[k].text == "pi":
		out = append(out, toolNLToken{kind: toolNLPi})
	default:
		return nil, 0
	}
	return append(out, toolNLToken{kind: toolNLRParen}), k + 1 - i
}

func toolIsDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// toolNLTrim drops tokens that cannot start or end an expression and
// parentheses left unmatched at either end ("(what is 2+2)" → 2+2).
func toolNLTrim(seg []toolNLToken) []toolNLToken {
	for changed := true; changed && len(seg) > 0; {
		changed = false
		first, last := seg[0], seg[len(seg)-1]
		opens, closes := 0, 0
		for _, t := range seg {
			switch t.kind {
			case toolNLLParen:
				opens++
			case toolNLRParen:
				closes++
			}
		}
		switch {
		case first.kind == toolNLOp && first.op != '-' && first.op != '+',
			first.kind == toolNLRParen, first.kind == toolNLComma:
			seg = seg[1:]
			if len(seg) > 0 && seg[0].implied {
				// "squared" with nothing before it: its exponent goes with
				// it, or "squared squared" would read as 2^2.
				seg = seg[1:]
			}
		case last.kind == toolNLOp, last.kind == toolNLLParen, last.kind == toolNLComma, last.kind == toolNLFunc:
			seg = seg[:len(seg)-1]
		case opens > closes && first.kind == toolNLLParen:
			seg = seg[1:]
		case closes > opens && last.kind == toolNLRParen:
			seg = seg[:len(seg)-1]
		default:
			continue
		}
		changed = true
	}
	return seg
}

// toolNLRender spells a segment as calculator input, without spaces.
func toolNLRender(seg []toolNLToken) string {
	var b strings.Builder
	for _, t := range seg {
		switch t.kind {
		case toolNLNum, toolNLFunc:
			b.WriteString(t.text)
		case toolNLOp:
			b.WriteByte(t.op)
		case toolNLPi:
			b.WriteString("pi")
		case toolNLLParen:
			b.WriteByte('(')
		case toolNLRParen:
			b.WriteByte(')')
		case toolNLComma:
			b.WriteByte(',')
		}
	}
	return b.String()
}

// toolNLHasMathCue reports whether the message reads as a request to compute:
// it says so ("what is", "calculate", "=", …) or holds no words at all.
func toolNLHasMathCue(raw []toolNLToken) bool {
	words := false
	for i, t := range raw {
		words = words || t.kind == toolNLWord
		switch {
		case t.kind == toolNLPunct && t.text == "=":
			return true
		case t.kind != toolNLWord:
			continue
		}
		switch t.text {
		case "calculate", "calc", "compute", "evaluate", "eval", "solve", "equals", "whats":
			return true
		}
		if toolNLWordsAt(raw, i, []string{"what", "is"}) || toolNLWordsAt(raw, i, []string{"how", "much"}) ||
			toolNLWordsAt(raw, i, []string{"work", "out"}) {
			return true
		}
	}
	return !words
}

// toolNLPlausible reports whether a parsed segment is worth computing: it
// needs a binary operator or a function call, and whole numbers joined only
// by the symbols "-" or "/" (dates, phone numbers, scores, ranges such as
// "5 - 10 minutes") count only when the message asks for a computation and do
// not look like a date (a leading zero, or a four-digit year among three or
// more numbers).
func toolNLPlausible(seg []toolNLToken, cue bool) bool {
	binary, ambiguous := 0, true
	hasFunc := false
	for i, t := range seg {
		switch t.kind {
		case toolNLFunc:
			hasFunc = true
			ambiguous = false
		case toolNLPi, toolNLLParen, toolNLRParen, toolNLComma:
			ambiguous = false
		case toolNLNum:
			if !toolIsDigits(t.text) {
				ambiguous = false
			}
		case toolNLOp:
			if i == 0 || !toolNLIsOperand(seg[i-1]) {
				continue // unary
			}
			binary++
			if t.spelled || (t.op != '-' && t.op != '/') {
				ambiguous = false
			}
		}
	}
	if binary == 0 && !hasFunc {
		return false
	}
	if !ambiguous {
		return true
	}
	if !cue {
		return false
	}
	for _, t := range seg {
		if t.kind != toolNLNum {
			continue
		}
		if len(t.text) > 1 && t.text[0] == '0' || binary >= 2 && len(t.text) == 4 {
			return false
		}
	}
	return true
}

// findArithmetic extracts an arithmetic expression from a natural-language
// message for the embedded offline model: "What is 12*7?" → "12*7",
// "what's 3 plus 4 times 2" → "3+4*2", "12 x 7" → "12*7", "square root of 16"
// → "sqrt(16)", "10 divided by 4" → "10/4". The result is evalArithmetic
// input without spaces that parses (it may still fail to evaluate, e.g.
// "1/0"). ok is false when the message holds no expression with at least one
// binary operator or function call; it is conservative, so greetings, ages,
// dates ("2024-01-05"), versions ("1.2.3") and phone numbers ("555-1234")
// are not arithmetic. When several expressions qualify, the longest wins.
// Safe for concurrent use.
func findArithmetic(text string) (expr string, ok bool) {
	if len(text) > 4*calcMaxExprBytes {
		text = text[:4*calcMaxExprBytes]
	}
	if !toolMayHoldOperand(text) {
		return "", false
	}
	return findArithmeticIn(text)
}

// toolMayHoldOperand reports whether text can hold an operand of an
// expression: a digit, "π" or the letters "pi" (in any case). An expression
// needs one (FuzzFindArithmetic checks the shortcut changes no answer), and
// most chat messages have none.
func toolMayHoldOperand(text string) bool {
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case '0' <= c && c <= '9':
			return true
		case (c == 'p' || c == 'P') && i+1 < len(text) && (text[i+1] == 'i' || text[i+1] == 'I'):
			return true
		case c >= 0x80:
			return true // leave anything beyond ASCII to the full lexer
		}
	}
	return false
}

// findArithmeticIn is findArithmetic without the operand shortcut.
func findArithmeticIn(text string) (expr string, ok bool) {
	raw := toolNLLex(strings.ToLower(text))
	cue := toolNLHasMathCue(raw)
	best := 0
	for _, seg := range toolNLSegments(raw) {
		seg = toolNLTrim(seg)
		if len(seg) <= best || !toolNLPlausible(seg, cue) {
			continue
		}
		candidate := toolNLRender(seg)
		if _, err := calcParse(candidate); err != nil {
			continue
		}
		expr, ok, best = candidate, true, len(seg)
	}
	return expr, ok
}
