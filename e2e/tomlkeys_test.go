package e2e

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// tomlKeys reads the flat subset of TOML the service's config uses —
// [section] headers and single-line key = value pairs — into a map keyed
// "section.key". String values are unquoted; other values are kept as
// written ("30", "true", "[]"). It is enough for tests to look up a few
// keys; the binary itself validates the file (config -check).
func tomlKeys(src string) (map[string]string, error) {
	keys := make(map[string]string)
	section := ""
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(tomlStripComment(sc.Text()))
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key = value, got %q", n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if strings.HasPrefix(v, `"`) {
			s, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", n, k, err)
			}
			v = s
		}
		full := section + "." + k
		if _, dup := keys[full]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %s", n, full)
		}
		keys[full] = v
	}
	return keys, sc.Err()
}

// tomlStripComment drops a # comment that is not inside a basic string.
func tomlStripComment(line string) string {
	in := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && in:
			i++
		case c == '"':
			in = !in
		case c == '#' && !in:
			return line[:i]
		}
	}
	return line
}

// tomlInt returns keys[key] as an integer, or def when the key is absent.
func tomlInt(keys map[string]string, key string, def int) (int, error) {
	v, ok := keys[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return n, nil
}
