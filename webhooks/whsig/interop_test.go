package whsig

import (
	"errors"
	"net/http"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// These tests check our signatures against the Standard Webhooks reference
// Go library (module github.com/standard-webhooks/standard-webhooks/libraries,
// a test-only dependency), B-12. The reference Verify reads time.Now(), so
// the deliveries here are stamped with the wall clock.

func TestReferenceLibraryVerifiesOurSignatures(t *testing.T) {
	oldSecret, newSecret := mustSecret(t), mustSecret(t)
	body := []byte(`{"type":"wallet.low_balance","data":{"platform_id":"plt_1","balance_usd":"4.20"}}`)
	now := time.Now()
	tests := []struct {
		name     string
		keys     [][]byte
		signed   []byte
		verify   string
		received []byte
		wantErr  error
	}{
		{"one secret", [][]byte{mustKey(t, newSecret)}, body, newSecret, body, nil},
		{"rotation old", [][]byte{mustKey(t, oldSecret), mustKey(t, newSecret)}, body, oldSecret, body, nil},
		{"rotation new", [][]byte{mustKey(t, oldSecret), mustKey(t, newSecret)}, body, newSecret, body, nil},
		{"spec vector secret", [][]byte{mustKey(t, vecSecret)}, []byte(vecBody), vecSecret, []byte(vecBody), nil},
		{"tampered body", [][]byte{mustKey(t, newSecret)}, body, newSecret, body[:len(body)-1], standardwebhooks.ErrNoMatchingSignature},
		{"other secret", [][]byte{mustKey(t, oldSecret)}, body, newSecret, body, standardwebhooks.ErrNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Headers(tt.keys, "msg_2b9PZ7cYkTz", now, tt.signed)
			wh, err := standardwebhooks.NewWebhook(tt.verify)
			if err != nil {
				t.Fatal(err)
			}
			err = wh.Verify(tt.received, h)
			if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
				t.Errorf("reference Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestWeVerifyReferenceLibrarySignatures(t *testing.T) {
	secret := mustSecret(t)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"budget.exhausted"}`)
	now := time.Now()
	sig, err := wh.Sign("msg_ref_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_ref_1")
	h.Set(HeaderTimestamp, formatTimestamp(now))
	h.Set(HeaderSignature, sig)
	if err := Verify(secret, h, body, now, 0); err != nil {
		t.Errorf("Verify(reference signature) = %v", err)
	}
	if want := Sign([][]byte{mustKey(t, secret)}, "msg_ref_1", now, body); sig != want {
		t.Errorf("reference Sign = %q, ours = %q", sig, want)
	}
	if err := Verify(secret, h, []byte(`{"type":"budget.exhausted "}`), now, 0); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("Verify(reference signature, tampered body) = %v, want ErrInvalidSignature", err)
	}
}
