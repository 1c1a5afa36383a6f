package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// calcMaxExprBytes bounds the calculator's input: anything a person or a model
// would ask fits easily, and the bound keeps parse time and memory trivial.
const calcMaxExprBytes = 1024

// calcMaxDepth bounds parenthesis, function-call, unary and power nesting so a
// hostile expression cannot drive the recursive-descent parser into deep
// recursion.
const calcMaxDepth = 64

// calcTokKind is the kind of one lexical token of an arithmetic expression.
type calcTokKind int

const (
	calcTokEnd calcTokKind = iota
	calcTokNum
	calcTokIdent
	calcTokOp // one of + - * / % ^
	calcTokLParen
	calcTokRParen
	calcTokComma
)

// calcToken is one lexical token; pos is its 1-based character position and
// text its source spelling (for messages).
type calcToken struct {
	kind calcTokKind
	op   byte
	num  float64
	text string
	pos  int
}

// calcLex splits expr into tokens. Operators ×, ÷ and − are read as *, / and
// -, ** as ^, and π as pi. Identifiers are folded to lower case.
func calcLex(expr string) ([]calcToken, error) {
	toks := make([]calcToken, 0, len(expr)/2+2) // a guess; append grows it when needed
	pos := 0                                    // characters consumed so far
	for i := 0; i < len(expr); {
		r, size := utf8.DecodeRuneInString(expr[i:])
		pos++
		start, startPos := i, pos
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			i += size
		case r >= '0' && r <= '9' || r == '.':
			n := calcNumberLen(expr[i:])
			if n == 0 {
				return nil, fmt.Errorf("unexpected %q at position %d", string(r), startPos)
			}
			text := expr[i : i+n]
			v, err := strconv.ParseFloat(text, 64)
			if err != nil {
				if errors.Is(err, strconv.ErrRange) && !math.IsInf(v, 0) {
					v = 0 // underflow to zero is harmless
				} else {
					return nil, fmt.Errorf("number %q at position %d is out of range", text, startPos)
				}
			}
			toks = append(toks, calcToken{kind: calcTokNum, num: v, text: text, pos: startPos})
			i += n
			pos += n - 1
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_':
			j := i + 1
			for j < len(expr) && calcIsIdentByte(expr[j]) {
				j++
			}
			text := strings.ToLower(expr[i:j])
			toks = append(toks, calcToken{kind: calcTokIdent, text: text, pos: startPos})
			pos += j - i - 1
			i = j
		case r == 'π':
			toks = append(toks, calcToken{kind: calcTokIdent, text: "pi", pos: startPos})
			i += size
		case r == '*' && strings.HasPrefix(expr[i:], "**"):
			toks = append(toks, calcToken{kind: calcTokOp, op: '^', text: "**", pos: startPos})
			i += 2
			pos++
		case r == '+' || r == '-' || r == '*' || r == '/' || r == '%' || r == '^':
			toks = append(toks, calcToken{kind: calcTokOp, op: byte(r), text: string(r), pos: startPos})
			i += size
		case r == '×' || r == '÷' || r == '−':
			toks = append(toks, calcToken{kind: calcTokOp, op: calcUnicodeOp(r), text: string(r), pos: startPos})
			i += size
		case r == '(':
			toks = append(toks, calcToken{kind: calcTokLParen, text: "(", pos: startPos})
			i += size
		case r == ')':
			toks = append(toks, calcToken{kind: calcTokRParen, text: ")", pos: startPos})
			i += size
		case r == ',':
			toks = append(toks, calcToken{kind: calcTokComma, text: ",", pos: startPos})
			i += size
		default:
			return nil, fmt.Errorf("unexpected %q at position %d", expr[start:start+size], startPos)
		}
	}
	toks = append(toks, calcToken{kind: calcTokEnd, pos: pos + 1})
	return toks, nil
}

// calcNumberLen returns the length of the number literal at the start of s:
// digits with an optional fraction (".5" and "5." both count) and an optional
// exponent that is taken only when digits follow it. 0 means no number.
func calcNumberLen(s string) int {
	i, digits := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			i = j
		}
	}
	return i
}

// calcUnicodeOp maps the typographic operators ×, ÷ and − to their ASCII form.
func calcUnicodeOp(r rune) byte {
	switch r {
	case '×':
		return '*'
	case '÷':
		return '/'
	}
	return '-'
}

func calcIsIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// calcNodeKind is the kind of one node of a parsed expression.
type calcNodeKind int

const (
	calcNodeNum calcNodeKind = iota
	calcNodeNeg
	calcNodeBinary
	calcNodeCall
)

// calcNode is one node of a parsed expression tree.
type calcNode struct {
	kind calcNodeKind
	val  float64 // calcNodeNum
	op   byte    // calcNodeBinary
	name string  // calcNodeCall
	args []*calcNode
}

// calcFuncArity returns the argument count bounds of the built-in function
// called name; max < 0 means unbounded.
func calcFuncArity(name string) (minArgs, maxArgs int, ok bool) {
	switch name {
	case "sqrt", "abs", "round", "floor", "ceil", "exp", "sin", "cos", "tan", "ln", "log", "log2":
		return 1, 1, true
	case "min", "max":
		return 1, -1, true
	case "pow":
		return 2, 2, true
	}
	return 0, 0, false
}

// calcApply applies the built-in function name to arguments whose count
// calcFuncArity has admitted.
func calcApply(name string, a []float64) (float64, error) {
	switch name {
	case "sqrt":
		if a[0] < 0 {
			return 0, errors.New("square root of a negative number")
		}
		return math.Sqrt(a[0]), nil
	case "abs":
		return math.Abs(a[0]), nil
	case "round":
		return math.Round(a[0]), nil
	case "floor":
		return math.Floor(a[0]), nil
	case "ceil":
		return math.Ceil(a[0]), nil
	case "exp":
		return math.Exp(a[0]), nil
	case "sin":
		return math.Sin(a[0]), nil
	case "cos":
		return math.Cos(a[0]), nil
	case "tan":
		return math.Tan(a[0]), nil
	case "ln", "log", "log2":
		if a[0] <= 0 {
			return 0, errors.New("logarithm of a non-positive number")
		}
		switch name {
		case "ln":
			return math.Log(a[0]), nil
		case "log":
			return math.Log10(a[0]), nil
		}
		return math.Log2(a[0]), nil
	case "min":
		return slices.Min(a), nil
	case "max":
		return slices.Max(a), nil
	case "pow":
		return calcPow(a[0], a[1])
	}
	return 0, fmt.Errorf("unknown function %q", name)
}

// calcConstant returns the value of the named constant.
func calcConstant(name string) (float64, bool) {
	switch name {
	case "pi":
		return math.Pi, true
	case "e":
		return math.E, true
	}
	return 0, false
}

// calcParser is a recursive-descent parser over a token slice. Grammar, loosest
// first:
//
//	expr    = term { ("+" | "-") term }
//	term    = unary { ("*" | "/" | "%") unary }
//	unary   = ("+" | "-") unary | power
//	power   = primary [ "^" unary ]          (right-associative; -2^2 = -(2^2))
//	primary = number | constant | name "(" expr { "," expr } ")" | "(" expr ")"
type calcParser struct {
	toks  []calcToken
	i     int
	depth int
}

func (p *calcParser) peek() calcToken { return p.toks[p.i] }

func (p *calcParser) next() calcToken {
	t := p.toks[p.i]
	if t.kind != calcTokEnd {
		p.i++
	}
	return t
}

// enter counts one nesting level; every successful enter is paired with leave.
func (p *calcParser) enter() error {
	p.depth++
	if p.depth > calcMaxDepth {
		return fmt.Errorf("expression is nested deeper than %d levels", calcMaxDepth)
	}
	return nil
}

func (p *calcParser) leave() { p.depth-- }

func calcUnexpected(t calcToken) error {
	switch t.kind {
	case calcTokEnd:
		return errors.New("unexpected end of expression")
	}
	return fmt.Errorf("unexpected %q at position %d", t.text, t.pos)
}

func (p *calcParser) parseExpr() (*calcNode, error) {
	left, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.kind == calcTokOp && (t.op == '+' || t.op == '-'); t = p.peek() {
		p.next()
		right, err := p.parseTerm()
		if err != nil {
			return nil, err
		}
		left = &calcNode{kind: calcNodeBinary, op: t.op, args: []*calcNode{left, right}}
	}
	return left, nil
}

func (p *calcParser) parseTerm() (*calcNode, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.kind == calcTokOp && (t.op == '*' || t.op == '/' || t.op == '%'); t = p.peek() {
		p.next()
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		left = &calcNode{kind: calcNodeBinary, op: t.op, args: []*calcNode{left, right}}
	}
	return left, nil
}

func (p *calcParser) parseUnary() (*calcNode, error) {
	t := p.peek()
	if t.kind != calcTokOp || (t.op != '-' && t.op != '+') {
		return p.parsePower()
	}
	p.next()
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	operand, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	if t.op == '+' {
		return operand, nil
	}
	return &calcNode{kind: calcNodeNeg, args: []*calcNode{operand}}, nil
}

func (p *calcParser) parsePower() (*calcNode, error) {
	base, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != calcTokOp || t.op != '^' {
		return base, nil
	}
	p.next()
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	exp, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	return &calcNode{kind: calcNodeBinary, op: '^', args: []*calcNode{base, exp}}, nil
}

func (p *calcParser) parsePrimary() (*calcNode, error) {
	t := p.next()
	switch t.kind {
	case calcTokNum:
		return &calcNode{kind: calcNodeNum, val: t.num}, nil
	case calcTokLParen:
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		inner, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if p.peek().kind != calcTokRParen {
			if p.peek().kind == calcTokEnd {
				return nil, fmt.Errorf("unclosed \"(\" at position %d", t.pos)
			}
			return nil, calcUnexpected(p.peek())
		}
		p.next()
		return inner, nil
	case calcTokIdent:
		return p.parseIdent(t)
	}
	return nil, calcUnexpected(t)
}

func (p *calcParser) parseIdent(t calcToken) (*calcNode, error) {
	called := p.peek().kind == calcTokLParen
	if v, ok := calcConstant(t.text); ok {
		if called {
			return nil, fmt.Errorf("%s is a constant, not a function", t.text)
		}
		return &calcNode{kind: calcNodeNum, val: v}, nil
	}
	minArgs, maxArgs, ok := calcFuncArity(t.text)
	if !ok {
		return nil, fmt.Errorf("unknown identifier %q at position %d", t.text, t.pos)
	}
	if !called {
		return nil, fmt.Errorf("function %s must be called with parentheses, e.g. %s(2)", t.text, t.text)
	}
	open := p.next()
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	var args []*calcNode
	if p.peek().kind != calcTokRParen {
		for {
			arg, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			args = append(args, arg)
			if p.peek().kind != calcTokComma {
				break
			}
			p.next()
		}
	}
	switch p.peek().kind {
	case calcTokRParen:
		p.next()
	case calcTokEnd:
		return nil, fmt.Errorf("unclosed \"(\" at position %d", open.pos)
	default:
		return nil, calcUnexpected(p.peek())
	}
	if err := calcCheckArity(t.text, minArgs, maxArgs, len(args)); err != nil {
		return nil, err
	}
	return &calcNode{kind: calcNodeCall, name: t.text, args: args}, nil
}

func calcCheckArity(name string, minArgs, maxArgs, n int) error {
	plural := func(k int) string {
		if k == 1 {
			return "argument"
		}
		return "arguments"
	}
	switch {
	case maxArgs < 0 && n < minArgs:
		return fmt.Errorf("%s takes at least %d %s, got %d", name, minArgs, plural(minArgs), n)
	case maxArgs >= 0 && (n < minArgs || n > maxArgs):
		return fmt.Errorf("%s takes %d %s, got %d", name, minArgs, plural(minArgs), n)
	}
	return nil
}

// calcParse parses expr into a tree without evaluating it. Its errors are the
// syntax errors of evalArithmetic.
func calcParse(expr string) (*calcNode, error) {
	if len(expr) > calcMaxExprBytes {
		return nil, fmt.Errorf("expression is longer than %d bytes", calcMaxExprBytes)
	}
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("empty expression")
	}
	toks, err := calcLex(expr)
	if err != nil {
		return nil, err
	}
	p := &calcParser{toks: toks}
	root, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	switch t.kind {
	case calcTokEnd:
		return root, nil
	case calcTokRParen:
		return nil, fmt.Errorf("unmatched \")\" at position %d", t.pos)
	case calcTokLParen:
		return nil, fmt.Errorf("unexpected \"(\" at position %d (use * to multiply)", t.pos)
	case calcTokIdent:
		if t.text == "x" {
			return nil, fmt.Errorf("unexpected \"x\" at position %d (use * to multiply)", t.pos)
		}
	}
	return nil, calcUnexpected(t)
}

// calcEval evaluates a parsed tree. Every intermediate result must be finite.
func calcEval(n *calcNode) (float64, error) {
	var v float64
	switch n.kind {
	case calcNodeNum:
		return n.val, nil
	case calcNodeNeg:
		x, err := calcEval(n.args[0])
		if err != nil {
			return 0, err
		}
		v = -x
	case calcNodeBinary:
		a, err := calcEval(n.args[0])
		if err != nil {
			return 0, err
		}
		b, err := calcEval(n.args[1])
		if err != nil {
			return 0, err
		}
		if v, err = calcBinary(n.op, a, b); err != nil {
			return 0, err
		}
	case calcNodeCall:
		var buf [4]float64
		args := buf[:0]
		for _, a := range n.args {
			x, err := calcEval(a)
			if err != nil {
				return 0, err
			}
			args = append(args, x)
		}
		x, err := calcApply(n.name, args)
		if err != nil {
			return 0, err
		}
		v = x
	}
	return calcFinite(v)
}

func calcBinary(op byte, a, b float64) (float64, error) {
	switch op {
	case '+':
		return a + b, nil
	case '-':
		return a - b, nil
	case '*':
		return a * b, nil
	case '/':
		if b == 0 {
			return 0, errors.New("division by zero")
		}
		return a / b, nil
	case '%':
		if b == 0 {
			return 0, errors.New("modulo by zero")
		}
		return math.Mod(a, b), nil
	case '^':
		return calcPow(a, b)
	}
	return 0, fmt.Errorf("unknown operator %q", op)
}

func calcPow(a, b float64) (float64, error) {
	if a == 0 && b < 0 {
		return 0, errors.New("division by zero")
	}
	return math.Pow(a, b), nil
}

func calcFinite(v float64) (float64, error) {
	switch {
	case math.IsNaN(v):
		return 0, errors.New("result is undefined (not a real number)")
	case math.IsInf(v, 0):
		return 0, errors.New("result is not a finite number (overflow)")
	}
	return v, nil
}

// evalArithmetic evaluates an arithmetic expression and returns its value.
//
// It accepts decimal numbers (".5", "1e3"), the operators + - * / % ^ (also ×,
// ÷, − and ** for power), parentheses, unary minus and plus (binding looser
// than ^, so -2^2 is -4), right-associative ^, the constants pi and e, and the
// functions sqrt, abs, round, floor, ceil, ln, log (base 10), log2, exp, sin,
// cos, tan (radians), min and max (one or more arguments) and pow(a, b).
// Names are case-insensitive. Errors are plain sentences meant for a model or
// a person (division by zero, unknown identifier, unexpected characters with
// their 1-based position, overflow, …); evalArithmetic never panics. Input is
// limited to 1024 bytes and 64 nesting levels. Safe for concurrent use.
func evalArithmetic(expr string) (float64, error) {
	root, err := calcParse(expr)
	if err != nil {
		return 0, err
	}
	return calcEval(root)
}
