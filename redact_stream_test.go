package main

import (
	"strings"
	"testing"
)

func TestStreamRedactorNeverReleasesASecret(t *testing.T) {
	key := "sk-ant-api03-" + strings.Repeat("AbCdEfGhIjKlMnOp", 6) + "-xyzAA"
	pem := "-----BEGIN RSA PRIVATE KEY-----\n" + strings.Repeat("MIIEpAIBAAKCAQEA7bq98mK2y9vLr1sAbCdEfGhIjK\n", 12) + "-----END RSA PRIVATE KEY-----"
	filler := strings.Repeat("ordinary words of an answer ", 30)
	for _, secret := range []string{key, pem, "4111 1111 1111 1111"} {
		answer := filler + "here it is: " + secret + " and " + filler
		for _, size := range []int{1, 3, 7, 64, 500} {
			var sr streamRedactor
			var out strings.Builder
			for i := 0; i < len(answer); i += size {
				out.WriteString(sr.push(answer[i:min(i+size, len(answer))]))
			}
			out.WriteString(sr.flush())
			got := out.String()
			if strings.Contains(got, secret) || strings.Contains(got, "MIIEpAIBAAKCAQEA") || strings.Contains(got, "1111 1111") {
				t.Fatalf("chunk size %d leaked the secret", size)
			}
			if !strings.Contains(got, "[REDACTED:") || !strings.HasPrefix(got, filler) || !strings.HasSuffix(got, filler) {
				t.Errorf("chunk size %d: text around the secret damaged", size)
			}
			if len(sr.kinds) == 0 {
				t.Errorf("chunk size %d: no kinds reported", size)
			}
		}
	}
	// Ordinary text passes unchanged, whatever the chunking.
	var sr streamRedactor
	var out strings.Builder
	for _, w := range strings.Fields(filler + filler + filler) {
		out.WriteString(sr.push(w + " "))
	}
	out.WriteString(sr.flush())
	if out.String() != strings.Repeat(filler, 3) {
		t.Error("ordinary text was changed")
	}
}
