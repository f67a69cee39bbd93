package pgwire

import (
	"crypto/tls"

	"github.com/stewardhq/steward"
)

// LoadTLS reads a PEM certificate (chain) and key for SetTLS. It accepts
// TLS 1.2 and later.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, steward.WrapError(steward.EInvalid, "pgwire.LoadTLS", err, "cannot load the TLS certificate and key: "+err.Error())
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
