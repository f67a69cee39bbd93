package policystore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// maxDiffFields bounds a policy's difference; beyond it the rest is
// summarised in one entry.
const maxDiffFields = 200

// diffJSON returns the fields that differ between two JSON objects, by
// path: objects are compared key by key, arrays of equal length element by
// element, anything else as a whole.
func diffJSON(oldb, newb []byte) []FieldDiff {
	var o, n any
	if json.Unmarshal(oldb, &o) != nil || json.Unmarshal(newb, &n) != nil {
		return []FieldDiff{{Path: "", Old: oldb, New: newb}}
	}
	var out []FieldDiff
	walkDiff("", o, n, &out)
	if len(out) > maxDiffFields {
		more := len(out) - maxDiffFields
		out = append(out[:maxDiffFields], FieldDiff{Path: fmt.Sprintf("(%d more fields)", more)})
	}
	return out
}

func walkDiff(path string, o, n any, out *[]FieldDiff) {
	if len(*out) > maxDiffFields {
		*out = append(*out, FieldDiff{Path: path})
		return
	}
	switch ov := o.(type) {
	case map[string]any:
		if nv, ok := n.(map[string]any); ok {
			keys := make([]string, 0, len(ov)+len(nv))
			for k := range ov {
				keys = append(keys, k)
			}
			for k := range nv {
				if _, dup := ov[k]; !dup {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walkDiff(p, ov[k], nv[k], out)
			}
			return
		}
	case []any:
		if nv, ok := n.([]any); ok && len(nv) == len(ov) {
			for i := range ov {
				walkDiff(fmt.Sprintf("%s[%d]", path, i), ov[i], nv[i], out)
			}
			return
		}
	}
	if reflect.DeepEqual(o, n) {
		return
	}
	fd := FieldDiff{Path: path}
	if o != nil {
		fd.Old, _ = json.Marshal(o)
	}
	if n != nil {
		fd.New, _ = json.Marshal(n)
	}
	*out = append(*out, fd)
}
