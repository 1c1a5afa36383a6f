package main

import "strings"

// secretRedactAll replaces every occurrence in text of any of values
// (kinds[i] names values[i]) with "[REDACTED:<kind>]"; overlapping
// occurrences are redacted as one. It uses an Aho–Corasick automaton, so
// it runs in time linear in len(text) plus the total length of values,
// whatever the values (long periodic ones included). The values must not
// contain '[' or ']', so that a replacement never forms a new occurrence.
func secretRedactAll(text string, values, kinds []string) string {
	if len(values) == 0 {
		return text
	}
	ac := newSecretAC(values)
	type span struct{ start, end, kind int }
	var spans []span
	state := int32(0)
	for i := 0; i < len(text); i++ {
		state = ac.step(state, text[i])
		n := &ac.nodes[state]
		if n.best == 0 {
			continue
		}
		s := span{start: i + 1 - int(n.bestLen), end: i + 1, kind: int(n.best - 1)}
		// Spans arrive by end; a longer one may swallow earlier ones.
		for len(spans) > 0 && s.start < spans[len(spans)-1].end {
			last := spans[len(spans)-1]
			spans = spans[:len(spans)-1]
			if last.start < s.start {
				s.start, s.kind = last.start, last.kind
			}
		}
		spans = append(spans, s)
	}
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, s := range spans {
		b.WriteString(text[last:s.start])
		b.WriteString("[REDACTED:" + kinds[s.kind] + "]")
		last = s.end
	}
	b.WriteString(text[last:])
	return b.String()
}

// secretAC is an Aho–Corasick automaton over byte strings.
type secretAC struct {
	nodes []secretACNode // nodes[0] is the root
	root  [256]int32     // the root's edges by byte (-1: none), for speed
}

type secretACNode struct {
	edges []secretACEdge // trie edges
	fail  int32          // longest proper suffix that is a trie node
	// best is 1 + the index of the longest value that is a suffix of this
	// node's string (0: none), bestLen its length.
	best, bestLen int32
}

type secretACEdge struct {
	c  byte
	to int32
}

func (a *secretAC) child(n int32, c byte) int32 {
	if n == 0 {
		return a.root[c]
	}
	for _, e := range a.nodes[n].edges {
		if e.c == c {
			return e.to
		}
	}
	return -1
}

func newSecretAC(values []string) *secretAC {
	a := &secretAC{nodes: make([]secretACNode, 1, 64)}
	for i := range a.root {
		a.root[i] = -1
	}
	for vi, v := range values {
		n := int32(0)
		for i := 0; i < len(v); i++ {
			next := a.child(n, v[i])
			if next < 0 {
				next = int32(len(a.nodes))
				a.nodes = append(a.nodes, secretACNode{})
				a.nodes[n].edges = append(a.nodes[n].edges, secretACEdge{c: v[i], to: next})
				if n == 0 {
					a.root[v[i]] = next
				}
			}
			n = next
		}
		if a.nodes[n].best == 0 {
			a.nodes[n].best, a.nodes[n].bestLen = int32(vi+1), int32(len(v))
		}
	}
	// Breadth-first: a node's failure link and best value come from
	// shallower nodes.
	queue := make([]int32, 0, len(a.nodes))
	for _, e := range a.nodes[0].edges {
		queue = append(queue, e.to)
	}
	for qi := 0; qi < len(queue); qi++ {
		u := queue[qi]
		if a.nodes[u].best == 0 {
			f := a.nodes[u].fail
			a.nodes[u].best, a.nodes[u].bestLen = a.nodes[f].best, a.nodes[f].bestLen
		}
		for _, e := range a.nodes[u].edges {
			f := a.nodes[u].fail
			for f != 0 && a.child(f, e.c) < 0 {
				f = a.nodes[f].fail
			}
			if t := a.child(f, e.c); t >= 0 && t != e.to {
				a.nodes[e.to].fail = t
			}
			queue = append(queue, e.to)
		}
	}
	return a
}

// step returns the state after reading c in state n.
func (a *secretAC) step(n int32, c byte) int32 {
	for {
		if t := a.child(n, c); t >= 0 {
			return t
		}
		if n == 0 {
			return 0
		}
		n = a.nodes[n].fail
	}
}
