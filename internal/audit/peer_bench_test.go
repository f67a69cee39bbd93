package audit

// Peers for BenchmarkRecordParallel, measured in the same run with the same
// event and writer count: what durable audit logging costs without group
// commit.

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "modernc.org/sqlite"
)

// BenchmarkPeerAppendFsync is the naive durable logger: one write and one
// fsync per record, serialised by a mutex.
func BenchmarkPeerAppendFsync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line, _ := json.Marshal(event(1))
	line = append(line, '\n')
	var mu sync.Mutex
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			_, err := f.Write(line)
			if err == nil {
				err = f.Sync()
			}
			mu.Unlock()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPeerSQLiteInsert appends each record as a row in SQLite with
// WAL and synchronous=FULL, as a database-backed audit table would.
func BenchmarkPeerSQLiteInsert(b *testing.B) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "audit.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	line, _ := json.Marshal(event(1))
	body := string(line)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := db.ExecContext(ctx, `INSERT INTO audit (body) VALUES (?)`, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
