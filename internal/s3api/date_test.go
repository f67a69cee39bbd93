package s3api

import (
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(2026, 11, 26, 8, 50, 7, 0, time.UTC)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"Thu, 26 Nov 2026 08:50:07 GMT", true},
		{"Thu, 26 Nov 2026 08:50:07 -0000", true}, // Python's email.utils.formatdate, as botocore signs
		{"Thu, 26 Nov 2026 09:50:07 +0100", true},
		{"Thursday, 26-Nov-26 08:50:07 GMT", true},
		{"Thu Nov 26 08:50:07 2026", true},
		{"20261126T085007Z", false},
		{"", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseHTTPDate(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !got.Equal(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}
