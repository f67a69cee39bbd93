package fs

import (
	"reflect"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
)

func TestUploadOptsStorage(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   objectstore.PutOptions
	}{
		{"latin-1 metadata", objectstore.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"m": "caf\xe9"}, Tags: map[string]string{"t": "v"}, Initiator: "alice"}},
		{"utf-8", objectstore.PutOptions{Metadata: map[string]string{"m": "café", "Content-Encoding": "gzip"}}},
		{"nothing", objectstore.PutOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := unmarshalOpts(marshalOpts(tc.in))
			if !reflect.DeepEqual(got, tc.in) {
				t.Errorf("round trip: %+v, want %+v", got, tc.in)
			}
		})
	}
	t.Run("written by earlier versions", func(t *testing.T) {
		got := unmarshalOpts(`{"ContentType":"a","Metadata":{"m":"1"},"Tags":{"t":"2"},"IfNoneMatch":"*"}`)
		want := objectstore.PutOptions{ContentType: "a", Metadata: map[string]string{"m": "1"}, Tags: map[string]string{"t": "2"}, IfNoneMatch: "*"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}
