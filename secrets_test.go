package main

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Test secrets are assembled at run time so that no scanner flags this file.
func secretTestJWT() string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(`{"sub":"1234567890","name":"A"}`)) +
		"." + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
}

func secretTestPEM(label string) string {
	return "-----BEGIN " + label + "-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n" +
		"VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNb\n-----END " + label + "-----"
}

func TestScanSecretsPositives(t *testing.T) {
	openai := "sk-" + "proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6lMn9o"
	anthropic := "sk-" + "ant-" + "api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa_-Q1w2E3r4T5y6U7i8O9p"
	legacy := "sk-" + strings.Repeat("T3BlbkFJ", 6)
	tests := []struct {
		name, secret, kind string
	}{
		{"openai project", openai, "openai_api_key"},
		{"openai legacy", legacy, "openai_api_key"},
		{"anthropic", anthropic, "anthropic_api_key"},
		{"aws AKIA", "AKIA" + "IOSFODNN7EXAMPLE", "aws_access_key"},
		{"aws ASIA", "ASIA" + "Y34FZKBOKMUTVV7A", "aws_access_key"},
		{"github classic", "ghp_" + "R2d2C3poBb8Ll4Hh6Ss0Yy9Kk1Ww7Qq5Ee3Mm2", "github_token"},
		{"github oauth", "gho_" + "16C7e42F292c6912E7710c838347Ae178B4a", "github_token"},
		{"github fine-grained", "github_pat_" + "11ABCDEFG0123456789abc_defGHIJKLmnopQRSTuvwxYZ0123456789abcdefGHIJKLMNOPQRSTUV", "github_token"},
		{"slack bot", "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"},
		{"slack user", "xoxp-" + "2736541012-98765432109-Zy9x8W", "slack_token"},
		{"service api key", "pa_" + "q4Zt9-_Xk2LmN0pQr5StUv8WxYz1A3bC6dE7fG9hJ0k", "api_key"},
		{"rsa private key", secretTestPEM("RSA PRIVATE KEY"), "private_key"},
		{"pkcs8 private key", secretTestPEM("PRIVATE KEY"), "private_key"},
		{"openssh private key", secretTestPEM("OPENSSH PRIVATE KEY"), "private_key"},
		{"encrypted private key", secretTestPEM("ENCRYPTED PRIVATE KEY"), "private_key"},
		{"jwt", secretTestJWT(), "jwt"},
		{"visa", "4111111111111111", "card_number"},
		{"visa spaced", "4111 1111 1111 1111", "card_number"},
		{"visa dashed", "4012-8888-8888-1881", "card_number"},
		{"visa 13", "4222222222222", "card_number"},
		{"mastercard", "5555 5555 5555 4444", "card_number"},
		{"mastercard 2-series", "2223003122003222", "card_number"},
		{"amex", "3782 822463 10005", "card_number"},
		{"amex plain", "371449635398431", "card_number"},
		{"discover", "6011111111111117", "card_number"},
		{"discover 65", "6500000000000002", "card_number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []string{"%s", "key: %s.", "export X=\"%s\"\n", "(%s)", "Bearer %s, thanks"} {
				in := strings.Replace(wrap, "%s", tt.secret, 1)
				got, kinds := scanSecrets(in)
				want := strings.Replace(wrap, "%s", "[REDACTED:"+tt.kind+"]", 1)
				if got != want || !slices.Equal(kinds, []string{tt.kind}) {
					t.Errorf("scanSecrets(%q) = %q, %v; want %q, [%s]", in, got, kinds, want, tt.kind)
				}
			}
		})
	}
}

func TestScanSecretsNegatives(t *testing.T) {
	negatives := []string{
		"",
		"The quick brown fox jumps over the lazy dog. Nothing secret here!",
		"request id 550e8400-e29b-41d4-a716-446655440000",
		"uuid 12345678-1234-4123-8123-123456789012 in digits",
		"sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"md5 d41d8cd98f00b204e9800998ecf8427e and git 4b825dc642cb6eb9a060e54bf8d69288fbee4904",
		"call +1 (415) 555-2671 or 415-555-2671 415-555-2672",
		"London office: +44 20 7946 0958",
		"Order #4111111111111112 has shipped",                // fails Luhn
		"Your order 4111 1111 1111 1112 is ready",            // fails Luhn
		"tracking 1234-5678-9012-3456 and 1700000000000 ms",  // no card prefix
		"Diners 3056930009020004 and JCB 3530111333300000",   // networks not scanned
		"a 20-digit number 41111111111111111111 is too long", // more than 19 digits
		"glued abc4111111111111111def inside a token",
		"ISBN 978-3-16-148410-0, IP 192.168.1.1, date 2024-01-15 10:30:00, v1.2.3",
		"we use scikit-learn (sk-learn) and the sk- prefix marks keys",
		"risk-assessment-2024-q3-final-report-v2.pdf and task-1234567890abcdefghijklmnopqrstuvwxyz",
		"sk-this-is-a-long-hyphenated-phrase-without-any-numbers-at-all",
		"AKIA is the prefix of AWS access keys; AKIAIOSFODNN7EXAMPL is too short",
		"ghp_ and gho_ are GitHub prefixes; ghp_short123",
		"xoxb-tokens-are-slack-bot-tokens-without-numbers",
		"pa_" + strings.Repeat("a", 42) + " is one character short",
		"eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiIxIn0.c2ln has no alg",
		"eyJhbGciOiJIUzI1NiJ9 alone is only a header",
		"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
		"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
		"Unicode text: naïve café — 東京 🚀 and numbers 42, 3.14159",
	}
	for _, in := range negatives {
		got, kinds := scanSecrets(in)
		if got != in || kinds != nil {
			t.Errorf("scanSecrets(%q) = %q, %v; want it unchanged", in, got, kinds)
		}
	}
}

func TestScanSecretsMixed(t *testing.T) {
	jwt := secretTestJWT()
	in := "Here: AKIA" + "IOSFODNN7EXAMPLE then " + jwt + " and card 4111-1111-1111-1111, again AKIA" +
		"IOSFODNN7EXAMPLE.\n" + secretTestPEM("EC PRIVATE KEY") + "\nbye ✓"
	got, kinds := scanSecrets(in)
	want := "Here: [REDACTED:aws_access_key] then [REDACTED:jwt] and card [REDACTED:card_number], again " +
		"[REDACTED:aws_access_key].\n[REDACTED:private_key]\nbye ✓"
	if got != want {
		t.Errorf("scanSecrets = %q; want %q", got, want)
	}
	if wantKinds := []string{"aws_access_key", "card_number", "jwt", "private_key"}; !slices.Equal(kinds, wantKinds) {
		t.Errorf("kinds = %v; want %v", kinds, wantKinds)
	}
}

func TestScanSecretsEdgeCases(t *testing.T) {
	card := "4111111111111111"
	tests := []struct {
		name, in, want string
	}{
		{"unterminated private key keeps following prose",
			"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIEvQ==\n\n... (truncated), sorry!",
			"[REDACTED:private_key]... (truncated), sorry!"},
		{"secret inside a private key block", "-----BEGIN PRIVATE KEY-----\nAKIA" + "IOSFODNN7EXAMPLE\n-----END PRIVATE KEY----- ok",
			"[REDACTED:private_key] ok"},
		{"detected secret recurring glued to a letter", card + " and x" + card,
			"[REDACTED:card_number] and x[REDACTED:card_number]"},
		{"card after other numbers in one run", "ref 12 4111 1111 1111 1111", "ref 12 [REDACTED:card_number]"},
		{"card followed by a year", "4111 1111 1111 1111 2027", "[REDACTED:card_number] 2027"},
		{"key after a hyphenated word", "token=x-sk-" + "proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c",
			"token=x-[REDACTED:openai_api_key]"},
		{"key glued to a word is kept", "mask-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c",
			"mask-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c"},
	}
	for _, tt := range tests {
		if got, _ := scanSecrets(tt.in); got != tt.want {
			t.Errorf("%s: scanSecrets(%q) = %q; want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestSecretCardValid(t *testing.T) {
	tests := []struct {
		digits string
		want   bool
	}{
		{"4111111111111111", true}, {"4111111111111112", false}, {"5105105105105100", true},
		{"2720999999999996", true}, {"2721000000000004", false}, {"378734493671000", true},
		{"6011000990139424", true}, {"6221260000000000", true}, {"6221250000000001", false},
		{"6221264111111111", false}, {"3530111333300000", false}, {"0000000000000000", false},
		{"4111111111111111110", true}, {"41111111111114", false}, {"3711111111111117", false},
		{"510000000000000008", false},
	}
	for _, tt := range tests {
		if got := secretCardValid([]byte(tt.digits)); got != tt.want {
			t.Errorf("secretCardValid(%s) = %v; want %v", tt.digits, got, tt.want)
		}
	}
}

func FuzzScanSecrets(f *testing.F) {
	for _, s := range []string{
		"", "hello", "4111 1111 1111 1111", "x4111111111111111 4111111111111111", secretTestJWT(),
		secretTestPEM("PRIVATE KEY"), "-----BEGIN PRIVATE KEY-----\nabc", "sk-ant-" + strings.Repeat("a1", 15),
		"AKIA" + "IOSFODNN7EXAMPLE", "eyJ.eyJ.", "pa_" + strings.Repeat("Z9", 21) + "x", "\xff\xfe4111111111111111",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, kinds := scanSecrets(in)
		for _, m := range secretFind(in) {
			if v := in[m.start:m.end]; strings.Contains(out, v) {
				t.Fatalf("scanSecrets(%q) = %q still contains %s %q", in, out, m.kind, v)
			}
		}
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Fatalf("scanSecrets(%q) = %q is not valid UTF-8", in, out)
		}
		if !slices.IsSorted(kinds) || len(slices.Compact(slices.Clone(kinds))) != len(kinds) {
			t.Fatalf("kinds %v not sorted and unique", kinds)
		}
		if len(kinds) == 0 && out != in {
			t.Fatalf("scanSecrets(%q) changed the text without finding a secret", in)
		}
	})
}

func BenchmarkScanSecrets(b *testing.B) {
	para := "The deployment finished at 14:32 on 2024-06-01; 3 of 4 replicas reported healthy and the " +
		"p99 latency was 182 ms. Ask the on-call engineer (ext. 4471) to review ticket OPS-2291 before " +
		"the next release, and remember that task-force notes live in the shared drive under /ops/2024. "
	var sb strings.Builder
	for sb.Len() < 4096 {
		sb.WriteString(para)
	}
	text := sb.String()[:4096]
	if _, kinds := scanSecrets(text); kinds != nil {
		b.Fatalf("benchmark text has secrets: %v", kinds)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		scanSecrets(text)
	}
}

func TestSecretRedactAll(t *testing.T) {
	tests := []struct {
		text   string
		values []string
		want   string
	}{
		{"nothing here", []string{"abc"}, "nothing here"},
		{"xabcx abc", []string{"abc"}, "x[REDACTED:k0]x [REDACTED:k0]"},
		{"he said she", []string{"he", "she", "hers"}, "[REDACTED:k0] said [REDACTED:k1]"},
		{"ushers", []string{"he", "she", "hers"}, "u[REDACTED:k1]"}, // she and hers overlap: one span
		{"aaaa", []string{"aa"}, "[REDACTED:k0]"},
		{"abcd", []string{"bc", "abcd"}, "[REDACTED:k1]"},
		{"xbcdy", []string{"abcd", "bcd", "c"}, "x[REDACTED:k1]y"},
	}
	for _, tt := range tests {
		kinds := make([]string, len(tt.values))
		for i := range kinds {
			kinds[i] = "k" + string(rune('0'+i))
		}
		if got := secretRedactAll(tt.text, tt.values, kinds); got != tt.want {
			t.Errorf("secretRedactAll(%q, %q) = %q; want %q", tt.text, tt.values, got, tt.want)
		}
	}
}

// TestScanSecretsAdversarialInputs runs repetitive 256 KiB inputs that
// would take seconds to minutes with a quadratic step (rescanning runs, Boyer–Moore tables
// of long periodic secrets, END searches per BEGIN line).
func TestScanSecretsAdversarialInputs(t *testing.T) {
	units := []string{"sk-", "-sk-", "eyJ", "eyJ.", "eyJhbGciOiJIUzI1NiJ9.e30.", "-----BEGIN ",
		"-----BEGIN PRIVATE KEY-----", "1 ", "4111 ", "AKIA", "ghp_", "pa_", "xoxb-1", "x4111111111111111 ",
		"4111111111111111 a4111111111111111 "}
	for _, u := range units {
		in := strings.Repeat(u, (1<<18)/len(u))
		out, _ := scanSecrets(in)
		checked := make(map[string]bool)
		for _, m := range secretFind(in) {
			if v := in[m.start:m.end]; !checked[v] {
				checked[v] = true
				if strings.Contains(out, v) {
					t.Fatalf("unit %q: output still contains a %s", u, m.kind)
				}
			}
		}
	}
}
