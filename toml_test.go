package main

import (
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

// tomlTestFlatten maps "table.key" to the parsed value.
func tomlTestFlatten(doc *tomlDocument) map[string]tomlValue {
	m := map[string]tomlValue{}
	for _, e := range doc.Entries {
		m[e.Table+"."+e.Key] = e.Value
	}
	return m
}

func tomlStr(s string) tomlValue  { return tomlValue{Kind: tomlString, Str: s} }
func tomlInt(n int64) tomlValue   { return tomlValue{Kind: tomlInteger, Int: n} }
func tomlFlt(f float64) tomlValue { return tomlValue{Kind: tomlFloat, Float: f} }
func tomlBoo(b bool) tomlValue    { return tomlValue{Kind: tomlBool, Bool: b} }
func tomlArr(s ...string) tomlValue {
	return tomlValue{Kind: tomlArray, List: append([]string{}, s...)}
}

func TestTOMLParseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want map[string]tomlValue
	}{
		{"empty", "", map[string]tomlValue{}},
		{"comments and blank lines", "# top\n\n   \n[s] # table comment\n# inside\nk = 1 # trailing\n\n", map[string]tomlValue{"s.k": tomlInt(1)}},
		{"crlf", "[s]\r\nk = 1\r\n# c\r\nj = 2\r\n", map[string]tomlValue{"s.k": tomlInt(1), "s.j": tomlInt(2)}},
		{"no final newline", "[s]\nk = true", map[string]tomlValue{"s.k": tomlBoo(true)}},
		{"byte order mark", "\uFEFF[s]\nk = 1\n", map[string]tomlValue{"s.k": tomlInt(1)}},
		{"spacing", "  [ s ]  \n\tk\t=\t\"v\"\t\nk2=\"w\"\n", map[string]tomlValue{"s.k": tomlStr("v"), "s.k2": tomlStr("w")}},
		{"bare key forms", "[s-1_x]\na-b_1 = 1\n", map[string]tomlValue{"s-1_x.a-b_1": tomlInt(1)}},
		{"basic string escapes", `[s]` + "\n" + `k = "q\" b\\ n\n t\t r\r e\u00e9 U\U0001F600 b\b f\f"` + "\n",
			map[string]tomlValue{"s.k": tomlStr("q\" b\\ n\n t\t r\r e\u00e9 U\U0001F600 b\b f\f")}},
		{"empty strings", "[s]\na = \"\"\nb = ''\n", map[string]tomlValue{"s.a": tomlStr(""), "s.b": tomlStr("")}},
		{"literal string", `[s]` + "\n" + `k = 'C:\path\"x' # c` + "\n", map[string]tomlValue{"s.k": tomlStr(`C:\path\"x`)}},
		{"hash inside strings", "[s]\na = \"x # y\" # c\nb = 'p # q'\n", map[string]tomlValue{"s.a": tomlStr("x # y"), "s.b": tomlStr("p # q")}},
		{"unicode and tab in strings", "[s]\nk = \"héllo\tワールド\" # ünïcode comment\n", map[string]tomlValue{"s.k": tomlStr("héllo\tワールド")}},
		{"integers", "[s]\na = 0\nb = +1\nc = -42\nd = 1_000_000\ne = -0\nf = 9223372036854775807\ng = -9223372036854775808\n",
			map[string]tomlValue{"s.a": tomlInt(0), "s.b": tomlInt(1), "s.c": tomlInt(-42), "s.d": tomlInt(1000000),
				"s.e": tomlInt(0), "s.f": tomlInt(math.MaxInt64), "s.g": tomlInt(math.MinInt64)}},
		{"floats", "[s]\na = 1.5\nb = -0.25\nc = 1e3\nd = 1E-3\ne = 6.02e+23\nf = 1_000.5\ng = 3.141_5\nh = 0.0\ni = 1e007\n",
			map[string]tomlValue{"s.a": tomlFlt(1.5), "s.b": tomlFlt(-0.25), "s.c": tomlFlt(1000), "s.d": tomlFlt(0.001),
				"s.e": tomlFlt(6.02e23), "s.f": tomlFlt(1000.5), "s.g": tomlFlt(3.1415), "s.h": tomlFlt(0), "s.i": tomlFlt(1e7)}},
		{"booleans", "[s]\nt = true\nf = false\n", map[string]tomlValue{"s.t": tomlBoo(true), "s.f": tomlBoo(false)}},
		{"arrays", "[s]\ne = []\nf = [ ]\none = [\"a\"]\ntwo = ['x', \"y\",]\n",
			map[string]tomlValue{"s.e": tomlArr(), "s.f": tomlArr(), "s.one": tomlArr("a"), "s.two": tomlArr("x", "y")}},
		{"multi-line array", "[s]\nk = [ # opens\n  \"a\", # first\n\n  # between\n  'b',\n  \"c\"\n] # closes\nafter = 1\n",
			map[string]tomlValue{"s.k": tomlArr("a", "b", "c"), "s.after": tomlInt(1)}},
		{"multi-line array crlf", "[s]\r\nk = [\r\n\"a\",\r\n]\r\n", map[string]tomlValue{"s.k": tomlArr("a")}},
		{"empty table then another", "[a]\n[b]\nk = 1\n", map[string]tomlValue{"b.k": tomlInt(1)}},
		{"same key in two tables", "[a]\nk = 1\n[b]\nk = 2\n", map[string]tomlValue{"a.k": tomlInt(1), "b.k": tomlInt(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := tomlParse("t.toml", []byte(tt.in))
			if err != nil {
				t.Fatalf("tomlParse(%q) error: %v", tt.in, err)
			}
			if got := tomlTestFlatten(doc); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tomlParse(%q) = %#v; want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTOMLParseRecordsLines(t *testing.T) {
	t.Parallel()
	doc, err := tomlParse("t.toml", []byte("# c\n[a]\nx = [\n\"1\",\n]\ny = 2\n\n[b]\nz = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, e := range doc.Entries {
		got = append(got, e.Line)
	}
	if want := []int{3, 6, 9}; !reflect.DeepEqual(got, want) {
		t.Errorf("entry lines = %v; want %v", got, want)
	}
	if want := []tomlTable{{"a", 2}, {"b", 8}}; !reflect.DeepEqual(doc.Tables, want) {
		t.Errorf("tables = %v; want %v", doc.Tables, want)
	}
}

func TestTOMLParseRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		wantLine int
		wantMsg  string
	}{
		{"dotted table", "[a.b]\n", 1, "dotted table names"},
		{"array of tables", "[s]\nk = 1\n[[a]]\n", 3, "arrays of tables"},
		{"unclosed table", "[a\n", 1, "expected ']'"},
		{"empty table name", "[]\n", 1, "expected a table name"},
		{"quoted table name", "[\"a\"]\n", 1, "quoted table names"},
		{"garbage after table", "[a] x\n", 1, "unexpected"},
		{"duplicate table", "[a]\nk = 1\n\n[a]\n", 4, "duplicate table [a]"},
		{"key outside table", "k = 1\n", 1, "key outside a table"},
		{"duplicate key", "[s]\nk = 1\nk = 2\n", 3, "duplicate key"},
		{"quoted key", "[s]\n\"k\" = 1\n", 2, "quoted keys"},
		{"dotted key", "[s]\na.b = 1\n", 2, "dotted keys"},
		{"missing equals", "[s]\nk 1\n", 2, "expected '='"},
		{"missing value", "[s]\nk =\n", 2, "missing value"},
		{"missing value before comment", "[s]\nk = # c\n", 2, "missing value"},
		{"missing value at eof", "[s]\nk = ", 2, "missing value"},
		{"garbage line", "[s]\n!!!\n", 2, "expected a key"},
		{"garbage after value", "[s]\nk = 1 2\n", 2, "unexpected \"2\""},
		{"garbage after string", "[s]\nk = \"a\"b\n", 2, "unexpected"},
		{"inline table", "[s]\nk = {a = 1}\n", 2, "inline tables"},
		{"date", "[s]\nk = 1979-05-27\n", 2, "dates and times"},
		{"datetime", "[s]\nk = 1979-05-27T07:32:00Z\n", 2, "dates and times"},
		{"local time", "[s]\nk = 07:32:00\n", 2, "dates and times"},
		{"multi-line basic string", "[s]\nk = \"\"\"x\"\"\"\n", 2, "multi-line strings"},
		{"multi-line literal string", "[s]\nk = '''x'''\n", 2, "multi-line strings"},
		{"unquoted string", "[s]\nk = hello\n", 2, "strings must be quoted"},
		{"capitalised boolean", "[s]\nk = True\n", 2, "lower-case"},
		{"inf", "[s]\nk = inf\n", 2, "inf and nan"},
		{"plus inf", "[s]\nk = +inf\n", 2, "inf and nan"},
		{"nan", "[s]\nk = nan\n", 2, "inf and nan"},
		{"minus nan", "[s]\nk = -nan\n", 2, "inf and nan"},
		{"hex", "[s]\nk = 0x10\n", 2, "hexadecimal"},
		{"octal", "[s]\nk = 0o7\n", 2, "octal"},
		{"binary", "[s]\nk = 0b1\n", 2, "binary"},
		{"leading zero", "[s]\nk = 01\n", 2, "leading zeros"},
		{"leading zero float", "[s]\nk = 00.5\n", 2, "leading zeros"},
		{"double underscore", "[s]\nk = 1__0\n", 2, "'_'"},
		{"leading underscore", "[s]\nk = _1\n", 2, "strings must be quoted"},
		{"trailing underscore", "[s]\nk = 1_\n", 2, "'_'"},
		{"underscore before dot", "[s]\nk = 1_.5\n", 2, "'_'"},
		{"no integer part", "[s]\nk = .5\n", 2, "needs digits"},
		{"no fraction", "[s]\nk = 1.\n", 2, "fraction needs digits"},
		{"no exponent digits", "[s]\nk = 1e\n", 2, "exponent needs digits"},
		{"dot before exponent", "[s]\nk = 1.e5\n", 2, "fraction needs digits"},
		{"two dots", "[s]\nk = 1.2.3\n", 2, "unexpected character"},
		{"sign only", "[s]\nk = -\n", 2, "needs digits"},
		{"integer overflow", "[s]\nk = 9223372036854775808\n", 2, "out of range"},
		{"float overflow", "[s]\nk = 1e400\n", 2, "out of range"},
		{"unterminated string", "[s]\nk = \"abc\n", 2, "unterminated string"},
		{"unterminated literal", "[s]\nk = 'abc\n", 2, "unterminated string"},
		{"invalid escape", "[s]\nk = \"a\\xb\"\n", 2, "invalid escape \\x"},
		{"short unicode escape", "[s]\nk = \"\\u12\"\n", 2, "escape"},
		{"non-hex unicode escape", "[s]\nk = \"\\u12G4\"\n", 2, "invalid \\u escape"},
		{"surrogate escape", "[s]\nk = \"\\uD800\"\n", 2, "not a Unicode scalar value"},
		{"escape beyond unicode", "[s]\nk = \"\\U00110000\"\n", 2, "not a Unicode scalar value"},
		{"control character in string", "[s]\nk = \"a\x01b\"\n", 2, "control character"},
		{"control character in comment", "[s]\n# a\x00b\n", 2, "control character"},
		{"bare carriage return", "[s]\nk = 1\rj = 2\n", 2, "carriage return"},
		{"array of integers", "[s]\nk = [1, 2]\n", 2, "array elements must be strings"},
		{"array of booleans", "[s]\nk = [true]\n", 2, "array elements must be strings"},
		{"nested array", "[s]\nk = [[\"a\"]]\n", 2, "nested arrays"},
		{"array missing comma", "[s]\nk = [\"a\" \"b\"]\n", 2, "expected ',' or ']'"},
		{"array leading comma", "[s]\nk = [,\"a\"]\n", 2, "unexpected ','"},
		{"array double comma", "[s]\nk = [\"a\",,]\n", 2, "unexpected ','"},
		{"unterminated array", "[s]\nk = [\n\"a\",\n\"b\"\n", 2, "unterminated array"},
		{"bad element deep in array", "[s]\nk = [\n  \"a\",\n  1,\n]\n", 4, "array elements must be strings"},
		{"error after multi-line array", "[s]\nk = [\n\"a\"\n] x\n", 4, "unexpected"},
		{"invalid utf-8", "[s]\nk = 1\nj = \"\xff\"\n", 3, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tomlParse("t.toml", []byte(tt.in))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("tomlParse(%q) error = %v; want a *ConfigError", tt.in, err)
			}
			if ce.File != "t.toml" || ce.Line != tt.wantLine || !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("tomlParse(%q) error = %q (line %d); want t.toml line %d containing %q",
					tt.in, err, ce.Line, tt.wantLine, tt.wantMsg)
			}
		})
	}
}

func TestTOMLParseErrorNamesKey(t *testing.T) {
	t.Parallel()
	_, err := tomlParse("c.toml", []byte("[server]\nport = 80 80\n"))
	if got, want := err.Error(), `c.toml:2: server.port: unexpected "80" after value; expected end of line or comment`; got != want {
		t.Errorf("error = %q; want %q", got, want)
	}
}

// FuzzParseTOML checks that the parser never panics, that every error
// carries a line inside the input, and that whatever configuration an
// accepted input produces survives WriteTOML and a second parse unchanged.
func FuzzParseTOML(f *testing.F) {
	seed, err := os.ReadFile("config.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, s := range []string{
		"[server]\nport = 8080\nhost = \"a\\u00e9\\\"b\" # c\n",
		"[server]\ntrusted_proxies = [\n  '10.0.0.0/8', # x\n  \"::1\",\n]\n",
		"[llm]\ntemperature = 1\ninput_cost_per_mtok = 1_0.5e-1\n",
		"[a.b]\n[[c]]\nk = {x = 1}\n",
		"[s]\nk = \"\"\"x\n\"\"\"\nd = 1979-05-27\n",
		"[llm]\nmodel = \"\\U0001F600\\t\\n\"\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := tomlParse("f.toml", data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("tomlParse error %v is not a *ConfigError", err)
			}
			if lines := strings.Count(string(data), "\n") + 1; ce.Line < 1 || ce.Line > lines {
				t.Fatalf("tomlParse error line %d outside 1..%d: %v", ce.Line, lines, err)
			}
			return
		}
		c := defaultConfig()
		if cfgApplyFile(c, "f.toml", data, map[string]cfgSource{}) != nil {
			return
		}
		for _, v := range []float64{c.LLM.Temperature, c.LLM.InputCostPerMTok, c.LLM.OutputCostPerMTok} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("accepted non-finite float %v", v)
			}
		}
		var b strings.Builder
		if err := c.WriteTOML(&b); err != nil {
			t.Fatal(err)
		}
		again := defaultConfig()
		if err := cfgApplyFile(again, "again.toml", []byte(b.String()), map[string]cfgSource{}); err != nil {
			t.Fatalf("WriteTOML output does not parse: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip changed the config:\ngot  %+v\nwant %+v", again, c)
		}
	})
}
