package main

import "strings"

// llmPrice is a model's price per million tokens.
type llmPrice struct{ in, out, cacheWrite, cacheRead float64 }

// Anthropic: https://platform.claude.com/docs/en/about-claude/pricing
// ("Model pricing": base input, 5m cache writes = 1.25× input, cache
// hits = 0.1× input, output). OpenAI:
// https://platform.openai.com/docs/pricing ("Text tokens": input,
// cached input, output; OpenAI bills no cache writes, so they cost as
// input). Both looked up for this table; prices change, and
// llm.input_cost_per_mtok / output_cost_per_mtok override them.
var llmPriceTable = []struct {
	id string
	p  llmPrice
}{
	{"claude-opus-4-8", llmPrice{5, 25, 6.25, 0.50}},
	{"claude-opus-4-7", llmPrice{5, 25, 6.25, 0.50}},
	{"claude-opus-4-6", llmPrice{5, 25, 6.25, 0.50}},
	{"claude-opus-4-5", llmPrice{5, 25, 6.25, 0.50}},
	{"claude-opus-4-1", llmPrice{15, 75, 18.75, 1.50}},
	{"claude-opus-4-0", llmPrice{15, 75, 18.75, 1.50}},
	{"claude-opus-4-20250514", llmPrice{15, 75, 18.75, 1.50}},
	{"claude-sonnet-4-6", llmPrice{3, 15, 3.75, 0.30}},
	{"claude-sonnet-4-5", llmPrice{3, 15, 3.75, 0.30}},
	{"claude-sonnet-4-0", llmPrice{3, 15, 3.75, 0.30}},
	{"claude-sonnet-4-20250514", llmPrice{3, 15, 3.75, 0.30}},
	{"claude-3-7-sonnet", llmPrice{3, 15, 3.75, 0.30}},
	{"claude-haiku-4-5", llmPrice{1, 5, 1.25, 0.10}},
	{"claude-3-5-haiku", llmPrice{0.80, 4, 1, 0.08}},
	{"claude-3-haiku", llmPrice{0.25, 1.25, 0.30, 0.03}},

	{"gpt-5.4", llmPrice{2.50, 15, 2.50, 0.25}},
	{"gpt-5.4-mini", llmPrice{0.75, 4.50, 0.75, 0.075}},
	{"gpt-5.2", llmPrice{1.75, 14, 1.75, 0.175}},
	{"gpt-5.1", llmPrice{1.25, 10, 1.25, 0.125}},
	{"gpt-5", llmPrice{1.25, 10, 1.25, 0.125}},
	{"gpt-5-mini", llmPrice{0.25, 2, 0.25, 0.025}},
	{"gpt-5-nano", llmPrice{0.05, 0.40, 0.05, 0.005}},
	{"gpt-5-pro", llmPrice{15, 120, 15, 15}},
	{"gpt-4.1", llmPrice{2, 8, 2, 0.50}},
	{"gpt-4.1-mini", llmPrice{0.40, 1.60, 0.40, 0.10}},
	{"gpt-4.1-nano", llmPrice{0.10, 0.40, 0.10, 0.025}},
	{"gpt-4o", llmPrice{2.50, 10, 2.50, 1.25}},
	{"gpt-4o-mini", llmPrice{0.15, 0.60, 0.15, 0.075}},
	{"o3", llmPrice{2, 8, 2, 0.50}},
	{"o3-mini", llmPrice{1.10, 4.40, 1.10, 0.55}},
	{"o4-mini", llmPrice{1.10, 4.40, 1.10, 0.275}},
}

// llmCost returns the USD cost of usage u on model.
//
// Prices come from a built-in table in USD per million tokens unless an
// override is given: inputOverride ≥ 0 replaces the input price (cache
// writes and reads then keep the model's ratio to input, or Anthropic's
// 1.25× and 0.1× for a model not in the table), outputOverride ≥ 0 the
// output price; a negative override means "use the table". A model is found
// by its exact id, else by the longest table id that is a prefix of it
// followed by "-" (dated snapshots such as "claude-sonnet-4-5-20250929" or
// "gpt-4o-2024-08-06"). An unknown model without overrides costs 0.
//
// Usage is in the Anthropic sense: InputTokens excludes cache writes and
// reads, which are priced separately (Anthropic's 5-minute cache-write
// price; the OpenAI clients put cached prompt tokens in CacheRead).
func llmCost(model string, u Usage, inputOverride, outputOverride float64) float64 {
	var p llmPrice
	found := false
	best := -1
	for _, e := range llmPriceTable {
		if e.id == model {
			p, found = e.p, true
			break
		}
		// A dated or suffixed version of a listed model: "<id>-...".
		if len(e.id) > best && len(model) > len(e.id) && model[len(e.id)] == '-' && strings.HasPrefix(model, e.id) {
			p, found, best = e.p, true, len(e.id)
		}
	}
	if inputOverride >= 0 {
		writeRatio, readRatio := 1.25, 0.1
		if found && p.in > 0 {
			writeRatio, readRatio = p.cacheWrite/p.in, p.cacheRead/p.in
		}
		p.in = inputOverride
		p.cacheWrite, p.cacheRead = inputOverride*writeRatio, inputOverride*readRatio
	}
	if outputOverride >= 0 {
		p.out = outputOverride
	}
	return (float64(u.InputTokens)*p.in +
		float64(u.OutputTokens)*p.out +
		float64(u.CacheCreationInputTokens)*p.cacheWrite +
		float64(u.CacheReadInputTokens)*p.cacheRead) / 1e6
}
