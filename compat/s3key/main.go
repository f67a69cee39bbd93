// Command s3key creates a long-lived S3 access key for an existing service
// account directly in a Steward data dir (its metastore and key-encryption
// key), for compatibility suites that need static keys. Steward has no REST
// endpoint for access keys yet; this is a test tool, not an admin path.
//
// Usage: s3key -data-dir DIR [-metastore DSN] SERVICE_ACCOUNT
//
// It prints "ACCESS_KEY_ID SECRET" on one line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/sts"
)

type noAudit struct{}

func (noAudit) Record(context.Context, steward.AuditEvent) error { return nil }

func main() {
	dataDir := flag.String("data-dir", "", "Steward's data dir (holds keys/kek and the SQLite metastore)")
	dsn := flag.String("metastore", "", "metastore DSN, as given to steward serve")
	flag.Parse()
	if *dataDir == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: s3key -data-dir DIR [-metastore DSN] SERVICE_ACCOUNT")
		os.Exit(2)
	}
	if err := run(context.Background(), *dataDir, *dsn, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "s3key:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dataDir, dsn, sa string) error {
	kek, err := os.ReadFile(filepath.Join(dataDir, "keys", "kek"))
	if err != nil {
		return err
	}
	ms, err := metastore.Open(ctx, dsn, dataDir)
	if err != nil {
		return err
	}
	defer ms.Close()
	noTokens := identity.TokenVerifierFunc(func(context.Context, string) (*steward.Principal, error) {
		return nil, errors.New("no tokens here")
	})
	svc, err := sts.New(sts.Config{}, ms, noTokens, kek, noAudit{}, nil)
	if err != nil {
		return err
	}
	k, secret, err := svc.CreateAccessKey(ctx, sa, "s3 compatibility suite", "compat/s3key")
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", k.AccessKeyID, secret.Reveal())
	return nil
}
