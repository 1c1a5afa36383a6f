package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds the TOML-subset parser behind config.toml. It accepts what
// an operator needs for a flat configuration file and rejects the rest with
// a line number, so that nothing is ever silently misread:
//
//   - comments (# …, also after a value), blank lines, LF or CRLF line ends;
//   - [table] headers with a bare name (no dotted tables, no [[arrays]]);
//   - key = value with a bare key (no quoted or dotted keys);
//   - basic strings "…" with the escapes \b \t \n \f \r \" \\ and \u or \U
//     followed by 4 or 8 hex digits, and literal strings '…' (no multi-line
//     strings);
//   - decimal integers with optional sign and _ separators (no hex, octal,
//     binary, no leading zeros);
//   - floats with fraction and/or exponent (inf and nan are rejected);
//   - true and false;
//   - arrays of strings, which may span lines and hold comments and a
//     trailing comma.
//
// Inline tables, dates and times, duplicate keys and duplicate tables are
// errors. Which table and key names are meaningful is decided by the caller.

// tomlKind is the type of a parsed TOML value.
type tomlKind int

const (
	tomlString tomlKind = iota + 1
	tomlInteger
	tomlFloat
	tomlBool
	tomlArray
)

// String returns the TOML name of the kind, as used in type errors.
func (k tomlKind) String() string {
	switch k {
	case tomlString:
		return "string"
	case tomlInteger:
		return "integer"
	case tomlFloat:
		return "float"
	case tomlBool:
		return "boolean"
	case tomlArray:
		return "array"
	}
	return "unknown"
}

// tomlValue is one parsed value; only the field matching Kind is set.
// An array value (Kind tomlArray) always holds strings, possibly none.
type tomlValue struct {
	Kind  tomlKind
	Str   string
	Int   int64
	Float float64
	Bool  bool
	List  []string
}

// tomlEntry is one key = value line; Line is where the key stands (1-based).
type tomlEntry struct {
	Table string
	Key   string
	Line  int
	Value tomlValue
}

// tomlTable is one [name] header and its line (1-based).
type tomlTable struct {
	Name string
	Line int
}

// tomlDocument is a parsed file in source order.
type tomlDocument struct {
	Tables  []tomlTable
	Entries []tomlEntry
}

// tomlParser holds the scan position over one input; line is the 1-based
// line of src[pos].
type tomlParser struct {
	file string
	src  string
	pos  int
	line int
}

// tomlParse parses data as the TOML subset described above. file names the
// source in errors. Every error is a *ConfigError with File and Line set (Key
// too for duplicate keys).
func tomlParse(file string, data []byte) (*tomlDocument, error) {
	src := string(data)
	if !utf8.ValidString(src) {
		bad := 0
		for bad < len(src) {
			r, size := utf8.DecodeRuneInString(src[bad:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			bad += size
		}
		return nil, &ConfigError{File: file, Line: 1 + strings.Count(src[:bad], "\n"), Msg: "file is not valid UTF-8"}
	}
	src = strings.TrimPrefix(src, "\uFEFF")
	p := &tomlParser{file: file, src: src, line: 1}
	doc := &tomlDocument{}
	table := ""
	seenTables := map[string]bool{}
	seenKeys := map[string]bool{}
	for {
		p.skipSpace()
		if p.eof() {
			return doc, nil
		}
		switch c := p.peek(); {
		case c == '#' || c == '\n' || c == '\r':
			if err := p.endOfLine(); err != nil {
				return nil, err
			}
		case c == '[':
			line := p.line
			name, err := p.tableHeader()
			if err != nil {
				return nil, err
			}
			if seenTables[name] {
				return nil, p.errAt(line, "", fmt.Sprintf("duplicate table [%s]", name))
			}
			seenTables[name] = true
			table = name
			doc.Tables = append(doc.Tables, tomlTable{Name: name, Line: line})
		default:
			line := p.line
			key, val, err := p.keyValue()
			if err != nil {
				if ce, ok := err.(*ConfigError); ok && key != "" && ce.Key == "" {
					ce.Key = key
					if table != "" {
						ce.Key = table + "." + key
					}
				}
				return nil, err
			}
			if table == "" {
				return nil, p.errAt(line, key, "key outside a table; put it under a [section] header")
			}
			full := table + "." + key
			if seenKeys[full] {
				return nil, p.errAt(line, full, "duplicate key")
			}
			seenKeys[full] = true
			doc.Entries = append(doc.Entries, tomlEntry{Table: table, Key: key, Line: line, Value: val})
		}
	}
}

func (p *tomlParser) eof() bool { return p.pos >= len(p.src) }

func (p *tomlParser) peek() byte { return p.src[p.pos] }

func (p *tomlParser) errAt(line int, key, msg string) *ConfigError {
	return &ConfigError{File: p.file, Line: line, Key: key, Msg: msg}
}

func (p *tomlParser) errf(format string, args ...any) *ConfigError {
	return p.errAt(p.line, "", fmt.Sprintf(format, args...))
}

// skipSpace skips spaces and tabs on the current line.
func (p *tomlParser) skipSpace() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t') {
		p.pos++
	}
}

// newline consumes one LF or CRLF line end.
func (p *tomlParser) newline() error {
	switch {
	case p.peek() == '\n':
		p.pos++
	case p.peek() == '\r' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n':
		p.pos += 2
	default:
		return p.errf("carriage return without line feed")
	}
	p.line++
	return nil
}

// skipComment consumes a # comment up to, not including, the line end.
func (p *tomlParser) skipComment() error {
	for !p.eof() && p.peek() != '\n' && p.peek() != '\r' {
		if c := p.peek(); c != '\t' && (c < 0x20 || c == 0x7f) {
			return p.errf("control character %U in comment", rune(c))
		}
		p.pos++
	}
	return nil
}

// endOfLine accepts trailing space and an optional comment, then the line
// end (or the end of input). Anything else is an error.
func (p *tomlParser) endOfLine() error {
	p.skipSpace()
	if p.eof() {
		return nil
	}
	if p.peek() == '#' {
		if err := p.skipComment(); err != nil {
			return err
		}
		if p.eof() {
			return nil
		}
	}
	if c := p.peek(); c != '\n' && c != '\r' {
		return p.errf("unexpected %s after value; expected end of line or comment", p.describeNext())
	}
	return p.newline()
}

// describeNext quotes the next few characters for error messages.
func (p *tomlParser) describeNext() string {
	rest := p.src[p.pos:]
	if i := strings.IndexAny(rest, "\r\n"); i >= 0 {
		rest = rest[:i]
	}
	if utf8.RuneCountInString(rest) > 20 {
		rest = string([]rune(rest)[:20]) + "…"
	}
	return strconv.Quote(rest)
}

func tomlIsBareKeyChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// bareKey reads a bare key or table name; what says which, for errors.
func (p *tomlParser) bareKey(what string) (string, error) {
	if !p.eof() && (p.peek() == '"' || p.peek() == '\'') {
		return "", p.errf("quoted %ss are not supported", what)
	}
	start := p.pos
	for !p.eof() && tomlIsBareKeyChar(p.peek()) {
		p.pos++
	}
	if p.pos == start {
		if p.eof() || p.peek() == '\n' || p.peek() == '\r' {
			return "", p.errf("expected a %s", what)
		}
		return "", p.errf("expected a %s, found %s", what, p.describeNext())
	}
	name := p.src[start:p.pos]
	p.skipSpace()
	if !p.eof() && p.peek() == '.' {
		return "", p.errf("dotted %ss are not supported (%s.…)", what, name)
	}
	return name, nil
}

// tableHeader parses "[name]" and the rest of its line.
func (p *tomlParser) tableHeader() (string, error) {
	p.pos++ // [
	if !p.eof() && p.peek() == '[' {
		return "", p.errf("arrays of tables ([[…]]) are not supported")
	}
	p.skipSpace()
	name, err := p.bareKey("table name")
	if err != nil {
		return "", err
	}
	if p.eof() || p.peek() != ']' {
		return "", p.errf("expected ']' to close table [%s", name)
	}
	p.pos++
	return name, p.endOfLine()
}

// keyValue parses "key = value" and the rest of its line. Once the key is
// read it is returned even with an error, so the caller can name it.
func (p *tomlParser) keyValue() (string, tomlValue, error) {
	key, err := p.bareKey("key")
	if err != nil {
		return "", tomlValue{}, err
	}
	if p.eof() || p.peek() != '=' {
		return "", tomlValue{}, p.errf("expected '=' after key %q", key)
	}
	p.pos++
	p.skipSpace()
	val, err := p.value()
	if err != nil {
		return key, tomlValue{}, err
	}
	return key, val, p.endOfLine()
}

// value parses one value at the current position.
func (p *tomlParser) value() (tomlValue, error) {
	if p.eof() {
		return tomlValue{}, p.errf("missing value")
	}
	switch c := p.peek(); c {
	case '"', '\'':
		s, err := p.str()
		return tomlValue{Kind: tomlString, Str: s}, err
	case '[':
		list, err := p.array()
		return tomlValue{Kind: tomlArray, List: list}, err
	case '{':
		return tomlValue{}, p.errf("inline tables are not supported")
	case '\n', '\r', '#':
		return tomlValue{}, p.errf("missing value")
	}
	start := p.pos
	for !p.eof() && !strings.ContainsRune(" \t\r\n#,]", rune(p.peek())) {
		p.pos++
	}
	tok := p.src[start:p.pos]
	switch tok {
	case "true":
		return tomlValue{Kind: tomlBool, Bool: true}, nil
	case "false":
		return tomlValue{Kind: tomlBool, Bool: false}, nil
	}
	if strings.EqualFold(tok, "true") || strings.EqualFold(tok, "false") {
		return tomlValue{}, p.errf("invalid value %s: booleans are lower-case true or false", tok)
	}
	v, msg := tomlParseNumber(tok)
	if msg != "" {
		return tomlValue{}, p.errf("%s", msg)
	}
	return v, nil
}

// str parses a basic or literal single-line string.
func (p *tomlParser) str() (string, error) {
	quote := p.peek()
	if strings.HasPrefix(p.src[p.pos:], strings.Repeat(string(quote), 3)) {
		return "", p.errf("multi-line strings are not supported")
	}
	p.pos++
	var b strings.Builder
	for {
		if p.eof() || p.peek() == '\n' || p.peek() == '\r' {
			return "", p.errf("unterminated string")
		}
		c := p.peek()
		switch {
		case c == quote:
			p.pos++
			return b.String(), nil
		case c != '\t' && (c < 0x20 || c == 0x7f):
			return "", p.errf("control character %U in string; use an escape", rune(c))
		case c == '\\' && quote == '"':
			if err := p.escape(&b); err != nil {
				return "", err
			}
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

// escape decodes one backslash escape of a basic string into b.
func (p *tomlParser) escape(b *strings.Builder) error {
	p.pos++ // backslash
	if p.eof() {
		return p.errf("unterminated string")
	}
	c := p.peek()
	p.pos++
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 't':
		b.WriteByte('\t')
	case 'n':
		b.WriteByte('\n')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case '"':
		b.WriteByte('"')
	case '\\':
		b.WriteByte('\\')
	case 'u', 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		if p.pos+n > len(p.src) {
			return p.errf("short \\%c escape", c)
		}
		hex := p.src[p.pos : p.pos+n]
		code, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			return p.errf("invalid \\%c escape %q", c, hex)
		}
		if code > utf8.MaxRune || !utf8.ValidRune(rune(code)) {
			return p.errf("escape \\%c%s is not a Unicode scalar value", c, hex)
		}
		b.WriteRune(rune(code))
		p.pos += n
	default:
		r, _ := utf8.DecodeRuneInString(p.src[p.pos-1:])
		return p.errf("invalid escape \\%c", r)
	}
	return nil
}

// array parses an array of strings, which may span lines.
func (p *tomlParser) array() ([]string, error) {
	startLine := p.line
	p.pos++ // [
	list := []string{}
	for {
		if err := p.skipArraySpace(); err != nil {
			return nil, err
		}
		if p.eof() {
			return nil, p.errAt(startLine, "", "unterminated array")
		}
		switch p.peek() {
		case ']':
			p.pos++
			return list, nil
		case '"', '\'':
		case '[':
			return nil, p.errf("nested arrays are not supported")
		case ',':
			return nil, p.errf("unexpected ',' in array")
		default:
			return nil, p.errf("array elements must be strings, found %s", p.describeNext())
		}
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		list = append(list, s)
		if err := p.skipArraySpace(); err != nil {
			return nil, err
		}
		if p.eof() {
			return nil, p.errAt(startLine, "", "unterminated array")
		}
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return list, nil
		default:
			return nil, p.errf("expected ',' or ']' in array, found %s", p.describeNext())
		}
	}
}

// skipArraySpace skips whitespace, line ends and comments inside an array.
func (p *tomlParser) skipArraySpace() error {
	for {
		p.skipSpace()
		if p.eof() {
			return nil
		}
		switch p.peek() {
		case '#':
			if err := p.skipComment(); err != nil {
				return err
			}
		case '\n', '\r':
			if err := p.newline(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// tomlParseNumber parses tok as a TOML decimal integer or float. On failure
// it returns a message saying why (the caller adds file, line and key).
func tomlParseNumber(tok string) (tomlValue, string) {
	if tok == "" {
		return tomlValue{}, "missing value"
	}
	body := tok
	if body[0] == '+' || body[0] == '-' {
		body = body[1:]
	}
	switch {
	case body == "inf" || body == "nan":
		return tomlValue{}, fmt.Sprintf("invalid value %s: inf and nan are not allowed", tok)
	case len(body) > 1 && body[0] == '0' && strings.ContainsRune("xob", rune(body[1])):
		return tomlValue{}, fmt.Sprintf("invalid value %s: hexadecimal, octal and binary integers are not supported", tok)
	case len(tok) >= 10 && tok[4] == '-' && tok[7] == '-' || strings.Contains(tok, ":"):
		return tomlValue{}, fmt.Sprintf("invalid value %s: dates and times are not supported", tok)
	}
	invalid := func(why string) (tomlValue, string) {
		if !strings.ContainsAny(tok[:1], "+-0123456789.") {
			why = "strings must be quoted"
		}
		return tomlValue{}, fmt.Sprintf("invalid value %s: %s", strconv.Quote(tok), why)
	}
	intPart, rest := body, ""
	if i := strings.IndexAny(body, ".eE"); i >= 0 {
		intPart, rest = body[:i], body[i:]
	}
	if why := tomlCheckDigits(intPart, false); why != "" {
		return invalid(why)
	}
	if strings.HasPrefix(rest, ".") {
		frac := rest[1:]
		if i := strings.IndexAny(frac, "eE"); i >= 0 {
			frac, rest = frac[:i], frac[i:]
		} else {
			rest = ""
		}
		if why := tomlCheckDigits(frac, true); why != "" {
			return invalid("fraction " + why)
		}
	}
	if rest != "" {
		exp := rest[1:]
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		if why := tomlCheckDigits(exp, true); why != "" {
			return invalid("exponent " + why)
		}
	}
	clean := strings.ReplaceAll(tok, "_", "")
	if !strings.ContainsAny(body, ".eE") {
		n, err := strconv.ParseInt(clean, 10, 64)
		if err != nil {
			return tomlValue{}, fmt.Sprintf("integer %s out of range", tok)
		}
		return tomlValue{Kind: tomlInteger, Int: n}, ""
	}
	f, err := strconv.ParseFloat(clean, 64)
	if err != nil {
		return tomlValue{}, fmt.Sprintf("float %s out of range", tok)
	}
	return tomlValue{Kind: tomlFloat, Float: f}, ""
}

// tomlCheckDigits checks a run of decimal digits with TOML's underscore rule
// (each _ between two digits). Leading zeros are refused unless allowed.
func tomlCheckDigits(s string, leadingZeros bool) string {
	if s == "" {
		return "needs digits"
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '_':
			if i == 0 || i == len(s)-1 || s[i+1] == '_' {
				return "has a misplaced '_'"
			}
		default:
			return fmt.Sprintf("has unexpected character %q", c)
		}
	}
	if !leadingZeros && len(s) > 1 && s[0] == '0' {
		return "has leading zeros"
	}
	return ""
}
