package sqlengine_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/sqlengine"
)

type oneTable struct{}

func (oneTable) Table(_ context.Context, name string) (*sqlengine.Table, error) {
	if name != "a.b.c" {
		return nil, steward.Errorf(steward.ENotFound, "no")
	}
	return &sqlengine.Table{Name: name, Bucket: "a", Prefix: "b/c", Format: "csv", Columns: []sqlengine.Column{{Name: "x", Type: "INTEGER"}}}, nil
}
func (oneTable) Tables(context.Context, *steward.Principal) ([]*sqlengine.Table, error) {
	return nil, nil
}

type allowAll struct{}

func (allowAll) Decide(_ *policy.Request, d *policy.Decision) { d.Reset(); d.Allowed = true }

type noObjects struct{}

func (noObjects) Get(context.Context, string, string, objectstore.GetOptions) (io.ReadCloser, objectstore.ObjectInfo, error) {
	return nil, objectstore.ObjectInfo{}, steward.Errorf(steward.ENotFound, "no")
}
func (noObjects) List(context.Context, string, objectstore.ListOptions) (objectstore.ListResult, error) {
	return objectstore.ListResult{}, nil
}

type backend struct{ ran bool }

func (b *backend) Analyze(context.Context, string) (*sqlengine.Analysis, error) {
	return &sqlengine.Analysis{Tables: []sqlengine.TableRef{{"a", "b", "c"}}}, nil
}
func (b *backend) Run(context.Context, *sqlengine.Run, sqlengine.RowSink) (int64, error) {
	b.ran = true
	return 0, nil
}

type failingAuditor struct{}

func (failingAuditor) Record(context.Context, steward.AuditEvent) error {
	return errors.New("disk full")
}

type nopSink struct{}

func (nopSink) Columns([]sqlengine.Column) error { return nil }
func (nopSink) Row([]any) error                  { return nil }

// TestAuditFailsClosed: no query runs unless its authorization is on the
// audit trail.
func TestAuditFailsClosed(t *testing.T) {
	b := &backend{}
	svc := sqlengine.New(sqlengine.Config{Tables: oneTable{}, Decider: allowAll{}, Objects: noObjects{}, Backend: b, Auditor: failingAuditor{}, TempDir: t.TempDir()})
	_, err := svc.Query(context.Background(), sqlengine.Request{Principal: &steward.Principal{Username: "alice"}, SQL: "SELECT x FROM a.b.c"}, nopSink{})
	if steward.KindOf(err) != steward.EUnavailable || b.ran {
		t.Fatalf("err %v, ran %v", err, b.ran)
	}
}

func TestAnonymousRefused(t *testing.T) {
	b := &backend{}
	svc := sqlengine.New(sqlengine.Config{Tables: oneTable{}, Decider: allowAll{}, Objects: noObjects{}, Backend: b, Auditor: failingAuditor{}})
	_, err := svc.Query(context.Background(), sqlengine.Request{SQL: "SELECT 1"}, nopSink{})
	if sqlengine.SQLState(err) != sqlengine.StateAuth || b.ran {
		t.Fatalf("err %v", err)
	}
}

type uncrawled struct{}

func (uncrawled) Table(_ context.Context, name string) (*sqlengine.Table, error) {
	return &sqlengine.Table{Name: name, Bucket: "a", Prefix: "b/c", Format: "parquet"}, nil
}
func (uncrawled) Tables(context.Context, *steward.Principal) ([]*sqlengine.Table, error) {
	return nil, nil
}

type okAuditor struct{}

func (okAuditor) Record(context.Context, steward.AuditEvent) error { return nil }

// A table the catalog registered but has not crawled yet has no columns:
// the user is told to wait (55000), not that every column is denied.
func TestUncrawledTableIsNotReady(t *testing.T) {
	b := &backend{}
	svc := sqlengine.New(sqlengine.Config{Tables: uncrawled{}, Decider: allowAll{}, Objects: noObjects{}, Backend: b, Auditor: okAuditor{}, TempDir: t.TempDir()})
	_, err := svc.Query(context.Background(), sqlengine.Request{Principal: &steward.Principal{Username: "alice"}, SQL: "SELECT * FROM a.b.c"}, nopSink{})
	if sqlengine.SQLState(err) != sqlengine.StateNotReady || steward.KindOf(err) != steward.EUnavailable || b.ran {
		t.Fatalf("err %v (SQLSTATE %s), ran %v", err, sqlengine.SQLState(err), b.ran)
	}
}
