package lineage

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward"
)

// Producer is the producer URI of the events Steward emits itself.
const Producer = "https://github.com/stewardhq/steward"

// Namespace is the job namespace of Steward's own data movements.
const Namespace = "steward"

// ColumnEdge is one column-level dependency for RecordRun: OutputField of
// Output is derived from InputField of Input. Masking marks a masking
// transformation (hash, redaction): no tag flows along it.
type ColumnEdge struct {
	Output      DatasetKey
	OutputField string
	Input       DatasetKey
	InputField  string
	Masking     bool
}

// RecordCopy records a server-side copy (S3 CopyObject) by principal from
// src to dst as a completed run of the job steward:copy, so that dst
// inherits src's tags at once. Name S3 objects as OpenLineage does:
// namespace "s3://BUCKET", name the key.
func (s *Service) RecordCopy(ctx context.Context, principal *steward.Principal, src, dst DatasetKey) (string, error) {
	who := ""
	if principal != nil {
		who = principal.Username
	}
	return s.recordRun(ctx, who, JobKey{Namespace, "copy"}, []DatasetKey{src}, []DatasetKey{dst}, nil)
}

// RecordRun records a completed run of job (Steward's own, e.g. SQL CREATE
// TABLE AS) reading inputs and writing outputs, with optional column
// lineage. It returns the run id. The outputs inherit before it returns.
func (s *Service) RecordRun(ctx context.Context, job JobKey, inputs, outputs []DatasetKey, columnLineage []ColumnEdge) (string, error) {
	p := steward.PrincipalFrom(ctx)
	who := ""
	if p != nil {
		who = p.Username
	}
	return s.recordRun(ctx, who, job, inputs, outputs, columnLineage)
}

func (s *Service) recordRun(ctx context.Context, who string, job JobKey, inputs, outputs []DatasetKey, cols []ColumnEdge) (string, error) {
	if job.Namespace == "" || job.Name == "" {
		return "", steward.Errorf(steward.EInvalid, "a job namespace and name are required")
	}
	for _, d := range append(append([]DatasetKey(nil), inputs...), outputs...) {
		if d.Namespace == "" || d.Name == "" {
			return "", steward.Errorf(steward.EInvalid, "datasets need a namespace and a name")
		}
	}
	runID := uuid.NewString()
	now := time.Now().UTC()
	ev := &Event{Kind: KindRun, EventType: StateStart, EventTime: now, Producer: Producer,
		SchemaURL: specBase + "#/$defs/RunEvent", Run: &Run{RunID: runID}, Job: &Job{Namespace: job.Namespace, Name: job.Name}}
	for _, d := range inputs {
		ev.Inputs = append(ev.Inputs, Dataset{Namespace: d.Namespace, Name: d.Name})
	}
	for _, d := range outputs {
		out := Dataset{Namespace: d.Namespace, Name: d.Name}
		type inField struct {
			Namespace       string           `json:"namespace"`
			Name            string           `json:"name"`
			Field           string           `json:"field"`
			Transformations []map[string]any `json:"transformations"`
		}
		fields := map[string]map[string][]inField{}
		for _, c := range cols {
			if c.Output != d {
				continue
			}
			if fields[c.OutputField] == nil {
				fields[c.OutputField] = map[string][]inField{}
			}
			fields[c.OutputField]["inputFields"] = append(fields[c.OutputField]["inputFields"], inField{
				Namespace: c.Input.Namespace, Name: c.Input.Name, Field: c.InputField,
				Transformations: []map[string]any{{"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": c.Masking}},
			})
		}
		if len(fields) > 0 {
			b, _ := json.Marshal(map[string]any{"_producer": Producer, "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet", "fields": fields})
			out.Facets = map[string]json.RawMessage{"columnLineage": b}
		}
		ev.Outputs = append(ev.Outputs, out)
	}
	done := *ev
	done.EventType = StateComplete
	done.Inputs, done.Outputs = nil, nil
	if _, err := s.Ingest(ctx, who, []*Event{ev, &done}); err != nil {
		return "", err
	}
	return runID, nil
}
