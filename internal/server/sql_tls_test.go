package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/config"
)

// TestSQLOverTLS: with pg_tls_cert and pg_tls_key set, psql connects with
// sslmode=require and the session is encrypted (pg_stat_ssl is not
// available, so psql's own \conninfo tells).
func TestSQLOverTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, cert, key)
	s := start(t, func(c *config.Config) {
		c.PGAddr = "127.0.0.1:0"
		c.PGTLSCert, c.PGTLSKey = cert, key
	})
	alice := newCLI(t, s)
	alice.login("alice")
	token := strings.TrimSpace(alice.must("", "token"))
	host, port, _ := net.SplitHostPort(s.PGAddr())
	psql := func(sslmode string, args ...string) (string, error) {
		cmd := exec.Command("/usr/bin/psql", append([]string{"-X", "-A", "-t", "-h", host, "-p", port, "-U", "alice", "-d", "steward"}, args...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+token, "PGCONNECT_TIMEOUT=10", "PGSSLMODE="+sslmode)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	out, err := psql("require", "-c", "SELECT 6 * 7", "-c", `\conninfo`)
	if err != nil || !strings.Contains(out, "42") || !strings.Contains(out, "SSL connection") {
		t.Errorf("psql over TLS: %v %q", err, out)
	}
	// TLS is offered, not required, on loopback.
	if out, err := psql("disable", "-c", "SELECT 1"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("psql without TLS on loopback: %v %q", err, out)
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}
