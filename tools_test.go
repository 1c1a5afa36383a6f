package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // zone tests must not depend on the host's zoneinfo
)

// toolTestNow is a fixed clock: Sunday 2026-11-29 14:04:05 UTC.
func toolTestNow() time.Time { return time.Date(2026, 11, 29, 14, 4, 5, 0, time.UTC) }

func toolTestRun(t *testing.T, r *ToolRegistry, name, input string) (string, error) {
	t.Helper()
	tool, ok := r.Get(name)
	if !ok {
		t.Fatalf("Get(%q) not found", name)
	}
	return tool.Run(context.Background(), json.RawMessage(input))
}

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{84, "84"},
		{-3, "-3"},
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{0.5, "0.5"},
		{-1.5, "-1.5"},
		{2.5, "2.5"},
		{1.0 / 3, "0.3333333333333333"},
		{0.30000000000000004, "0.30000000000000004"},
		{123456.789, "123456.789"},
		{1e20, "100000000000000000000"},
		{123456789012, "123456789012"},
		{1e21, "1e+21"},
		{-2.5e22, "-2.5e+22"},
		{1e-6, "0.000001"},
		{2.5e-5, "0.000025"},
		{1e-7, "1e-07"},
		{-1.25e-9, "-1.25e-09"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "+Inf"},
		{math.Inf(-1), "-Inf"},
	}
	for _, tt := range tests {
		if got := formatNumber(tt.in); got != tt.want {
			t.Errorf("formatNumber(%v) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestRegistryNamesAndSpecs(t *testing.T) {
	r := newToolRegistry(toolTestNow)
	if got, want := r.Names(), []string{"calculator", "current_time"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v; want %v", got, want)
	}
	specs := r.Specs()
	if len(specs) != 2 {
		t.Fatalf("len(Specs()) = %d; want 2", len(specs))
	}
	for i, spec := range specs {
		if spec.Name != r.Names()[i] {
			t.Errorf("Specs()[%d].Name = %q; want %q", i, spec.Name, r.Names()[i])
		}
		if len(spec.Description) < 40 {
			t.Errorf("%s: description %q is too short to guide a model", spec.Name, spec.Description)
		}
		var schema struct {
			Type                 string                     `json:"type"`
			Properties           map[string]json.RawMessage `json:"properties"`
			Required             []string                   `json:"required"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
		}
		if err := json.Unmarshal(spec.InputSchema, &schema); err != nil {
			t.Fatalf("%s: schema does not decode: %v", spec.Name, err)
		}
		if schema.Type != "object" || schema.AdditionalProperties == nil || *schema.AdditionalProperties {
			t.Errorf("%s: schema type %q, additionalProperties %v; want object, false", spec.Name, schema.Type, schema.AdditionalProperties)
		}
		for name, raw := range schema.Properties {
			var prop struct {
				Type        string `json:"type"`
				Description string `json:"description"`
			}
			if err := json.Unmarshal(raw, &prop); err != nil || prop.Type != "string" || prop.Description == "" {
				t.Errorf("%s: property %q = %s; want a described string", spec.Name, name, raw)
			}
		}
		for _, req := range schema.Required {
			if _, ok := schema.Properties[req]; !ok {
				t.Errorf("%s: required %q is not a property", spec.Name, req)
			}
		}
		wantRequired := map[string][]string{"calculator": {"expression"}, "current_time": nil}[spec.Name]
		if !slices.Equal(schema.Required, wantRequired) {
			t.Errorf("%s: required = %v; want %v", spec.Name, schema.Required, wantRequired)
		}
	}
}

func TestRegistryIsImmutable(t *testing.T) {
	r := newToolRegistry(toolTestNow)
	tool, ok := r.Get("calculator")
	if !ok {
		t.Fatal("Get(calculator) not found")
	}
	tool.Name = "changed"
	tool.InputSchema[0] = 'X'
	r.Specs()[0].InputSchema[0] = 'Y'
	r.Names()[0] = "changed"
	again, _ := r.Get("calculator")
	if again.Name != "calculator" || again.InputSchema[0] != '{' {
		t.Errorf("Get after mutation = %q %q; want the original tool", again.Name, again.InputSchema[:1])
	}
	if got := r.Names()[0]; got != "calculator" {
		t.Errorf("Names()[0] after mutation = %q; want calculator", got)
	}
	if got := r.Specs()[0].InputSchema[0]; got != '{' {
		t.Errorf("Specs()[0].InputSchema[0] after mutation = %q; want '{'", got)
	}
	if _, ok := r.Get("nope"); ok {
		t.Error("Get(nope) found a tool")
	}
}

func TestToolRegistryOf(t *testing.T) {
	run := func(context.Context, json.RawMessage) (string, error) { return "ok", nil }
	tests := []struct {
		name    string
		tools   []Tool
		wantErr bool
	}{
		{"empty", nil, false},
		{"two", []Tool{{Name: "b", Run: run}, {Name: "a", Run: run}}, false},
		{"duplicate", []Tool{{Name: "a", Run: run}, {Name: "a", Run: run}}, true},
		{"no name", []Tool{{Run: run}}, true},
		{"no run", []Tool{{Name: "a"}}, true},
	}
	for _, tt := range tests {
		r, err := toolRegistryOf(tt.tools...)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: toolRegistryOf error %v; want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && len(r.Names()) != len(tt.tools) {
			t.Errorf("%s: Names() = %v", tt.name, r.Names())
		}
	}
	r, _ := toolRegistryOf(Tool{Name: "b", Run: run}, Tool{Name: "a", Run: run})
	if got := r.Names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Names() = %v; want [a b]", got)
	}
	var zero ToolRegistry
	if _, ok := zero.Get("a"); ok || len(zero.Specs()) != 0 || len(zero.Names()) != 0 {
		t.Error("zero ToolRegistry is not empty")
	}
}

func TestCalculatorRun(t *testing.T) {
	r := newToolRegistry(toolTestNow)
	tests := []struct {
		input   string
		want    string
		wantErr string
	}{
		{`{"expression":"12*7"}`, "84", ""},
		{`{"expression":"10 / 4"}`, "2.5", ""},
		{` { "expression" : "-2^2" } `, "-4", ""},
		{`{"expression":"1/0"}`, "", "division by zero"},
		{`{"expression":"12*7?"}`, "", `unexpected "?" at position 5`},
		{`{"expression":""}`, "", "empty expression"},
		{`{}`, "", `missing required field "expression"`},
		{`{"expression":5}`, "", `field "expression" must be a string`},
		{`{"expression":null}`, "", `field "expression" must be a string`},
		{`{"expression" :  null }`, "", `field "expression" must be a string`},
		{`{"expression":"1","x":2}`, "", `unknown field "x" (allowed: expression)`},
		{`"12*7"`, "", "input must be a JSON object"},
		{`["12*7"]`, "", "input must be a JSON object"},
		{`null`, "", "input must be a JSON object"},
		{``, "", "input must be a JSON object"},
		{`{"expression":"1"`, "", "input is not valid JSON: unexpected end of JSON input"},
		{`{"expression":"1"} {}`, "", "input is not valid JSON: invalid character '{' after top-level value"},
	}
	for _, tt := range tests {
		got, err := toolTestRun(t, r, "calculator", tt.input)
		switch {
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("calculator(%s) = %q, %v; want error %q", tt.input, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("calculator(%s) = %q, %v; want %q", tt.input, got, err, tt.want)
		}
	}
}

func TestCurrentTimeRun(t *testing.T) {
	r := newToolRegistry(toolTestNow)
	tests := []struct {
		input   string
		want    string
		wantErr string
	}{
		{``, "2026-11-29T14:04:05Z (UTC, Sunday)", ""},
		{`{}`, "2026-11-29T14:04:05Z (UTC, Sunday)", ""},
		{`{"timezone":""}`, "2026-11-29T14:04:05Z (UTC, Sunday)", ""},
		{`{"timezone":"UTC"}`, "2026-11-29T14:04:05Z (UTC, Sunday)", ""},
		{`{"timezone":"Europe/Berlin"}`, "2026-11-29T15:04:05+01:00 (Europe/Berlin, Sunday)", ""},
		{`{"timezone":" europe/berlin "}`, "2026-11-29T15:04:05+01:00 (Europe/Berlin, Sunday)", ""},
		{`{"timezone":"America/New_York"}`, "2026-11-29T09:04:05-05:00 (America/New_York, Sunday)", ""},
		{`{"timezone":"america/new_york"}`, "2026-11-29T09:04:05-05:00 (America/New_York, Sunday)", ""},
		{`{"timezone":"Pacific/Auckland"}`, "2026-11-30T03:04:05+13:00 (Pacific/Auckland, Monday)", ""},
		{`{"timezone":"Tokyo"}`, "2026-11-29T23:04:05+09:00 (Asia/Tokyo, Sunday)", ""},
		{`{"timezone":"New York"}`, "2026-11-29T09:04:05-05:00 (America/New_York, Sunday)", ""},
		{`{"timezone":"gmt"}`, "2026-11-29T14:04:05Z (GMT, Sunday)", ""},
		{`{"timezone":"Mars/Base"}`, "", `unknown time zone "Mars/Base"`},
		{`{"timezone":"Local"}`, "", `unknown time zone "Local"`},
		{`{"timezone":"../../etc/passwd"}`, "", `unknown time zone "../../etc/passwd"`},
		{`{"timezone":"/etc/localtime"}`, "", `unknown time zone "/etc/localtime"`},
		{`{"timezone":3}`, "", `field "timezone" must be a string`},
		{`{"tz":"UTC"}`, "", `unknown field "tz" (allowed: timezone)`},
		{`[]`, "", "input must be a JSON object"},
	}
	for _, tt := range tests {
		got, err := toolTestRun(t, r, "current_time", tt.input)
		switch {
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("current_time(%s) = %q, %v; want error %q", tt.input, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("current_time(%s) = %q, %v; want %q", tt.input, got, err, tt.want)
		}
	}
}

func TestCurrentTimeDefaultClock(t *testing.T) {
	r := newToolRegistry(nil)
	got, err := toolTestRun(t, r, "current_time", `{}`)
	if err != nil {
		t.Fatalf("current_time with nil clock: %v", err)
	}
	if _, err := time.Parse(time.RFC3339, got[:len("2006-01-02T15:04:05Z")]); err != nil {
		t.Errorf("current_time = %q; want an RFC 3339 time: %v", got, err)
	}
}

func TestRunRespectsContext(t *testing.T) {
	r := newToolRegistry(toolTestNow)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inputs := map[string]string{"calculator": `{"expression":"1+1"}`, "current_time": `{}`}
	for _, name := range r.Names() {
		tool, _ := r.Get(name)
		got, err := tool.Run(ctx, json.RawMessage(inputs[name]))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s.Run(cancelled ctx) = %q, %v; want context.Canceled", name, got, err)
		}
	}
}

func TestRegistryConcurrentUse(t *testing.T) {
	r := newToolRegistry(toolTestNow)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				calc, _ := r.Get("calculator")
				if got, err := calc.Run(context.Background(), json.RawMessage(`{"expression":"2^10"}`)); err != nil || got != "1024" {
					t.Errorf("goroutine %d: calculator = %q, %v", i, got, err)
				}
				clock, _ := r.Get("current_time")
				if _, err := clock.Run(context.Background(), json.RawMessage(`{"timezone":"Asia/Tokyo"}`)); err != nil {
					t.Errorf("goroutine %d: current_time: %v", i, err)
				}
				_ = r.Specs()
				_ = r.Names()
			}
		})
	}
	wg.Wait()
}

func TestPlaceZonesLoad(t *testing.T) {
	for _, c := range toolCityZones() {
		if _, err := time.LoadLocation(c.zone); err != nil {
			t.Errorf("place %q: zone %q does not load: %v", c.place, c.zone, err)
		}
		if got := toolNormalizeWords(c.place); got != c.place {
			t.Errorf("place %q is not normalised (%q)", c.place, got)
		}
	}
}
