package main

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"regexp/syntax"
	"slices"
	"sort"
	"testing"
)

// injDevRow is one labelled row of shared/data/injection/dev.jsonl.
type injDevRow struct {
	Text   string `json:"text"`
	Label  int    `json:"label"`
	Source string `json:"source"`
}

// injLoadDevSet reads the development set from the repository layout
// (../shared) or the scratch layout (../../shared). A missing file fails.
func injLoadDevSet(t testing.TB) []injDevRow {
	t.Helper()
	var f *os.File
	var err error
	for _, p := range []string{"../shared/data/injection/dev.jsonl", "../../shared/data/injection/dev.jsonl"} {
		if f, err = os.Open(p); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("open dev set: %v", err)
	}
	defer f.Close()
	var rows []injDevRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<22)
	for sc.Scan() {
		var r injDevRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("dev set line %d: %v", len(rows)+1, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read dev set: %v", err)
	}
	if len(rows) == 0 {
		t.Fatal("dev set is empty")
	}
	return rows
}

// injSplit splits rows into a tuning part and a 30% held-out part with a
// fixed seed, so tuning on one part can be checked on the other.
func injSplit(rows []injDevRow) (tune, held []injDevRow) {
	rng := rand.New(rand.NewPCG(20240601, 7))
	for _, r := range rows {
		if rng.Float64() < 0.3 {
			held = append(held, r)
		} else {
			tune = append(tune, r)
		}
	}
	return tune, held
}

// injCounts is a confusion matrix.
type injCounts struct{ tp, fp, tn, fn int }

func (c injCounts) precision() float64 {
	if c.tp+c.fp == 0 {
		return 1
	}
	return float64(c.tp) / float64(c.tp+c.fp)
}

func (c injCounts) recall() float64 {
	if c.tp+c.fn == 0 {
		return 1
	}
	return float64(c.tp) / float64(c.tp+c.fn)
}

func (c injCounts) fpr() float64 {
	if c.fp+c.tn == 0 {
		return 0
	}
	return float64(c.fp) / float64(c.fp+c.tn)
}

// injEvaluate scores rows per source.
func injEvaluate(d *InjectionDetector, rows []injDevRow) map[string]injCounts {
	out := make(map[string]injCounts)
	for _, r := range rows {
		c := out[r.Source]
		got := d.Scan(r.Text).Injection
		switch {
		case got && r.Label == 1:
			c.tp++
		case got:
			c.fp++
		case r.Label == 1:
			c.fn++
		default:
			c.tn++
		}
		out[r.Source] = c
	}
	return out
}

func injLogCounts(t *testing.T, name string, m map[string]injCounts) {
	t.Helper()
	var srcs []string
	for s := range m {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, s := range srcs {
		c := m[s]
		t.Logf("%-8s %-40s precision=%.3f recall=%.3f fpr=%.3f (tp=%d fp=%d tn=%d fn=%d)",
			name, s, c.precision(), c.recall(), c.fpr(), c.tp, c.fp, c.tn, c.fn)
	}
}

const (
	injSrcDeepset   = "deepset/prompt-injections:train"
	injSrcJackhhao  = "jackhhao/jailbreak-classification:train"
	injSrcNotInject = "NotInject"
)

// TestInjectionDevSet measures the detector on the labelled development set
// and enforces the quality floors.
func TestInjectionDevSet(t *testing.T) {
	rows := injLoadDevSet(t)
	d := newInjectionDetector()
	all := injEvaluate(d, rows)
	injLogCounts(t, "all", all)
	tune, held := injSplit(rows)
	injLogCounts(t, "tune70", injEvaluate(d, tune))
	injLogCounts(t, "held30", injEvaluate(d, held))

	for _, src := range []string{injSrcDeepset, injSrcJackhhao, injSrcNotInject} {
		if _, ok := all[src]; !ok {
			t.Fatalf("dev set has no rows from %q", src)
		}
	}
	floors := []struct {
		src     string
		metric  string
		got     float64
		want    float64
		atLeast bool
	}{
		{injSrcDeepset, "precision", all[injSrcDeepset].precision(), 0.90, true},
		{injSrcJackhhao, "precision", all[injSrcJackhhao].precision(), 0.90, true},
		{injSrcDeepset, "recall", all[injSrcDeepset].recall(), 0.60, true},
		{injSrcJackhhao, "recall", all[injSrcJackhhao].recall(), 0.85, true},
		{injSrcNotInject, "fpr", all[injSrcNotInject].fpr(), 0.10, false},
	}
	for _, f := range floors {
		if f.atLeast && f.got < f.want {
			t.Errorf("%s %s = %.3f; want >= %.2f", f.src, f.metric, f.got, f.want)
		}
		if !f.atLeast && f.got > f.want {
			t.Errorf("%s %s = %.3f; want <= %.2f", f.src, f.metric, f.got, f.want)
		}
	}
}

// TestInjectionNormalizationAblation logs each optional normalisation step's
// marginal effect: the detector with that one step switched off, compared to
// all steps on. The false-positive side is measured as the rate of benign
// rows flagged and, more finely, as the mean score and the share of benign
// rows with any signal; the other side as recall over injections.
func TestInjectionNormalizationAblation(t *testing.T) {
	rows := injLoadDevSet(t)
	type rates struct{ fpr, benignScore, benignSignal, recall float64 }
	measure := func(d *InjectionDetector) rates {
		var r rates
		var benign, attacks, flagged, caught, signalled int
		for _, row := range rows {
			v := d.Scan(row.Text)
			if row.Label == 1 {
				attacks++
				if v.Injection {
					caught++
				}
				continue
			}
			benign++
			r.benignScore += v.Score
			if v.Injection {
				flagged++
			}
			if len(v.Signals) > 0 {
				signalled++
			}
		}
		r.fpr = float64(flagged) / float64(benign)
		r.benignScore /= float64(benign)
		r.benignSignal = float64(signalled) / float64(benign)
		r.recall = float64(caught) / float64(attacks)
		return r
	}
	base := measure(newInjectionDetector())
	t.Logf("all steps on: fpr=%.4f mean benign score=%.4f benign rows with a signal=%.4f recall=%.4f",
		base.fpr, base.benignScore, base.benignSignal, base.recall)
	steps := []struct {
		name string
		off  func(*normOptions)
	}{
		{"strip_invisible", func(o *normOptions) { o.stripInvisible = false }},
		{"fold_width", func(o *normOptions) { o.foldWidth = false }},
		{"map_homoglyphs", func(o *normOptions) { o.mapHomoglyphs = false }},
		{"join_spaced", func(o *normOptions) { o.joinSpaced = false }},
		{"leetspeak", func(o *normOptions) { o.leetspeak = false }},
		{"decode", func(o *normOptions) { o.decode = false }},
	}
	for _, s := range steps {
		o := normAllOptions()
		s.off(&o)
		r := measure(injNewDetector(o))
		t.Logf("step %-15s FPR cost %+.4f, mean benign score cost %+.4f, benign-signal cost %+.4f, recall gain %+.4f",
			s.name, base.fpr-r.fpr, base.benignScore-r.benignScore, base.benignSignal-r.benignSignal, base.recall-r.recall)
	}
}

// TestInjectionWindowCutChangesNothing: matching a rule on its window cut to
// the rule's longest match (injCutWindow) gives the same answer as the whole
// window, for every rule the head index proposes at every token of every
// development-set message, and of the same messages with their words
// repeated (long windows).
func TestInjectionWindowCutChangesNothing(t *testing.T) {
	d := sharedDetector()
	checked := 0
	for _, row := range injLoadDevSet(t) {
		for _, text := range []string{row.Text, row.Text + " " + row.Text} {
			v := normalize(text, d.opts).words
			for i := 0; i < len(v); {
				end := injTokenEnd(v, i)
				var ids []uint16
				if first, _, ok := d.index.lookup(v[i:end]); ok {
					ids = append(ids, first...)
					if end < len(v) {
						if pair, _, ok := d.index.lookup(v[i:injTokenEnd(v, end+1)]); ok {
							ids = append(ids, pair...)
						}
					}
				}
				w := injWindowAt(v, i)
				for _, id := range ids {
					r := &d.rules[id]
					whole := r.re.MatchString(w) && (r.unless == nil || !r.unless.MatchString(w))
					if got := r.matches(w); got != whole {
						t.Fatalf("rule %d (%s) at %q: cut window says %v, whole window %v (span %d)", id, r.signal, w, got, whole, r.span)
					}
					checked++
				}
				i = end + 1
			}
		}
	}
	if checked < 1000 {
		t.Errorf("only %d rule evaluations checked", checked)
	}
}

// TestInjectionSpans: the longest match of an expression, as injMaxSpan
// computes it.
func TestInjectionSpans(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want int
	}{
		{`^abc(?: |$)`, 4},
		{`^(?:ab|cdef) x`, 6},
		{`^(?:a ){0,3}b`, 7},
		{`^é`, 2},
		{`^[a-z]`, 1},
		{`^\S+`, injWindow},
		{`^(?:a){0,1000}`, injWindow},
		{`^x?y`, 2},
		{`^[\x{800}-\x{DFFF}]`, 3}, // a class ending on a surrogate
		{`^[^a]`, 4},
	} {
		if got := injMaxSpan(tt.expr); got != tt.want {
			t.Errorf("injMaxSpan(%q) = %d; want %d", tt.expr, got, tt.want)
		}
	}
}

// TestInjectionNeeded: the strings one of which every match must contain.
func TestInjectionNeeded(t *testing.T) {
	for _, tt := range []struct {
		pattern string
		want    []string // nil: no filter
	}{
		{`show (?:me )?(?:your|the) (?:prompt|rules)(?: |$)`, []string{"prompt", "rules"}},
		{`ignore (?:all )?(?:previous|prior) instructions`, []string{" instructions"}},
		{`act as (?:a|an) \S+`, nil},                    // ends in a wildcard, then "a"/"an" are too short
		{`you are (?:now|free)?`, []string{"you are "}}, // the optional tail is skipped
		{`(?i)ignore everything`, nil},
	} {
		re, err := syntax.Parse(tt.pattern, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := injNeeded(re.Simplify()); !slices.Equal(got, tt.want) {
			t.Errorf("injNeeded(%q) = %q; want %q", tt.pattern, got, tt.want)
		}
	}
	n := 0
	for _, r := range sharedDetector().rules {
		if r.need != nil {
			n++
		}
	}
	if n < 20 {
		t.Errorf("only %d rules have a literal prefilter", n)
	}
}
