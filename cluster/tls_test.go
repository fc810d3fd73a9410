package cluster

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
)

// tlsDial opens a TCP connection to addr and runs the client side of the
// TLS handshake with creds (the remote's transport credentials).
func tlsDial(addr string, creds credentials.TransportCredentials) (net.Conn, error) {
	raw, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, _, err := creds.ClientHandshake(ctx, addr, raw)
	if err != nil {
		raw.Close()
		return nil, err
	}
	// TLS 1.3: the server checks the client certificate after the client
	// finished; a refusal arrives as an alert on the first read.
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			_ = conn.SetReadDeadline(time.Time{})
			return conn, nil
		}
		conn.Close()
		return nil, err
	}
	return conn, nil
}
