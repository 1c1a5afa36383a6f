package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Tool is one callable tool.
//
// Run returns the output text. A returned error is a tool error: the agent
// shows it to the model as an is_error result with err.Error() as content.
// Run never panics on bad input, returns ctx.Err() when ctx is already done,
// and is safe for concurrent use.
type Tool struct {
	Name        string
	Description string
	InputSchema json.RawMessage // JSON Schema object
	Run         func(ctx context.Context, input json.RawMessage) (string, error)
}

// ToolRegistry holds the agent's tools by name. It is immutable after
// construction and safe for concurrent use; the zero value holds no tools.
type ToolRegistry struct {
	tools map[string]Tool
	names []string // sorted
}

// newToolRegistry returns a registry with the calculator and current_time
// tools. now is the clock current_time reads; nil means time.Now.
func newToolRegistry(now func() time.Time) *ToolRegistry {
	if now == nil {
		now = time.Now
	}
	return toolBuildRegistry([]Tool{toolCalculator(), toolCurrentTime(now)})
}

// toolRegistryOf builds a registry from tools (for tests and extra tools);
// names must be non-empty and distinct and every tool must have a Run.
func toolRegistryOf(tools ...Tool) (*ToolRegistry, error) {
	seen := make(map[string]bool, len(tools))
	for _, t := range tools {
		if t.Name == "" || t.Run == nil {
			return nil, fmt.Errorf("tool %q: name and run are required", t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("tool %q registered twice", t.Name)
		}
		seen[t.Name] = true
	}
	return toolBuildRegistry(tools), nil
}

// toolBuildRegistry builds a registry from tools already known to be valid.
func toolBuildRegistry(tools []Tool) *ToolRegistry {
	r := &ToolRegistry{tools: make(map[string]Tool, len(tools))}
	for _, t := range tools {
		t.InputSchema = bytes.Clone(t.InputSchema)
		r.tools[t.Name] = t
		r.names = append(r.names, t.Name)
	}
	slices.Sort(r.names)
	return r
}

// Get returns a copy of the tool called name, so callers cannot alter the
// registry.
func (r *ToolRegistry) Get(name string) (*Tool, bool) {
	t, ok := r.tools[name]
	if !ok {
		return nil, false
	}
	t.InputSchema = bytes.Clone(t.InputSchema)
	return &t, true
}

// Specs describes every tool to the model, sorted by name. The slice and the
// schemas are fresh copies.
func (r *ToolRegistry) Specs() []ToolSpec {
	specs := make([]ToolSpec, 0, len(r.names))
	for _, name := range r.names {
		t := r.tools[name]
		specs = append(specs, ToolSpec{Name: t.Name, Description: t.Description, InputSchema: bytes.Clone(t.InputSchema)})
	}
	return specs
}

// Names returns the tool names, sorted; the slice is a fresh copy.
func (r *ToolRegistry) Names() []string {
	return slices.Clone(r.names)
}

const toolCalculatorDescription = "Evaluates an arithmetic expression exactly and returns the number. " +
	"Use it for every calculation instead of doing arithmetic yourself. " +
	"Supports + - * / % (remainder) ^ (power, right-associative; ** also works), parentheses, " +
	"unary minus (-2^2 is -4), decimals and exponent notation (1.5e3), the constants pi and e, " +
	"and the functions sqrt, abs, round, floor, ceil, ln, log (base 10), log2, exp, sin, cos, tan (radians), " +
	"min(a, b, ...), max(a, b, ...) and pow(a, b). Example: (2 + 3)^2 / 4. " +
	"Errors such as division by zero are reported as a sentence."

const toolCalculatorSchema = `{"type":"object","properties":{"expression":{"type":"string",` +
	`"description":"Arithmetic expression to evaluate, e.g. \"12 * 7\" or \"sqrt(2) + max(3, 4)\". At most 1024 bytes."}},` +
	`"required":["expression"],"additionalProperties":false}`

// toolCalculator returns the calculator tool: input {"expression": "..."},
// output formatNumber of the value.
func toolCalculator() Tool {
	return Tool{
		Name:        "calculator",
		Description: toolCalculatorDescription,
		InputSchema: json.RawMessage(toolCalculatorSchema),
		Run: func(ctx context.Context, input json.RawMessage) (string, error) {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			fields, err := toolObjectFields(input, "expression")
			if err != nil {
				return "", err
			}
			expr, present, err := toolStringField(fields, "expression")
			if err != nil {
				return "", err
			}
			if !present {
				return "", errors.New(`missing required field "expression"`)
			}
			v, err := evalArithmetic(expr)
			if err != nil {
				return "", err
			}
			return formatNumber(v), nil
		},
	}
}

// formatNumber renders x for people: integral values without a decimal point
// ("84", "-3"; negative zero as "0"), other values in the shortest decimal
// form that reads back as x, without an exponent for magnitudes in
// [1e-6, 1e21) and with one ("1e+21", "1e-07") outside that range. NaN and
// infinities render as "NaN", "+Inf" and "-Inf".
func formatNumber(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return strconv.FormatFloat(x, 'g', -1, 64)
	case x == 0:
		return "0"
	}
	ax := math.Abs(x)
	if ax >= 1e21 || ax < 1e-6 {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

// toolObjectFields decodes input as a JSON object whose keys are all in
// allowed, naming the problem in its error otherwise.
func toolObjectFields(input json.RawMessage, allowed ...string) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(input)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("input must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, fmt.Errorf("input is not valid JSON: %w", err)
	}
	for k := range fields {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("unknown field %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return fields, nil
}

// toolStringField returns the string field name of fields and whether it was
// present; a present field that is not a JSON string is an error.
func toolStringField(fields map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := fields[name]
	if !ok {
		return "", false, nil
	}
	var s string
	if bytes.Equal(raw, []byte("null")) || json.Unmarshal(raw, &s) != nil {
		return "", true, fmt.Errorf("field %q must be a string", name)
	}
	return s, true, nil
}
