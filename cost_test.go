package main

import (
	"math"
	"testing"
)

func TestLLMCost(t *testing.T) {
	mtok := Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}
	tests := []struct {
		name          string
		model         string
		u             Usage
		inOver, outOv float64
		want          float64
	}{
		{"sonnet 4.5 exact", "claude-sonnet-4-5", mtok, -1, -1, 3 + 15},
		{"sonnet 4.5 dated snapshot", "claude-sonnet-4-5-20250929", mtok, -1, -1, 18},
		{"sonnet 4 dated id", "claude-sonnet-4-20250514", mtok, -1, -1, 18},
		{"opus 4.5 is cheaper than opus 4.1", "claude-opus-4-5-20251101", mtok, -1, -1, 5 + 25},
		{"opus 4.1", "claude-opus-4-1-20250805", mtok, -1, -1, 15 + 75},
		{"haiku 4.5", "claude-haiku-4-5", mtok, -1, -1, 1 + 5},
		{"haiku 3.5", "claude-3-5-haiku-20241022", mtok, -1, -1, 0.8 + 4},
		{"anthropic cache write 1.25x, read 0.1x", "claude-sonnet-4-5",
			Usage{CacheCreationInputTokens: 1_000_000, CacheReadInputTokens: 1_000_000}, -1, -1, 3.75 + 0.30},
		{"design example", "claude-sonnet-4-5", Usage{InputTokens: 12, OutputTokens: 30}, -1, -1, 0.000486},
		{"gpt-4o", "gpt-4o", mtok, -1, -1, 2.5 + 10},
		{"longest prefix: gpt-4o-mini snapshot", "gpt-4o-mini-2024-07-18", mtok, -1, -1, 0.15 + 0.60},
		{"gpt-4.1-mini", "gpt-4.1-mini", mtok, -1, -1, 0.4 + 1.6},
		{"gpt-5 snapshot", "gpt-5-2025-08-07", mtok, -1, -1, 1.25 + 10},
		{"openai cached input", "gpt-4.1", Usage{CacheReadInputTokens: 1_000_000}, -1, -1, 0.5},
		{"o4-mini", "o4-mini-2025-04-16", mtok, -1, -1, 1.1 + 4.4},
		{"unknown model", "llama3.1:8b", mtok, -1, -1, 0},
		{"prefix must end at a dash", "gpt-5.3", mtok, -1, -1, 0},
		{"unknown opus generation", "claude-opus-4-9", mtok, -1, -1, 0},
		{"empty model", "", mtok, -1, -1, 0},
		{"both overrides", "claude-sonnet-4-5", mtok, 1, 2, 3},
		{"input override keeps cache ratios", "claude-sonnet-4-5",
			Usage{CacheCreationInputTokens: 1_000_000, CacheReadInputTokens: 1_000_000}, 10, -1, 12.5 + 1},
		{"output override only", "gpt-4o", mtok, -1, 1, 2.5 + 1},
		{"override for unknown model", "llama3", Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000, CacheReadInputTokens: 1_000_000}, 1, 2, 1 + 2 + 0.1},
		{"zero override is free", "claude-opus-4-1", mtok, 0, 0, 0},
		{"zero usage", "claude-sonnet-4-5", Usage{}, -1, -1, 0},
	}
	for _, tt := range tests {
		got := llmCost(tt.model, tt.u, tt.inOver, tt.outOv)
		if math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: llmCost(%q, %+v, %v, %v) = %v; want %v", tt.name, tt.model, tt.u, tt.inOver, tt.outOv, got, tt.want)
		}
	}
}
