package lineage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/stewardhq/steward/internal/policy"
)

// Tags carry their classification in JSON as "C1".."C4" (omitted when
// unclassified), as the rest of the API writes it. Decoding also accepts
// the number 0..4 that earlier versions wrote (policy.Classification is a
// number; its own JSON form is left alone because stored policies use it).

// jsonClass is a classification in JSON: "C1".."C4", or a legacy number.
type jsonClass policy.Classification

func (c jsonClass) MarshalJSON() ([]byte, error) {
	return json.Marshal(policy.Classification(c).String())
}

func (c *jsonClass) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*c = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*c = 0
			return nil
		}
		v, ok := policy.ParseClassification(s)
		if !ok {
			return fmt.Errorf("classification %q: want C1..C4", s)
		}
		*c = jsonClass(v)
		return nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < int(policy.Unclassified) || n > int(policy.C4) {
		return fmt.Errorf("classification %s: want C1..C4", b)
	}
	*c = jsonClass(n)
	return nil
}

// lineageTagJSON is LineageTag's JSON form.
type lineageTagJSON struct {
	Name           string    `json:"name"`
	Value          string    `json:"value,omitempty"`
	Field          string    `json:"field,omitempty"`
	Classification jsonClass `json:"classification,omitzero"`
	Propagate      bool      `json:"propagate"`
	Source         string    `json:"source,omitempty"`
}

// MarshalJSON writes the classification as "C1".."C4".
func (t LineageTag) MarshalJSON() ([]byte, error) {
	return json.Marshal(lineageTagJSON{t.Name, t.Value, t.Field, jsonClass(t.Classification), t.Propagate, t.Source})
}

// UnmarshalJSON reads the classification as "C1".."C4" or a number.
func (t *LineageTag) UnmarshalJSON(b []byte) error {
	var j lineageTagJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = LineageTag{j.Name, j.Value, j.Field, policy.Classification(j.Classification), j.Propagate, j.Source}
	return nil
}

// inheritedTagJSON is InheritedTag's JSON form.
type inheritedTagJSON struct {
	Name           string     `json:"name"`
	Value          string     `json:"value,omitempty"`
	Classification jsonClass  `json:"classification,omitzero"`
	Field          string     `json:"field,omitempty"`
	Origin         DatasetKey `json:"origin"`
	OriginField    string     `json:"origin_field,omitempty"`
	From           DatasetKey `json:"from"`
	FromField      string     `json:"from_field,omitempty"`
	Job            JobKey     `json:"job"`
	Run            string     `json:"run,omitempty"`
}

// MarshalJSON writes the classification as "C1".."C4".
func (t InheritedTag) MarshalJSON() ([]byte, error) {
	return json.Marshal(inheritedTagJSON{t.Name, t.Value, jsonClass(t.Classification), t.Field, t.Origin, t.OriginField, t.From, t.FromField, t.Job, t.Run})
}

// UnmarshalJSON reads the classification as "C1".."C4" or a number.
func (t *InheritedTag) UnmarshalJSON(b []byte) error {
	var j inheritedTagJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = InheritedTag{j.Name, j.Value, policy.Classification(j.Classification), j.Field, j.Origin, j.OriginField, j.From, j.FromField, j.Job, j.Run}
	return nil
}
