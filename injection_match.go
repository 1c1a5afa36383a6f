package main

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// How one rule is matched on the window of text where its first words
// stand: the window cut to the longest text the rule can match, a check for
// the words every match must contain, and only then the rule's regular
// expressions, compiled the first time they are needed.

// injLazyRegexp is a regular expression compiled the first time it is used.
// The rule table is part of the program: TestInjectionRulesCompile compiles
// every expression, so the compilation cannot fail in use.
type injLazyRegexp struct {
	expr string
	re   func() *regexp.Regexp
}

func injLazy(expr string) *injLazyRegexp {
	return &injLazyRegexp{expr: expr, re: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })}
}

// MatchString reports whether the expression matches s.
func (l *injLazyRegexp) MatchString(s string) bool { return l.re().MatchString(s) }

// matches reports whether the rule fires on a window that starts at a token.
func (r *injRule) matches(w string) bool {
	w = injCutWindow(w, r.span)
	if r.need != nil && !slices.ContainsFunc(r.need, func(s string) bool { return strings.Contains(w, s) }) {
		return false
	}
	return r.re.MatchString(w) && (r.unless == nil || !r.unless.MatchString(w))
}

// injNeeded returns strings one of which every match of the rule pattern re
// contains, taken from the last part of the pattern that has such a list
// (its first words are what the head index has matched already), or nil
// when none is known or the list would filter little (a string shorter than
// three bytes, more than 64 strings).
func injNeeded(re *syntax.Regexp) []string {
	need := injNeed(re)
	if len(need) == 0 || len(need) > 64 || slices.ContainsFunc(need, func(s string) bool { return len(s) < 3 }) {
		return nil
	}
	slices.Sort(need)
	return slices.Compact(need)
}

// injNeed returns strings one of which every match of re contains, or nil.
func injNeed(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil
		}
		return []string{string(re.Rune)}
	case syntax.OpCapture, syntax.OpPlus:
		return injNeed(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return injNeed(re.Sub[0])
		}
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			s := injNeed(sub)
			if s == nil {
				return nil
			}
			out = append(out, s...)
		}
		return out
	case syntax.OpConcat:
		for i := len(re.Sub) - 1; i >= 0; i-- {
			if s := injNeed(re.Sub[i]); s != nil {
				return s
			}
		}
	}
	return nil
}

// injCutWindow shortens a window to the first token boundary at or after
// span bytes. An anchored rule that can match at most span bytes matches the
// cut window exactly when it matches the whole one: its match lies within
// the first span bytes, and where the cut ends the window the text went on
// with a space, which "(?: |$)" accepts either way.
func injCutWindow(w string, span int) string {
	if span <= 0 || len(w) <= span {
		return w
	}
	if sp := strings.IndexByte(w[span:], ' '); sp >= 0 {
		return w[:span+sp]
	}
	return w
}

// injMaxSpan is the longest text expr can match, in bytes, capped at
// injWindow (also the answer for unbounded repetition). expr must parse.
func injMaxSpan(expr string) int {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		panic(fmt.Sprintf("injection rule %q: %v", expr, err))
	}
	return min(injSpan(re), injWindow)
}

// injSpan is the longest match of re in bytes, or more than injWindow when
// that is unbounded or larger.
func injSpan(re *syntax.Regexp) int {
	const unbounded = injWindow + 1
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				n += utf8.UTFMax // a case variant may be longer
			} else {
				n += utf8.RuneLen(r)
			}
		}
		return n
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return 0
		}
		// The widest rune is the class's last; RuneLen is -1 for a surrogate,
		// which only a 3-byte range can end on.
		if n := utf8.RuneLen(re.Rune[len(re.Rune)-1]); n > 0 {
			return n
		}
		return 3
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture, syntax.OpQuest:
		return injSpan(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n = min(n+injSpan(sub), unbounded)
		}
		return n
	case syntax.OpAlternate:
		n := 0
		for _, sub := range re.Sub {
			n = max(n, injSpan(sub))
		}
		return n
	case syntax.OpRepeat:
		if re.Max < 0 {
			return unbounded
		}
		return min(re.Max*injSpan(re.Sub[0]), unbounded)
	case syntax.OpStar, syntax.OpPlus:
		return unbounded
	}
	return 0 // empty-width assertions and empty matches
}
