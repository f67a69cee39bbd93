package sqlengine

import (
	"slices"
	"strings"
	"testing"
)

func TestQualify(t *testing.T) {
	for _, tc := range []struct {
		name string
		refs []TableRef
		want []string // full names; nil for a refusal
	}{
		{"one part is public", []TableRef{{"t"}}, []string{"bank.public.t"}},
		{"two parts are schema.table", []TableRef{{"pay", "tx"}}, []string{"bank.pay.tx"}},
		{"three parts unchanged", []TableRef{{"other", "s", "t"}, {"bank", "s", "t"}}, []string{"other.s.t", "bank.s.t"}},
		{"schema named like another reference's catalog", []TableRef{{"other", "s", "t"}, {"other", "t"}}, nil},
		{"schema named like the database", []TableRef{{"bank", "t"}}, nil},
		{"schema named like the database, other case", []TableRef{{"BANK", "t"}}, nil},
		{"main", []TableRef{{"main", "t"}}, nil},
		{"temp", []TableRef{{"Temp", "t"}}, nil},
		{"system", []TableRef{{"system", "t"}}, nil},
		{"memory", []TableRef{{"memory", "t"}}, nil},
		{"information_schema", []TableRef{{"information_schema", "tables"}}, nil},
		{"pg_catalog", []TableRef{{"pg_catalog", "pg_class"}}, nil},
		{"one part named like a system schema", []TableRef{{"main"}}, []string{"bank.public.main"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Qualify(tc.refs, "bank")
			if tc.want == nil {
				if err == nil || SQLState(err) != StateAmbiguous {
					t.Fatalf("got %v, %v; want 42P09", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range got {
				names = append(names, r.Name())
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("got %v, want %v", names, tc.want)
			}
		})
	}
}

// FuzzQualify: whatever the names, every result has three parts and the
// database's name where a short name was, or the call fails.
func FuzzQualify(f *testing.F) {
	for _, s := range []string{"t", "pay.tx", "a.b.c", "main.t", "bank.t", "x.y.z|x.t", "temp.t|t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var refs []TableRef
		for _, r := range strings.Split(s, "|") {
			refs = append(refs, TableRef(strings.Split(r, ".")))
		}
		got, err := Qualify(refs, "bank")
		if err != nil {
			return
		}
		for i, r := range got {
			if len(r) < 3 {
				t.Fatalf("%v became %v", refs[i], r)
			}
			if len(refs[i]) < 3 && r[0] != "bank" {
				t.Fatalf("%v became %v", refs[i], r)
			}
			if len(refs[i]) == 2 && duckdbNames[strings.ToLower(refs[i][0])] {
				t.Fatalf("%v qualified", refs[i])
			}
		}
	})
}
