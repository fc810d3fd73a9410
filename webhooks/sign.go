package webhooks

import (
	"time"

	"github.com/assistiv/gateway/webhooks/whsig"
)

// newSecret returns a fresh signing secret ("whsec_" + base64 of 32 random
// bytes).
func newSecret() (string, error) { return whsig.NewSecret() }

// checkSecret validates a caller-supplied secret for a rotation.
func checkSecret(s string) error {
	if _, err := whsig.ParseSecret(s); err != nil {
		return invalid("invalid_secret", "secret must be whsec_ followed by the standard base64 of 24 to 64 bytes")
	}
	return nil
}

// sign returns the webhook-signature header of one attempt at ts: one v1
// signature per secret, current first.
func sign(msgID string, ts time.Time, body []byte, secrets []string) (string, error) {
	keys := make([][]byte, 0, len(secrets))
	for _, sec := range secrets {
		k, err := whsig.ParseSecret(sec)
		if err != nil {
			return "", err
		}
		keys = append(keys, k)
	}
	return whsig.Sign(keys, msgID, ts, body), nil
}
