package whsig

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The specification's known-answer vector: the reference Go library's
// TestWebhookSign (standard-webhooks/libraries go/webhook_test.go, v0.0.1).
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecStamp  = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustKey(tb testing.TB, secret string) []byte {
	tb.Helper()
	k, err := ParseSecret(secret)
	if err != nil {
		tb.Fatalf("ParseSecret: %v", err)
	}
	return k
}

func mustSecret(tb testing.TB) string {
	tb.Helper()
	s, err := NewSecret()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func header(id, stamp, sig string) http.Header {
	h := http.Header{}
	if id != "" {
		h.Set(HeaderID, id)
	}
	if stamp != "" {
		h.Set(HeaderTimestamp, stamp)
	}
	if sig != "" {
		h.Set(HeaderSignature, sig)
	}
	return h
}

func TestSignMatchesSpecVector(t *testing.T) {
	ts := time.Unix(vecStamp, 0)
	got := Sign([][]byte{mustKey(t, vecSecret)}, vecID, ts, []byte(vecBody))
	if got != vecSig {
		t.Fatalf("Sign(spec vector) = %q, want %q", got, vecSig)
	}
	h := Headers([][]byte{mustKey(t, vecSecret)}, vecID, ts, []byte(vecBody))
	if h.Get(HeaderID) != vecID || h.Get(HeaderTimestamp) != "1614265330" || h.Get(HeaderSignature) != vecSig {
		t.Errorf("Headers(spec vector) = %v", h)
	}
	if err := Verify(vecSecret, h, []byte(vecBody), ts, 0); err != nil {
		t.Errorf("Verify(spec vector) = %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	ts := time.Unix(vecStamp, 0)
	body := []byte(vecBody)
	tests := []struct {
		name   string
		secret string
		h      http.Header
		body   string
		want   error
	}{
		{"tampered body", vecSecret, header(vecID, "1614265330", vecSig), `{"test": 2432232315}`, ErrInvalidSignature},
		{"body with trailing newline", vecSecret, header(vecID, "1614265330", vecSig), vecBody + "\n", ErrInvalidSignature},
		{"tampered id", vecSecret, header("msg_p5jXN8AQM9LWM0D4loKWxJeK", "1614265330", vecSig), vecBody, ErrInvalidSignature},
		{"tampered timestamp", vecSecret, header(vecID, "1614265331", vecSig), vecBody, ErrInvalidSignature},
		{"tampered signature", vecSecret, header(vecID, "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ2OE="), vecBody, ErrInvalidSignature},
		{"non-canonical padding bits", vecSecret, header(vecID, "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF="), vecBody, ErrInvalidSignature},
		{"wrong secret", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 24)), header(vecID, "1614265330", vecSig), vecBody, ErrInvalidSignature},
		{"right mac wrong version", vecSecret, header(vecID, "1614265330", "v1a,"+vecSig[3:]), vecBody, ErrInvalidSignature},
		{"only unknown version", vecSecret, header(vecID, "1614265330", "v2,"+vecSig[3:]), vecBody, ErrInvalidSignature},
		{"no comma", vecSecret, header(vecID, "1614265330", "v1"+vecSig[3:]), vecBody, ErrInvalidSignature},
		{"unpadded", vecSecret, header(vecID, "1614265330", strings.TrimSuffix(vecSig, "=")), vecBody, ErrInvalidSignature},
		{"raw url base64", vecSecret, header(vecID, "1614265330", "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE="), vecBody, ErrInvalidSignature},
		{"truncated", vecSecret, header(vecID, "1614265330", vecSig[:20]), vecBody, ErrInvalidSignature},
		{"missing id", vecSecret, header("", "1614265330", vecSig), vecBody, ErrMissingHeaders},
		{"missing timestamp", vecSecret, header(vecID, "", vecSig), vecBody, ErrMissingHeaders},
		{"missing signature", vecSecret, header(vecID, "1614265330", ""), vecBody, ErrMissingHeaders},
		{"timestamp with plus", vecSecret, header(vecID, "+1614265330", vecSig), vecBody, ErrInvalidHeaders},
		{"timestamp leading zero", vecSecret, header(vecID, "01614265330", vecSig), vecBody, ErrInvalidHeaders},
		{"timestamp with space", vecSecret, header(vecID, "1614265330 ", vecSig), vecBody, ErrInvalidHeaders},
		{"timestamp fraction", vecSecret, header(vecID, "1614265330.0", vecSig), vecBody, ErrInvalidHeaders},
		{"timestamp milliseconds", vecSecret, header(vecID, "1614265330000", vecSig), vecBody, ErrTimestampTooNew},
		{"timestamp negative", vecSecret, header(vecID, "-1", vecSig), vecBody, ErrInvalidHeaders},
		{"timestamp overflow", vecSecret, header(vecID, "99999999999999999999", vecSig), vecBody, ErrInvalidHeaders},
		{"bad secret", "whsec_short", header(vecID, "1614265330", vecSig), vecBody, ErrInvalidSecret},
	}
	if err := Verify(vecSecret, header(vecID, "1614265330", vecSig), body, ts, 0); err != nil {
		t.Fatalf("Verify(untampered) = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.secret, tt.h, []byte(tt.body), ts, 0); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyAcceptsAnyMatchingSignature(t *testing.T) {
	ts := time.Unix(vecStamp, 0)
	bogus := "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	tests := []struct {
		name string
		sig  string
	}{
		{"valid first", vecSig + " " + bogus},
		{"valid last", bogus + " " + vecSig},
		{"after unknown versions", "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== v2,abc " + vecSig},
		{"extra spaces", "  " + bogus + "   " + vecSig + " "},
		{"garbage entries", ", v1, ,v1 v1,%%% " + vecSig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(vecSecret, header(vecID, "1614265330", tt.sig), []byte(vecBody), ts, 0); err != nil {
				t.Errorf("Verify(%q) = %v, want nil", tt.sig, err)
			}
		})
	}
}

// TestRotationSignsWithEverySecret: during an endpoint's secret rotation the
// delivery carries one v1 signature per secret and verifies under each.
func TestRotationSignsWithEverySecret(t *testing.T) {
	oldSecret, newSecret := mustSecret(t), mustSecret(t)
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"type":"budget.exhausted"}`)
	h := Headers([][]byte{mustKey(t, oldSecret), mustKey(t, newSecret)}, "msg_1", now, body)
	sigs := strings.Split(h.Get(HeaderSignature), " ")
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") || sigs[0] == sigs[1] {
		t.Fatalf("signature header = %q, want two distinct v1 signatures", h.Get(HeaderSignature))
	}
	for _, tt := range []struct{ name, secret string }{{"old secret", oldSecret}, {"new secret", newSecret}} {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.secret, h, body, now, 0); err != nil {
				t.Errorf("Verify = %v", err)
			}
		})
	}
	if err := Verify(mustSecret(t), h, body, now, 0); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("Verify(third secret) = %v, want ErrInvalidSignature", err)
	}
	if got := Sign(nil, "msg_1", now, body); got != "" {
		t.Errorf("Sign(no keys) = %q, want empty", got)
	}
}

func TestVerifyToleranceEdges(t *testing.T) {
	sent := time.Unix(vecStamp, 0)
	h := header(vecID, "1614265330", vecSig)
	tests := []struct {
		name      string
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{"same second", sent, 0, nil},
		{"exactly default tolerance late", sent.Add(5 * time.Minute), 0, nil},
		{"one nanosecond past late", sent.Add(5*time.Minute + 1), 0, ErrTimestampTooOld},
		{"one second past late", sent.Add(5*time.Minute + time.Second), 0, ErrTimestampTooOld},
		{"exactly default tolerance early", sent.Add(-5 * time.Minute), 0, nil},
		{"one second past early", sent.Add(-5*time.Minute - time.Second), 0, ErrTimestampTooNew},
		{"negative tolerance is default", sent.Add(4 * time.Minute), -time.Second, nil},
		{"custom tolerance inside", sent.Add(30 * time.Second), 30 * time.Second, nil},
		{"custom tolerance outside late", sent.Add(31 * time.Second), 30 * time.Second, ErrTimestampTooOld},
		{"custom tolerance outside early", sent.Add(-31 * time.Second), 30 * time.Second, ErrTimestampTooNew},
		{"replay a day later", sent.Add(24 * time.Hour), 0, ErrTimestampTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(vecSecret, h, []byte(vecBody), tt.now, tt.tolerance); !errors.Is(err, tt.want) || tt.want == nil && err != nil {
				t.Errorf("Verify(now %v, tolerance %v) = %v, want %v", tt.now.Sub(sent), tt.tolerance, err, tt.want)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	s := mustSecret(t)
	if !strings.HasPrefix(s, SecretPrefix) {
		t.Fatalf("NewSecret() = %q, want whsec_ prefix", s)
	}
	if k := mustKey(t, s); len(k) != 32 {
		t.Errorf("NewSecret key is %d bytes, want 32", len(k))
	}
	if s2 := mustSecret(t); s2 == s {
		t.Errorf("NewSecret repeated a secret")
	}
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"spec vector", vecSecret, true},
		{"no prefix", strings.TrimPrefix(vecSecret, SecretPrefix), true},
		{"24 bytes", "whsec_" + b64(24), true},
		{"64 bytes", "whsec_" + b64(64), true},
		{"23 bytes", "whsec_" + b64(23), false},
		{"65 bytes", "whsec_" + b64(65), false},
		{"empty", "", false},
		{"prefix only", "whsec_", false},
		{"not base64", "whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", false},
		{"url alphabet", "whsec_" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16))), false},
		{"asymmetric key", "whsk_" + b64(32), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSecret(tt.in)
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalidSecret) {
				t.Errorf("ParseSecret(%q) = %v, want ok %v", tt.in, err, tt.ok)
			}
		})
	}
}

func TestSignatureHeaderParsing(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []string // version:value
	}{
		{"empty", "", nil},
		{"one", "v1,abc", []string{"v1:abc"}},
		{"two", "v1,abc v1a,def", []string{"v1:abc", "v1a:def"}},
		{"comma in value", "v1,a,b", []string{"v1:a,b"}},
		{"no version", ",abc v1,x", []string{"v1:x"}},
		{"no comma", "v1abc", nil},
		{"tabs and spaces", "\tv1,a  v2,b ", []string{"v1:a", "v2:b"}},
		{"empty value", "v1,", []string{"v1:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for v, val := range signatures(tt.header) {
				got = append(got, v+":"+val)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("signatures(%q) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

// FuzzVerifySignatureHeader: no header makes Verify panic, and Verify
// accepts only headers holding the genuine signature.
func FuzzVerifySignatureHeader(f *testing.F) {
	for _, s := range []string{vecSig, "", "v1,", ",", "v1a,x v1,y", vecSig + " " + vecSig, "v1," + strings.Repeat("A", 44),
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", "v1,,,, ,,, v1", "\x00v1,\xff"} {
		f.Add(s, "1614265330")
	}
	now := time.Unix(vecStamp, 0)
	f.Fuzz(func(t *testing.T, sig, stamp string) {
		h := http.Header{}
		h.Set(HeaderID, vecID)
		h.Set(HeaderTimestamp, stamp)
		h.Set(HeaderSignature, sig)
		err := Verify(vecSecret, h, []byte(vecBody), now, 0)
		n := 0
		for v, val := range signatures(sig) {
			n++
			if v == "" || strings.ContainsAny(v, ", \t\n") || strings.ContainsAny(val, " \t\n") {
				t.Fatalf("signatures(%q) yielded version %q value %q", sig, v, val)
			}
		}
		if n > len(sig)/2+1 {
			t.Fatalf("signatures(%q) yielded %d entries", sig, n)
		}
		if err == nil {
			if stamp != "1614265330" || !strings.Contains(" "+sig+" ", " "+vecSig+" ") && !strings.Contains(sig, vecSig) {
				t.Fatalf("Verify accepted signature %q timestamp %q", sig, stamp)
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	keys := [][]byte{mustKey(b, vecSecret)}
	body := []byte(strings.Repeat(`{"type":"usage.recorded"}`, 40))
	now := time.Unix(vecStamp, 0)
	for b.Loop() {
		Sign(keys, vecID, now, body)
	}
}
