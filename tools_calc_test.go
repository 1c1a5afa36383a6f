package main

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestEvalArithmetic(t *testing.T) {
	tests := []struct {
		expr string
		want float64
	}{
		// numbers
		{"12*7", 84},
		{"42", 42},
		{"3.25", 3.25},
		{".5", 0.5},
		{"5.", 5},
		{"1e3", 1000},
		{"1.5E-2", 0.015},
		{"2e+2", 200},
		{"1e-400", 0},
		// precedence and associativity
		{"3+4*2", 11},
		{"(3+4)*2", 14},
		{"10-4-3", 3},
		{"100/10/5", 2},
		{"2*3%4", 2},
		{"7%3", 1},
		{"-7%3", -1},
		{"5.5%2", 1.5},
		{"2^3^2", 512},
		{"(2^3)^2", 64},
		{"2**10", 1024},
		{"2*3^2", 18},
		{"10/4", 2.5},
		// unary
		{"-2^2", -4},
		{"(-2)^2", 4},
		{"2^-1", 0.5},
		{"--3", 3},
		{"+3", 3},
		{"-+-3", 3},
		{"2*-3", -6},
		{"2--3", 5},
		{"-(2+3)", -5},
		// typographic operators
		{"3 × 4", 12},
		{"9 ÷ 3", 3},
		{"5 − 2", 3},
		// whitespace
		{"  1 +\t2\n* 3  ", 7},
		{"( 1 + 2 ) * 3", 9},
		// constants
		{"pi", math.Pi},
		{"e", math.E},
		{"2*PI", 2 * math.Pi},
		{"π", math.Pi},
		// functions
		{"sqrt(16)", 4},
		{"SQRT(2)", math.Sqrt2},
		{"abs(-3.5)", 3.5},
		{"round(2.5)", 3},
		{"round(-2.5)", -3},
		{"floor(-1.5)", -2},
		{"ceil(1.2)", 2},
		{"ln(e)", 1},
		{"log(1000)", 3},
		{"log2(8)", 3},
		{"exp(0)", 1},
		{"sin(0)", 0},
		{"cos(pi)", -1},
		{"tan(0)", 0},
		{"min(3, 1, 2)", 1},
		{"max(3, 1, 2)", 3},
		{"max(4)", 4},
		{"pow(2, 10)", 1024},
		{"sqrt(3^2 + 4^2)", 5},
		{"max(1, min(5, 3)) * 2", 6},
		{"0^0", 1},
		{"0.1+0.2", 0.30000000000000004},
	}
	for _, tt := range tests {
		got, err := evalArithmetic(tt.expr)
		if err != nil {
			t.Errorf("evalArithmetic(%q) error %v; want %v", tt.expr, err, tt.want)
			continue
		}
		if !calcClose(got, tt.want) {
			t.Errorf("evalArithmetic(%q) = %v; want %v", tt.expr, got, tt.want)
		}
	}
}

// calcClose compares with a tiny relative tolerance so transcendental
// functions may differ in the last bit across platforms.
func calcClose(got, want float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= 1e-12*math.Max(1, math.Abs(want))
}

func TestEvalArithmeticErrors(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("(", n) + "1" + strings.Repeat(")", n) }
	tests := []struct {
		expr string
		want string // exact error message
	}{
		{"1/0", "division by zero"},
		{"1/(2-2)", "division by zero"},
		{"0^-1", "division by zero"},
		{"5%0", "modulo by zero"},
		{"sqrt(-1)", "square root of a negative number"},
		{"log(0)", "logarithm of a non-positive number"},
		{"ln(-1)", "logarithm of a non-positive number"},
		{"log2(0)", "logarithm of a non-positive number"},
		{"1e308*10", "result is not a finite number (overflow)"},
		{"exp(1000)", "result is not a finite number (overflow)"},
		{"10^400", "result is not a finite number (overflow)"},
		{"(-8)^(1/3)", "result is undefined (not a real number)"},
		{"1e400", `number "1e400" at position 1 is out of range`},
		{"foo", `unknown identifier "foo" at position 1`},
		{"2 + x", `unknown identifier "x" at position 5`},
		{"12 x 7", `unexpected "x" at position 4 (use * to multiply)`},
		{"2(3)", `unexpected "(" at position 2 (use * to multiply)`},
		{"2 pi", `unexpected "pi" at position 3`},
		{"sqrt", "function sqrt must be called with parentheses, e.g. sqrt(2)"},
		{"pi(2)", "pi is a constant, not a function"},
		{"(1+2", `unclosed "(" at position 1`},
		{"sqrt(2", `unclosed "(" at position 5`},
		{"(1+2))", `unmatched ")" at position 6`},
		{")", `unexpected ")" at position 1`},
		{"()", `unexpected ")" at position 2`},
		{"", "empty expression"},
		{"   ", "empty expression"},
		{"12*7?", `unexpected "?" at position 5`},
		{"2 3", `unexpected "3" at position 3`},
		{"1.2.3", `unexpected ".3" at position 4`},
		{"2 +", "unexpected end of expression"},
		{"*2", `unexpected "*" at position 1`},
		{"1,2", `unexpected "," at position 2`},
		{"2 $ 3", `unexpected "$" at position 3`},
		{"é+1", `unexpected "é" at position 1`},
		{"1 + é?", `unexpected "é" at position 5`},
		{".", `unexpected "." at position 1`},
		{"\xff", `unexpected "\xff" at position 1`},
		{"sqrt(1, 2)", "sqrt takes 1 argument, got 2"},
		{"sqrt()", "sqrt takes 1 argument, got 0"},
		{"pow(2)", "pow takes 2 arguments, got 1"},
		{"min()", "min takes at least 1 argument, got 0"},
		{"pow(1,)", `unexpected ")" at position 7`},
		{strings.Repeat("1+", 512) + "1", "expression is longer than 1024 bytes"},
		{deep(65), "expression is nested deeper than 64 levels"},
		{strings.Repeat("-", 65) + "1", "expression is nested deeper than 64 levels"},
		{strings.Repeat("2^", 65) + "1", "expression is nested deeper than 64 levels"},
		{strings.Repeat("sqrt(", 65) + "1" + strings.Repeat(")", 65), "expression is nested deeper than 64 levels"},
	}
	for _, tt := range tests {
		got, err := evalArithmetic(tt.expr)
		if err == nil {
			t.Errorf("evalArithmetic(%q) = %v; want error %q", tt.expr, got, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("evalArithmetic(%q) error %q; want %q", tt.expr, err, tt.want)
		}
	}
}

func TestEvalArithmeticLimits(t *testing.T) {
	deep := strings.Repeat("(", 64) + "1" + strings.Repeat(")", 64)
	if got, err := evalArithmetic(deep); err != nil || got != 1 {
		t.Errorf("evalArithmetic(64 nested parentheses) = %v, %v; want 1, nil", got, err)
	}
	// Exactly 1024 bytes: 511 "1+" pairs, then "1" and a space.
	long := strings.Repeat("1+", 511) + "1 "
	if len(long) != 1024 {
		t.Fatalf("test setup: len = %d", len(long))
	}
	if got, err := evalArithmetic(long); err != nil || got != 512 {
		t.Errorf("evalArithmetic(1024-byte sum) = %v, %v; want 512, nil", got, err)
	}
}

func FuzzEvalArithmetic(f *testing.F) {
	for _, seed := range []string{
		"12*7", "-2^2", "2^3^2", "(1+2)*3", "sqrt(16)", "max(1,2,3)", "pow(2,0.5)", "1/0",
		"1e308*1e308", ".5e-3", "log(-1)", "((((1))))", "--1", "pi*e", "3 × 4 ÷ 2", "2**-2",
		"min(", "1..2", "sin(cos(tan(1)))", "exp(709)", "5%0.3", "", "\xff", "round(-0.5)",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		got, err := evalArithmetic(expr)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("evalArithmetic(%q) returned an empty error", expr)
			}
			return
		}
		if math.IsNaN(got) || math.IsInf(got, 0) {
			t.Errorf("evalArithmetic(%q) = %v; want a finite result", expr, got)
		}
		if len(expr) > calcMaxExprBytes {
			t.Errorf("evalArithmetic accepted %d bytes; limit %d", len(expr), calcMaxExprBytes)
		}
		s := formatNumber(got)
		back, perr := strconv.ParseFloat(s, 64)
		if perr != nil || back != got && !(got == 0 && back == 0) {
			t.Errorf("formatNumber(%v) = %q reads back as %v, %v", got, s, back, perr)
		}
	})
}

func BenchmarkEvalArithmetic(b *testing.B) {
	exprs := []string{
		"12*7",
		"(2 + 3)^2 / 4 - sqrt(16) * max(1, 2, 3)",
		"sin(pi/4)^2 + cos(pi/4)^2 + log(1000) + ln(e^2) - round(2.5) % 3",
	}
	for _, expr := range exprs {
		b.Run(strconv.Itoa(len(expr)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := evalArithmetic(expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
