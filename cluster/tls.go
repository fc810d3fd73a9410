package cluster

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"time"

	"google.golang.org/grpc/credentials"
)

// KeySize is the length of the cluster key: 32 random bytes, given as
// standard base64 in ASSISTIV_CLUSTER_KEY.
const KeySize = 32

// ParseKey decodes a cluster key (standard base64 of 32 bytes).
func ParseKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("cluster: key is not standard base64: %w", err)
	}
	if len(k) != KeySize {
		return nil, fmt.Errorf("cluster: key has %d bytes, want %d", len(k), KeySize)
	}
	return k, nil
}

// The cluster key protects both channels between nodes:
//
//   - gossip (memberlist): the key is memberlist's keyring key, so every
//     gossip packet and push/pull stream is sealed with AES-256-GCM, and
//     packets not sealed with it are dropped;
//   - actor messages (protoactor remote, gRPC): mutual TLS 1.3 with one
//     Ed25519 certificate that every node derives from the key (HKDF-SHA256,
//     info "assistiv cluster remote tls v1"). Each side accepts a peer only
//     if the peer's certificate carries that public key, which only a
//     holder of the cluster key can prove (the TLS handshake signs with the
//     private key). Certificate chains and host names are not used: the
//     key is the trust anchor. A node without the key can neither read nor
//     send gossip or actor messages.
//
// The two uses never share key material: memberlist gets the raw key, TLS
// a key derived from it with its own HKDF label.

// remoteCredentials returns the gRPC transport credentials of the remote.
func remoteCredentials(key []byte) (credentials.TransportCredentials, error) {
	seed, err := hkdf.Key(sha256.New, key, nil, "assistiv cluster remote tls v1", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "assistiv-cluster"},
		NotBefore:             time.Unix(0, 0),
		NotAfter:              time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, err
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("cluster: peer sent no certificate")
		}
		c, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		k, ok := c.PublicKey.(ed25519.PublicKey)
		if !ok || !bytes.Equal(k, pub) {
			return errors.New("cluster: peer does not hold the cluster key")
		}
		return nil
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		// Chains and names are not checked: VerifyPeerCertificate pins
		// the derived key, on both sides.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verify,
	}
	return credentials.NewTLS(cfg), nil
}
