package main

import (
	"slices"
	"strings"
	"testing"
)

func TestFindArithmetic(t *testing.T) {
	tests := []struct {
		text   string
		want   string
		wantOK bool
	}{
		// positives
		{"What is 12*7?", "12*7", true},
		{"what's 3 plus 4 times 2", "3+4*2", true},
		{"calculate (2+3)^2", "(2+3)^2", true},
		{"12 x 7", "12*7", true},
		{"12x7", "12*7", true},
		{"sqrt of 16", "sqrt(16)", true},
		{"What is the square root of 16?", "sqrt(16)", true},
		{"square root of -4", "sqrt(-4)", true},
		{"10 divided by 4", "10/4", true},
		{"6 multiplied by 7", "6*7", true},
		{"What's 7 squared?", "7^2", true},
		{"what is 2 to the power of 10", "2^10", true},
		{"what is 2**10", "2^10", true},
		{"17 mod 5", "17%5", true},
		{"what is 1,000 + 2,500?", "1000+2500", true},
		{"what's max(3, 9, 4)", "max(3,9,4)", true},
		{"compute log2(8) please", "log2(8)", true},
		{"log of 100", "log(100)", true},
		{"what is pi times 2", "pi*2", true},
		{"What is 3 × 4 ÷ 2?", "3*4/2", true},
		{"what is -3 + 5", "-3+5", true},
		{"What is 2.5 * 4.", "2.5*4", true},
		{"(what is 2+2)", "2+2", true},
		{"what is 2 + 2 = ?", "2+2", true},
		{"what is 1/0", "1/0", true},
		{"what is 1/2", "1/2", true},
		{"what's 555-1234", "555-1234", true},
		{"10-4", "10-4", true},
		{"first 1+1 then (2+3)*4", "(2+3)*4", true},
		{"I bought 3 apples at 0.5 each, 3 * 0.5 in total", "3*0.5", true},
		// negatives
		{"Hello", "", false},
		{"squared squared", "", false}, // a word's exponent is no operand (fuzzing found 2^2)
		{"times cubed", "", false},
		{"what's up", "", false},
		{"I'm 25 years old", "", false},
		{"I have 3 cats", "", false},
		{"2024-01-05", "", false},
		{"what happened on 2024-01-05?", "", false},
		{"the meeting is on 01/05/2024", "", false},
		{"meet me 12/25", "", false},
		{"version 1.2.3", "", false},
		{"call me at 555-1234", "", false},
		{"call 1-800-555-1234", "", false},
		{"I'll be 5 - 10 minutes late", "", false},
		{"the score was 3-2", "", false},
		{"COVID-19 cases", "", false},
		{"15% of 200", "", false},
		{"round of 16", "", false},
		{"wait 5 min", "", false},
		{"I take it 3 times a day", "", false},
		{"I'm 5'10\"", "", false},
		{"it's 5:30", "", false},
		{"", "", false},
		{"what is x", "", false},
		{"sqrt", "", false},
		{"what is 1.2.3", "", false},
	}
	for _, tt := range tests {
		got, ok := findArithmetic(tt.text)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("findArithmetic(%q) = %q, %v; want %q, %v", tt.text, got, ok, tt.want, tt.wantOK)
		}
		// The lexer itself, without the no-operand shortcut, must agree.
		if got, ok := findArithmeticIn(tt.text); got != tt.want || ok != tt.wantOK {
			t.Errorf("findArithmeticIn(%q) = %q, %v; want %q, %v", tt.text, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestFindArithmeticResultsEvaluate(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"What is 12*7?", "84"},
		{"what's 3 plus 4 times 2", "11"},
		{"calculate (2+3)^2", "25"},
		{"square root of 16", "4"},
		{"10 divided by 4", "2.5"},
	}
	for _, tt := range tests {
		expr, ok := findArithmetic(tt.text)
		if !ok {
			t.Errorf("findArithmetic(%q) found nothing", tt.text)
			continue
		}
		v, err := evalArithmetic(expr)
		if got := formatNumber(v); err != nil || got != tt.want {
			t.Errorf("evalArithmetic(findArithmetic(%q) = %q) = %q, %v; want %q", tt.text, expr, got, err, tt.want)
		}
	}
}

func FuzzFindArithmetic(f *testing.F) {
	for _, seed := range []string{
		"What is 12*7?", "sqrt of 16", "2024-01-05", "what is 1,000,000 + 2", "max(1, 2", "x x x",
		"square root of", "log2", "5 squared squared", "what is ((((1", "π times π", "1e5 plus .5",
		"what is PI times two", "sqrt of Pi", "½ + ¾", "hello there",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		expr, ok := findArithmetic(text)
		if len(text) <= 4*calcMaxExprBytes {
			if fullExpr, fullOK := findArithmeticIn(text); fullExpr != expr || fullOK != ok {
				t.Errorf("findArithmetic(%q) = %q, %v; without the operand shortcut %q, %v", text, expr, ok, fullExpr, fullOK)
			}
		}
		if !ok {
			if expr != "" {
				t.Errorf("findArithmetic(%q) = %q, false; want empty expression", text, expr)
			}
			return
		}
		if _, err := calcParse(expr); err != nil {
			t.Errorf("findArithmetic(%q) = %q, which does not parse: %v", text, expr, err)
		}
		if strings.ContainsAny(expr, " \t\n") {
			t.Errorf("findArithmetic(%q) = %q; want no whitespace", text, expr)
		}
	})
}

func TestWantsTime(t *testing.T) {
	tests := []struct {
		text     string
		wantZone string
		wantOK   bool
	}{
		{"what time is it", "", true},
		{"What time is it?", "", true},
		{"what's the time", "", true},
		{"What’s the date today?", "", true},
		{"what is the date", "", true},
		{"what day is it today", "", true},
		{"tell me the current date and time please", "", true},
		{"current time in Tokyo", "Asia/Tokyo", true},
		{"What time is it in New York right now?", "America/New_York", true},
		{"what's the time in los angeles", "America/Los_Angeles", true},
		{"time in London?", "Europe/London", true},
		{"the time in Paris", "Europe/Paris", true},
		{"What time is it in Europe/Berlin?", "Europe/Berlin", true},
		{"what time is it in america/sao_paulo", "America/Sao_Paulo", true},
		{"local time in Sydney", "Australia/Sydney", true},
		{"What time is it in UTC?", "UTC", true},
		{"what time is it in GMT", "UTC", true},
		{"what time is it in Mars/Base", "", true},
		{"What's today's date in Berlin?", "Europe/Berlin", true},
		// negatives
		{"Hello", "", false},
		{"I had a great time in Paris", "", false},
		{"what time should we meet?", "", false},
		{"What's the time complexity of quicksort?", "", false},
		{"what's the date of easter next year", "", false},
		{"please update my profile", "", false},
		{"save the date for Tokyo", "", false},
		{"Europe/Berlin is nice", "", false},
		{"What is 12*7?", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		zone, ok := wantsTime(tt.text)
		if zone != tt.wantZone || ok != tt.wantOK {
			t.Errorf("wantsTime(%q) = %q, %v; want %q, %v", tt.text, zone, ok, tt.wantZone, tt.wantOK)
		}
	}
}

func TestToolNormalizeWords(t *testing.T) {
	tests := []struct{ in, want string }{
		{"What's the TIME?", "whats the time"},
		{"  New   York!! ", "new york"},
		{"america/new_york", "america new york"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := toolNormalizeWords(tt.in); got != tt.want {
			t.Errorf("toolNormalizeWords(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestTimeWordsCoverPhrases: the quick rejection in toolHasTimePhrase is only
// sound when every time phrase holds one of toolTimeWords.
func TestTimeWordsCoverPhrases(t *testing.T) {
	for _, p := range toolTimePhraseTable {
		if !slices.ContainsFunc(toolTimeWords, func(w string) bool { return strings.Contains(p, w) }) {
			t.Errorf("time phrase %q holds none of the time words", p)
		}
	}
}

// FuzzNormalizeWordsASCII: the ASCII fast path of toolNormalizeWords gives
// what the general one gives.
func FuzzNormalizeWordsASCII(f *testing.F) {
	for _, seed := range []string{"What's the TIME in New-York?", "  a  b ", "it's 5 o'clock", "x\x7f\ty", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := toolNormalizeASCII(s)
		if !ok {
			return
		}
		if slow := toolNormalizeUnicode(s); fast != slow {
			t.Errorf("toolNormalizeASCII(%q) = %q; the general path gives %q", s, fast, slow)
		}
	})
}
