package catalog

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/policy"
)

var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestValueDetectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(string) bool
		yes  []string
		no   []string
	}{
		{"email", IsEmail, []string{"alice@example.com", "a.b+c@bank.co.uk"}, []string{"alice@", "@example.com", "alice example.com", "a@b"}},
		{"iban", IsIBAN, []string{"BE68539007547034", "BE68 5390 0754 7034", "NL91ABNA0417164300", "DE89370400440532013000"}, []string{"BE68539007547035", "XX00", "1234567890123456", "BE6853900754703A4"}},
		{"card", IsCardNumber, []string{"4111111111111111", "5500 0000 0000 0004", "3782-822463-10005"}, []string{"4111111111111112", "1234567812345670", "411111", "abcd"}},
		{"phone", IsPhone, []string{"+32 2 123 45 67", "(555) 123-4567", "0471234567"}, []string{"12", "hello", "2024-01-01"}},
		{"national id", IsNationalID, []string{"85.07.30-033.28", "85073003328", "123-45-6789", "111222333"}, []string{"85073003329", "000-12-3456", "123456789"}},
		{"person", IsPersonName, []string{"Alice Martin", "Jan de Vries", "Peeters, Marie"}, []string{"alice martin", "Acme Corp", "Hello"}},
		{"address", IsAddress, []string{"12 Main Street", "Rue de la Loi 16", "Kerkstraat 5", "221B Baker Street"}, []string{"Brussels", "12", "hello world"}},
		{"birth date", func(s string) bool { return IsBirthDate(s, testNow) }, []string{"1980-05-17", "17/05/1980"}, []string{"2020-01-01", "1850-01-01", "tomorrow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range tc.yes {
				if !tc.fn(v) {
					t.Errorf("%q not detected", v)
				}
			}
			for _, v := range tc.no {
				if tc.fn(v) {
					t.Errorf("%q wrongly detected", v)
				}
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		column string
		sample []string
		kind   string
	}{
		{"contact", []string{"a@x.com", "b@y.org", "c@z.net", ""}, KindEmail},
		{"email", nil, KindEmail},
		{"customer_email", nil, KindEmail},
		{"acct", []string{"BE68539007547034", "NL91ABNA0417164300", "junk"}, KindIBAN},
		{"dob", []string{"1980-01-02", "1975-12-31"}, KindBirthDate},
		{"booked", []string{"1980-01-02", "1975-12-31"}, ""},
		{"amount", []string{"12.5", "13", "14"}, ""},
		{"holder", []string{"Alice Martin", "Peter Jansen", "Marie Dubois"}, KindPersonName},
		{"note", []string{"a@x.com", "hello", "world", "again"}, ""},
		{"tx_id", []string{"1000000001", "1000000002", "12000416673"}, ""},
		{"mobile", []string{"0471234567", "0472345678"}, KindPhone},
		{"callback", []string{"0471234567", "0472345678"}, KindPhone},
	} {
		t.Run(tc.column, func(t *testing.T) {
			d, ok := Detect(tc.column, tc.sample, testNow)
			if got := map[bool]string{true: d.Kind}[ok]; got != tc.kind {
				t.Errorf("kind %q (%+v), want %q", got, d, tc.kind)
			}
			if ok && (d.Confidence <= 0 || d.Confidence > 1 || d.Reason == "") {
				t.Errorf("detection %+v", d)
			}
		})
	}
}

func TestApplyDetections(t *testing.T) {
	d := &Dataset{Namespace: "s3://b", Name: "x", Classification: "C1",
		Schema: []Column{{Name: "email"}, {Name: "holder"}, {Name: "card"}}}
	dets := []Detection{
		{Column: "email", Kind: KindEmail, Confidence: 0.9},
		{Column: "holder", Kind: KindPersonName, Confidence: 0.9},
		{Column: "card", Kind: KindCard, Confidence: 0.5},
	}
	ApplyDetections(d, dets, DefaultRules())
	ApplyDetections(d, dets, DefaultRules()) // idempotent
	if !HasTag(d.Column("email").Tags, TagPII) || d.Level() != policy.C3 {
		t.Errorf("email rule not applied: %+v %s", d.Column("email"), d.Classification)
	}
	if len(d.Column("email").Tags) != 1 {
		t.Errorf("tags duplicated: %+v", d.Column("email").Tags)
	}
	if len(d.Suggestions) != 2 || d.Suggestions[0].Status != SuggestionPending {
		t.Errorf("suggestions %+v", d.Suggestions)
	}
}

func FuzzDetectors(f *testing.F) {
	for _, s := range []string{"BE68539007547034", "4111111111111111", "a@b.com", "+32 2 123 45 67", "85.07.30-033.28", "Alice Martin", "12 Main Street", "1980-01-02", "", "\xff", "é@é.é"} {
		f.Add("col", s)
	}
	f.Fuzz(func(t *testing.T, col, v string) {
		IsEmail(v)
		IsPhone(v)
		IsIBAN(v)
		IsCardNumber(v)
		IsNationalID(v)
		IsPersonName(v)
		IsAddress(v)
		IsBirthDate(v, testNow)
		if d, ok := Detect(col, []string{v, v}, testNow); ok && (d.Confidence <= 0 || d.Confidence > 1) {
			t.Fatalf("confidence %v", d.Confidence)
		}
		if IsCardNumber(v) && !Luhn(digits(v)) {
			t.Fatal("card without Luhn")
		}
	})
}

func FuzzSearch(f *testing.F) {
	s := NewIndex(nil, nil)
	s.add(&Dataset{Namespace: "s3://b", Name: "risk/mortgages", Description: "Mortgages in Belgium"})
	for _, q := range []string{"mortage", "mortgage belgium", "", "\x00", "ßßßßßßßß", "a b c d e f g h i j k l m n o p q r s"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := s.Search(nil, admin, Query{Text: q})
		if r.Total < 0 || r.Total > 1 {
			t.Fatalf("total %d", r.Total)
		}
		for _, tok := range Tokenize(q) {
			if !utf8.ValidString(tok) && utf8.ValidString(q) {
				t.Fatalf("token %q", tok)
			}
		}
	})
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"s3://bank/a/b", ID("s3://x", "y"), "", "://", "czM6Ly94fHk"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, name, err := ParseRef(s)
		if err != nil {
			return
		}
		if ns2, name2, err := ParseID(ID(ns, name)); err == nil && (ns2 != ns || name2 != name) && !containsBar(ns) {
			t.Fatalf("id round trip: %q %q -> %q %q", ns, name, ns2, name2)
		}
	})
}

func containsBar(s string) bool {
	for _, r := range s {
		if r == '|' {
			return true
		}
	}
	return false
}
