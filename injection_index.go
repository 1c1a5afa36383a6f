package main

import (
	"bytes"
	"fmt"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// The detector does not run every rule at every token: that would cost
// hundreds of regular-expression calls per kilobyte. Instead it derives from
// each rule's pattern the set of "heads" a match can begin with, the first
// two tokens, and keeps them in one map. Scanning then costs one map lookup
// per token, a second one only where a token can start some rule, and a
// regular-expression call only where the first two tokens fit.

// injHeadLimit bounds the heads enumerated for one pattern; the largest rule
// families have a few thousand.
const injHeadLimit = 50000

// injSmallClass is the largest character class expanded into its characters
// when enumerating heads; larger ones ("\S") are wildcards.
const injSmallClass = 8

// injHeadSet is the result of enumerating a pattern's heads.
type injHeadSet struct {
	pairs    []string // "tok1 tok2": the rule needs exactly these two tokens
	singles  []string // "tok1": the rule may match after this token alone
	prefixes []string // the first token starts with this and then varies
}

// injPart is a partial head under construction.
type injPart struct {
	s  string
	st uint8 // injOpen, injClosed (complete) or injWild (unknown text follows)
	n  int   // tokens completed so far (token-set mode only)
}

// injWalker enumerates what a pattern can match. With k < 0 it collects
// heads (the first two tokens); with k >= 0 it collects the k-th token alone,
// forgetting earlier tokens so that the enumeration stays small.
//
// Only open partial heads travel through the walk; finished ones are parked
// in done, which keeps the work proportional to the heads still growing.
type injWalker struct {
	k    int
	done map[injPart]bool
}

// put adds p to out if it is still open, else to w.done.
func (w injWalker) put(out map[injPart]bool, p injPart) {
	if p.st == injOpen {
		out[p] = true
	} else {
		w.done[p] = true
	}
}

// run walks re from the empty head and returns every head it reaches.
func (w injWalker) run(re *syntax.Regexp) (map[injPart]bool, error) {
	open, err := w.walk(re, map[injPart]bool{{}: true})
	if err != nil {
		return nil, err
	}
	for p := range open {
		w.done[p] = true
	}
	return w.done, nil
}

const (
	injOpen uint8 = iota
	injClosed
	injWild
)

// injHeads enumerates the heads of pattern, which must parse as RE2 syntax.
func injHeads(pattern string, re *syntax.Regexp) (injHeadSet, error) {
	parts, err := injWalker{k: -1, done: make(map[injPart]bool)}.run(re)
	if err != nil {
		return injHeadSet{}, fmt.Errorf("heads of %q: %w", pattern, err)
	}
	var hs injHeadSet
	seen := make(map[string]bool)
	add := func(list *[]string, kind, s string) {
		if !seen[kind+s] {
			seen[kind+s] = true
			*list = append(*list, s)
		}
	}
	for p := range parts {
		sp := strings.IndexByte(p.s, ' ')
		switch {
		case p.s == "" || sp == 0:
			return injHeadSet{}, fmt.Errorf("pattern %q can start without a word", pattern)
		case p.st == injWild && sp < 0:
			add(&hs.prefixes, "p", p.s)
		case p.st == injWild, sp < 0:
			if sp > 0 {
				add(&hs.singles, "s", p.s[:sp])
			} else {
				add(&hs.singles, "s", p.s)
			}
		case sp == len(p.s)-1:
			add(&hs.singles, "s", p.s[:sp])
		default:
			add(&hs.pairs, "2", p.s)
		}
	}
	return hs, nil
}

// walk extends every partial head in in by the strings re can match.
func (w injWalker) walk(re *syntax.Regexp, in map[injPart]bool) (map[injPart]bool, error) {
	if len(in)+len(w.done) > injHeadLimit {
		return nil, fmt.Errorf("more than %d heads", injHeadLimit)
	}
	out := make(map[injPart]bool, len(in))
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpBeginText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return in, nil
	case syntax.OpEndLine, syntax.OpEndText:
		for p := range in {
			p.st = injClosed
			w.put(out, p)
		}
		return out, nil
	case syntax.OpLiteral:
		for p := range in {
			w.put(out, w.appendLiteral(p, re.Rune))
		}
		return out, nil
	case syntax.OpCharClass:
		var runes []rune
		for i := 0; i+1 < len(re.Rune) && len(runes) <= injSmallClass; i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1] && len(runes) <= injSmallClass; r++ {
				runes = append(runes, r)
			}
		}
		for p := range in {
			if len(runes) > injSmallClass {
				w.put(out, injWildcard(p))
				continue
			}
			for _, r := range runes {
				w.put(out, w.append(p, r))
			}
		}
		return out, nil
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		for p := range in {
			w.put(out, injWildcard(p))
		}
		return out, nil
	case syntax.OpCapture:
		return w.walk(re.Sub[0], in)
	case syntax.OpConcat:
		cur := in
		for _, sub := range re.Sub {
			next, err := w.walk(sub, cur)
			if err != nil {
				return nil, err
			}
			cur = next
		}
		return cur, nil
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			next, err := w.walk(sub, in)
			if err != nil {
				return nil, err
			}
			for p := range next {
				out[p] = true
			}
		}
		return out, nil
	case syntax.OpQuest:
		return w.repeat(re.Sub[0], in, 0, 1)
	case syntax.OpStar:
		return w.repeat(re.Sub[0], in, 0, -1)
	case syntax.OpPlus:
		return w.repeat(re.Sub[0], in, 1, -1)
	case syntax.OpRepeat:
		return w.repeat(re.Sub[0], in, re.Min, re.Max)
	}
	return nil, fmt.Errorf("unsupported operator %v", re.Op)
}

// repeat walks sub repeated between lo and hi times (hi < 0: unbounded).
// Two tokens are reached within three rounds of any sub-pattern that
// consumes text; partial heads still open after that become wildcards.
func (w injWalker) repeat(sub *syntax.Regexp, in map[injPart]bool, lo, hi int) (map[injPart]bool, error) {
	const rounds = 3
	cur := in
	out := make(map[injPart]bool)
	for k := 0; hi < 0 || k <= hi; k++ {
		if k >= lo {
			for p := range cur {
				out[p] = true
			}
		}
		if k == max(lo, rounds) {
			for p := range cur {
				w.put(out, injWildcard(p))
			}
			break
		}
		if hi >= 0 && k == hi {
			break
		}
		next, err := w.walk(sub, cur)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return out, nil
}

// append adds r to an open partial head. In head mode the second space
// closes it; in token-set mode only the k-th token is kept.
func (w injWalker) append(p injPart, r rune) injPart {
	return w.appendLiteral(p, []rune{r})
}

// appendLiteral is append for each rune of a literal in turn, building the
// new string once for the whole literal.
func (w injWalker) appendLiteral(p injPart, runes []rune) injPart {
	if p.st != injOpen {
		return p
	}
	b := []byte(p.s)
	for _, r := range runes {
		if p.st != injOpen {
			break
		}
		if w.k < 0 {
			if r == ' ' && bytes.IndexByte(b, ' ') >= 0 {
				p.st = injClosed
				break
			}
			b = utf8.AppendRune(b, r)
			continue
		}
		switch {
		case r == ' ' && p.n == w.k:
			p.st = injClosed
		case r == ' ':
			p.n++
		case p.n == w.k:
			b = utf8.AppendRune(b, r)
		}
	}
	p.s = string(b)
	return p
}

// injTokenSet returns the words pattern can have as its k-th token (counting
// from 0). It returns nil when that token is not a fixed word: a wildcard can
// reach it or a match can end before it.
func injTokenSet(pattern string, re *syntax.Regexp, k int) (map[string]bool, error) {
	parts, err := injWalker{k: k, done: make(map[injPart]bool)}.run(re)
	if err != nil {
		return nil, fmt.Errorf("token %d of %q: %w", k, pattern, err)
	}
	set := make(map[string]bool)
	for p := range parts {
		if p.st == injWild || p.n < k || p.s == "" {
			return nil, nil
		}
		set[p.s] = true
	}
	return set, nil
}

// injWildcard marks an open partial head as followed by unknown text.
func injWildcard(p injPart) injPart {
	if p.st == injOpen {
		p.st = injWild
	}
	return p
}

// injIndexEntry lists, while the detector is being built, the rules that
// can start at one token (by ids) or at one pair of tokens.
type injIndexEntry struct {
	ids   []int // rules that may match from this token on
	pairs bool  // some rule needs this token followed by a specific one
}

// injIndexBuilder collects the heads of the rules; freeze turns it into the
// injIndex the detector keeps.
type injIndexBuilder map[string]*injIndexEntry

func (x injIndexBuilder) add(key string, id int) {
	e := x[key]
	if e == nil {
		e = &injIndexEntry{}
		x[key] = e
	}
	e.ids = injAppendUnique(e.ids, id)
}

// markPairs flags the first token of key as starting some pair.
func (x injIndexBuilder) markPairs(key string) {
	first := key[:strings.IndexByte(key, ' ')]
	e := x[first]
	if e == nil {
		e = &injIndexEntry{}
		x[first] = e
	}
	e.pairs = true
}

// injIndex maps tokens and "tok1 tok2" pairs to the rules they can start.
// It is laid out for a long life in few allocations: each head's rule ids
// are a run of one shared array and its key is a piece of one string (the
// builder's ~10,000 small entries, id slices and keys would stay scattered
// among the build's garbage and keep its memory from being returned).
type injIndex struct {
	heads map[string]injIndexRun
	ids   []uint16
}

// injIndexRun is where a head's rule ids are in injIndex.ids.
type injIndexRun struct {
	off   uint32
	n     uint16
	pairs bool // some rule needs this token followed by a specific one
}

// lookup returns the rules that can start at key and whether some rule
// needs key followed by a specific token; ok is false for no head.
func (x *injIndex) lookup(key string) (ids []uint16, pairs, ok bool) {
	r, ok := x.heads[key]
	if !ok {
		return nil, false, false
	}
	return x.ids[r.off : r.off+uint32(r.n) : r.off+uint32(r.n)], r.pairs, true
}

// freeze lays the collected heads out as an injIndex.
func (x injIndexBuilder) freeze() injIndex {
	n, keyBytes := 0, 0
	for k, e := range x {
		n += len(e.ids)
		keyBytes += len(k)
	}
	out := injIndex{heads: make(map[string]injIndexRun, len(x)), ids: make([]uint16, 0, n)}
	keys := make([]byte, 0, keyBytes)
	for k, e := range x {
		// Rule ids are below 65,535 (indexHeads checks), so a head lists at
		// most 65,535 of them and all heads fewer than 2^32.
		r := injIndexRun{off: uint32(len(out.ids)), n: uint16(len(e.ids)), pairs: e.pairs}
		for _, id := range e.ids {
			out.ids = append(out.ids, uint16(id))
		}
		start := len(keys)
		keys = append(keys, k...)
		out.heads[unsafe.String(unsafe.SliceData(keys[start:]), len(k))] = r
	}
	return out
}
