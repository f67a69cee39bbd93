package lineage

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/stewardhq/steward"
)

// The OpenLineage specification's JSON schemas (Apache-2.0, see
// spec/LICENSE), embedded so that validation needs no network and no test
// fixtures.
//
//go:embed spec/OpenLineage.json spec/facets/*.json spec/LICENSE
var specFS embed.FS

var english = message.NewPrinter(language.English)

// MaxEventSize bounds one event's JSON.
const MaxEventSize = 4 << 20

// Kind is the kind of an OpenLineage event.
type Kind string

const (
	KindRun     Kind = "RunEvent"
	KindDataset Kind = "DatasetEvent"
	KindJob     Kind = "JobEvent"
)

// Event is one decoded, validated OpenLineage event. Facets are kept as raw
// JSON; the ones Steward understands are decoded by the store.
type Event struct {
	Kind      Kind      `json:"-"`
	EventType string    `json:"eventType,omitempty"`
	EventTime time.Time `json:"eventTime"`
	Producer  string    `json:"producer"`
	SchemaURL string    `json:"schemaURL"`
	Run       *Run      `json:"run,omitempty"`
	Job       *Job      `json:"job,omitempty"`
	Inputs    []Dataset `json:"inputs,omitempty"`
	Outputs   []Dataset `json:"outputs,omitempty"`
	Dataset   *Dataset  `json:"dataset,omitempty"`
}

// Run is the run of a RunEvent.
type Run struct {
	RunID  string                     `json:"runId"`
	Facets map[string]json.RawMessage `json:"facets,omitempty"`
}

// Job identifies a job.
type Job struct {
	Namespace string                     `json:"namespace"`
	Name      string                     `json:"name"`
	Facets    map[string]json.RawMessage `json:"facets,omitempty"`
}

// Dataset is an input, output or static dataset of an event.
type Dataset struct {
	Namespace    string                     `json:"namespace"`
	Name         string                     `json:"name"`
	Facets       map[string]json.RawMessage `json:"facets,omitempty"`
	InputFacets  map[string]json.RawMessage `json:"inputFacets,omitempty"`
	OutputFacets map[string]json.RawMessage `json:"outputFacets,omitempty"`
}

type validator struct {
	event map[Kind]*jsonschema.Schema
	// facets[kind][key]: the schema of facet key in a facets map of kind
	// (RunFacet, JobFacet, DatasetFacet, InputDatasetFacet, OutputDatasetFacet).
	facets map[string]map[string][]*jsonschema.Schema
}

var (
	validatorOnce sync.Once
	theValidator  *validator
	validatorErr  error
)

const specBase = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

// compileSpec compiles the embedded specification and facet schemas, once.
func compileSpec() (*validator, error) {
	validatorOnce.Do(func() { theValidator, validatorErr = buildValidator() })
	return theValidator, validatorErr
}

func buildValidator() (*validator, error) {
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	load := func(path string) (map[string]any, string, error) {
		b, err := specFS.ReadFile(path)
		if err != nil {
			return nil, "", err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		m, _ := doc.(map[string]any)
		compatPatch(path, m)
		id, _ := m["$id"].(string)
		if id == "" {
			return nil, "", fmt.Errorf("%s: no $id", path)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return m, id, nil
	}
	if _, _, err := load("spec/OpenLineage.json"); err != nil {
		return nil, err
	}
	type facetFile struct {
		id, kind string
		keys     []string
	}
	var files []facetFile
	entries, err := fs.ReadDir(specFS, "spec/facets")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		m, id, err := load("spec/facets/" + e.Name())
		if err != nil {
			return nil, err
		}
		base := strings.TrimSuffix(e.Name(), ".json")
		kind := ""
		for _, k := range []string{"InputDatasetFacet", "OutputDatasetFacet", "DatasetFacet", "JobFacet", "RunFacet"} {
			if strings.HasSuffix(base, k) {
				kind = k
				break
			}
		}
		props, _ := m["properties"].(map[string]any)
		if kind == "" || len(props) == 0 {
			continue // a base schema others refer to
		}
		ff := facetFile{id: id, kind: kind}
		for k := range props {
			ff.keys = append(ff.keys, k)
		}
		files = append(files, ff)
	}
	v := &validator{event: map[Kind]*jsonschema.Schema{}, facets: map[string]map[string][]*jsonschema.Schema{}}
	for _, k := range []Kind{KindRun, KindDataset, KindJob} {
		s, err := c.Compile(specBase + "#/$defs/" + string(k))
		if err != nil {
			return nil, fmt.Errorf("lineage: compile %s: %w", k, err)
		}
		v.event[k] = s
	}
	sort.Slice(files, func(i, j int) bool { return files[i].id < files[j].id })
	for _, f := range files {
		for _, key := range f.keys {
			s, err := c.Compile(f.id + "#/properties/" + jsonPointerEscape(key))
			if err != nil {
				return nil, fmt.Errorf("lineage: compile facet %s: %w", f.id, err)
			}
			if v.facets[f.kind] == nil {
				v.facets[f.kind] = map[string][]*jsonschema.Schema{}
			}
			v.facets[f.kind][key] = append(v.facets[f.kind][key], s)
		}
	}
	return v, nil
}

// compatPatch keeps accepting facets written to older spec versions where
// the embedded (newer) facet schema added a requirement: the
// dataQualityMetrics input facet of spec 1-0-1 required rowCount, the
// current one columnMetrics; either is accepted.
func compatPatch(path string, m map[string]any) {
	if !strings.HasSuffix(path, "/DataQualityMetricsInputDatasetFacet.json") {
		return
	}
	defs, _ := m["$defs"].(map[string]any)
	f, _ := defs["DataQualityMetricsInputDatasetFacet"].(map[string]any)
	all, _ := f["allOf"].([]any)
	for _, x := range all {
		o, _ := x.(map[string]any)
		if o == nil || o["required"] == nil {
			continue
		}
		delete(o, "required")
		o["anyOf"] = []any{
			map[string]any{"required": []any{"columnMetrics"}},
			map[string]any{"required": []any{"rowCount"}},
		}
	}
}

func jsonPointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// noLoader refuses to fetch schemas: everything is embedded.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s is not embedded", url)
}

// Decode parses and validates one OpenLineage event (RunEvent, DatasetEvent
// or JobEvent) against the specification and the schemas of the standard
// facets it carries (custom facets are accepted as they are). It returns an
// EInvalid error naming what is wrong.
func Decode(b []byte) (*Event, error) {
	if len(b) > MaxEventSize {
		return nil, steward.Errorf(steward.ETooLarge, "event larger than %d bytes", MaxEventSize)
	}
	v, err := compileSpec()
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "lineage.Decode", err, "lineage schema unavailable")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, steward.Errorf(steward.EInvalid, "event is not valid JSON: %v", err)
	}
	return v.decodeValue(doc, b)
}

func (v *validator) decodeValue(doc any, raw []byte) (*Event, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, steward.Errorf(steward.EInvalid, "event must be a JSON object")
	}
	kind := KindJob
	switch {
	case m["run"] != nil || m["eventType"] != nil:
		kind = KindRun
	case m["dataset"] != nil:
		kind = KindDataset
	}
	if err := v.event[kind].Validate(doc); err != nil {
		return nil, invalid(kind, "", err)
	}
	if err := v.validateFacets(kind, m); err != nil {
		return nil, err
	}
	var ev Event
	if raw == nil {
		raw, _ = json.Marshal(doc)
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, steward.Errorf(steward.EInvalid, "%s: %v", kind, err)
	}
	ev.Kind = kind
	if kind == KindRun && ev.EventType == "" {
		ev.EventType = "OTHER"
	}
	return &ev, nil
}

func (v *validator) validateFacets(kind Kind, m map[string]any) error {
	check := func(where, facetKind string, facets any) error {
		member := "facets"
		if strings.HasSuffix(where, "/input") || strings.HasSuffix(where, "/output") {
			member = where[strings.LastIndexByte(where, '/')+1:] + "Facets"
			where = where[:strings.LastIndexByte(where, '/')]
		}
		fm, _ := facets.(map[string]any)
		keys := make([]string, 0, len(fm))
		for k := range fm {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, s := range v.facets[facetKind][k] {
				if err := s.Validate(fm[k]); err != nil {
					return invalid(kind, where+"/"+member+"/"+k, err)
				}
			}
		}
		return nil
	}
	obj := func(x any) map[string]any { o, _ := x.(map[string]any); return o }
	if r := obj(m["run"]); r != nil {
		if err := check("/run", "RunFacet", r["facets"]); err != nil {
			return err
		}
	}
	if j := obj(m["job"]); j != nil {
		if err := check("/job", "JobFacet", j["facets"]); err != nil {
			return err
		}
	}
	if d := obj(m["dataset"]); d != nil {
		if err := check("/dataset", "DatasetFacet", d["facets"]); err != nil {
			return err
		}
	}
	for _, side := range []string{"inputs", "outputs"} {
		list, _ := m[side].([]any)
		for i, x := range list {
			d := obj(x)
			where := fmt.Sprintf("/%s/%d", side, i)
			if err := check(where, "DatasetFacet", d["facets"]); err != nil {
				return err
			}
			if side == "inputs" {
				if err := check(where+"/input", "InputDatasetFacet", d["inputFacets"]); err != nil {
					return err
				}
			} else if err := check(where+"/output", "OutputDatasetFacet", d["outputFacets"]); err != nil {
				return err
			}
		}
	}
	return nil
}

// invalid turns a schema validation error into an EInvalid error naming
// the first leaf problems with their JSON pointers.
func invalid(kind Kind, prefix string, err error) error {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return steward.Errorf(steward.EInvalid, "%s: %v", kind, err)
	}
	var msgs []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(msgs) >= 5 {
			return
		}
		if len(e.Causes) == 0 {
			loc := prefix + "/" + strings.Join(e.InstanceLocation, "/")
			if prefix != "" && len(e.InstanceLocation) == 0 {
				loc = prefix
			}
			msgs = append(msgs, fmt.Sprintf("at %s: %s", loc, e.ErrorKind.LocalizedString(english)))
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(msgs) == 0 {
		msgs = append(msgs, ve.Error())
	}
	return steward.Errorf(steward.EInvalid, "invalid OpenLineage %s: %s", kind, strings.Join(msgs, "; "))
}

// DecodeBatch decodes a JSON array of events. It fails on the first
// invalid event, naming its index: a batch is accepted whole or not at all.
func DecodeBatch(b []byte, max int) ([]*Event, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, steward.Errorf(steward.EInvalid, "batch must be a JSON array of events: %v", err)
	}
	if len(raws) > max {
		return nil, steward.Errorf(steward.ETooLarge, "batch has %d events, at most %d allowed", len(raws), max)
	}
	out := make([]*Event, 0, len(raws))
	for i, r := range raws {
		ev, err := Decode(r)
		if err != nil {
			return nil, steward.Errorf(steward.KindOf(err), "event %d: %s", i, steward.MessageOf(err))
		}
		out = append(out, ev)
	}
	return out, nil
}
