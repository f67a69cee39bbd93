package ranger

import (
	"bytes"
	"os"
	"testing"
)

func BenchmarkImportHiveTrino(b *testing.B) {
	data, err := os.ReadFile("testdata/hive_trino_export.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Import(bytes.NewReader(data), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
