// Package ranger imports Apache Ranger policy exports into Steward policies
// (`steward policy import --ranger FILE`).
//
// It reads what Ranger admin's public/v2/api/policy returns (a JSON array of
// policies) and the {"policies": [...]} document of Ranger's export to file,
// for path services (hdfs, s3-style bucket+path, ozone volume+bucket+key),
// SQL services (hive database/table/column, trino catalog/schema/table/column)
// and tag services, with access, masking (policyType 1) and row-filter
// (policyType 2) policies.
//
// Nothing is dropped silently: every piece that has no exact counterpart is
// reported as an Issue. An error Issue means the policy was skipped; a
// warning means it was mapped approximately. Approximations always err
// towards less access (an allow item that cannot be mapped is dropped, a
// deny item whose condition cannot be mapped is kept unconditionally), with
// the exceptions MAPPING.md lists. Every imported policy passes
// policy.Compile. See MAPPING.md for the tables.
package ranger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// MaxInputSize is the largest export Import reads.
const MaxInputSize = 32 << 20

// MaxPolicies is the most policies one export may hold.
const MaxPolicies = 100_000

// Options configure Import.
type Options struct {
	// IDPrefix starts every imported policy ID ("ranger" if empty). IDs are
	// "<prefix>-<service>-<ranger id>".
	IDPrefix string
	// HiveCatalog is the Trino catalog under which Hive databases appear
	// ("hive" if empty): Hive db.table becomes "<HiveCatalog>.db.table".
	HiveCatalog string
	// PathBucket, when set, puts every HDFS path under this bucket
	// ("/data/x" becomes "s3://<PathBucket>/data/x"). When empty, the first
	// path component is the bucket ("/data/x" becomes "s3://data/x").
	PathBucket string
	// OzoneS3Volume is the Ozone volume whose buckets the S3 namespace
	// exposes ("s3v" if empty). Policies on other volumes are skipped.
	OzoneS3Volume string
	// TimeZone is the IANA zone of validity schedules that name none
	// ("UTC" if empty).
	TimeZone string
}

func (o *Options) defaults() {
	if o.IDPrefix == "" {
		o.IDPrefix = "ranger"
	}
	if o.HiveCatalog == "" {
		o.HiveCatalog = "hive"
	}
	if o.OzoneS3Volume == "" {
		o.OzoneS3Volume = "s3v"
	}
	if o.TimeZone == "" {
		o.TimeZone = "UTC"
	}
}

// Severity says what happened to a policy with an Issue.
type Severity string

const (
	// SeverityError: the policy was skipped.
	SeverityError Severity = "error"
	// SeverityWarning: the policy was imported, this piece approximately.
	SeverityWarning Severity = "warning"
)

// Issue is one piece of the export that did not map exactly.
type Issue struct {
	PolicyID string   `json:"policy_id,omitempty"` // Ranger policy id
	Name     string   `json:"name,omitempty"`      // Ranger policy name
	Service  string   `json:"service,omitempty"`
	Field    string   `json:"field,omitempty"` // e.g. "policyItems[0].conditions[1]"
	Message  string   `json:"message"`
	Severity Severity `json:"severity"`
}

func (i Issue) String() string {
	var b strings.Builder
	b.WriteString(string(i.Severity))
	b.WriteString(": ")
	if i.PolicyID != "" || i.Name != "" {
		fmt.Fprintf(&b, "policy %s %q", i.PolicyID, i.Name)
		if i.Service != "" {
			fmt.Fprintf(&b, " (service %s)", i.Service)
		}
		b.WriteString(": ")
	}
	if i.Field != "" {
		b.WriteString(i.Field)
		b.WriteString(": ")
	}
	b.WriteString(i.Message)
	return b.String()
}

// Result is what Import produced.
type Result struct {
	// Policies are the imported policies, each valid for policy.Compile,
	// in export order.
	Policies []*policy.Policy
	// Report lists every piece that did not map exactly.
	Report []Issue
	// Skipped counts the policies not imported (each has an error Issue).
	Skipped int
}

// Errors returns the error issues (skipped policies).
func (r *Result) Errors() []Issue {
	var out []Issue
	for _, i := range r.Report {
		if i.Severity == SeverityError {
			out = append(out, i)
		}
	}
	return out
}

// Import reads a Ranger export from r and converts it. The error is
// non-nil only when the input as a whole cannot be read: oversized
// (steward.ETooLarge), not JSON, or not a Ranger export (steward.EInvalid,
// naming line and column). Problems with single policies are in the
// Result's Report.
func Import(r io.Reader, opts Options) (*Result, error) {
	opts.defaults()
	data, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, steward.WrapError(steward.EInvalid, "ranger.Import", err, "reading the Ranger export failed")
	}
	if len(data) > MaxInputSize {
		return nil, &steward.Error{Kind: steward.ETooLarge, Op: "ranger.Import",
			Message: fmt.Sprintf("the Ranger export is larger than %d bytes", MaxInputSize)}
	}
	raws, err := splitPolicies(data)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	seen := map[string]string{}
	for i, raw := range raws {
		var rp rangerPolicy
		c := &conv{opts: &opts, res: res, index: i}
		if err := strictDecode(raw, &rp); err != nil {
			c.where = policyLabel(i, raw)
			c.fail("", "%s", decodeMessage(raw, err))
			res.Skipped++
			continue
		}
		c.rp = &rp
		c.where = rp.ID.String()
		if c.where == "" {
			c.where = "#" + strconv.Itoa(i+1)
		}
		p := c.convert()
		if p == nil {
			res.Skipped++
			continue
		}
		if other, dup := seen[p.ID]; dup {
			c.fail("id", "maps to Steward id %q, which policy %s already has", p.ID, other)
			res.Skipped++
			continue
		}
		if _, err := policy.Compile([]*policy.Policy{p}, policy.Options{}); err != nil {
			c.fail("", "the converted policy is not valid: %s", steward.MessageOf(err))
			res.Skipped++
			continue
		}
		seen[p.ID] = c.where
		res.Policies = append(res.Policies, p)
	}
	return res, nil
}

// splitPolicies finds the policy list: a top-level array, or the
// "policies" member of a top-level object.
func splitPolicies(data []byte) ([]json.RawMessage, error) {
	bad := func(format string, args ...any) error {
		return &steward.Error{Kind: steward.EInvalid, Op: "ranger.Import", Message: fmt.Sprintf(format, args...)}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return nil, bad("the Ranger export is empty")
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return nil, bad("the Ranger export is not valid JSON: line %d, column %d: %s", line, col, se.Error())
		}
		return nil, bad("the Ranger export is not valid JSON")
	}
	var list []json.RawMessage
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, bad("the Ranger export is not a list of policies")
		}
	case '{':
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, bad("the Ranger export is not a JSON object")
		}
		pl, ok := doc["policies"]
		if !ok {
			return nil, bad(`the Ranger export has no "policies" list (want the output of public/v2/api/policy or Ranger's export file)`)
		}
		if err := json.Unmarshal(pl, &list); err != nil {
			line, col := position(data, int64(bytes.Index(data, pl)))
			return nil, bad(`line %d, column %d: "policies" is not a list`, line, col)
		}
	default:
		return nil, bad("the Ranger export must be a JSON array of policies or an object with a \"policies\" list")
	}
	if len(list) > MaxPolicies {
		return nil, bad("the Ranger export has %d policies, more than the limit of %d", len(list), MaxPolicies)
	}
	return list, nil
}

func position(data []byte, off int64) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col = 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

func strictDecode(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return errors.New("policy is null")
	}
	return json.Unmarshal(raw, v)
}

func decodeMessage(raw json.RawMessage, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: want %s, found JSON %s", te.Field, te.Type, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "not valid JSON"
	}
	if strings.HasPrefix(err.Error(), "policy is null") {
		return "policy is null"
	}
	return "cannot be read as a Ranger policy: " + err.Error()
}

// policyLabel names an undecodable policy by its id if one can be found.
func policyLabel(i int, raw json.RawMessage) string {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(raw, &probe) == nil && len(probe.ID) > 0 && len(probe.ID) < 40 {
		return strings.Trim(string(probe.ID), `"`)
	}
	return "#" + strconv.Itoa(i+1)
}

// The Ranger policy JSON (RangerPolicy), as exported. Unknown fields are
// ignored; the ones that matter and cannot be mapped are reported.
type rangerPolicy struct {
	ID                   flexID                     `json:"id"`
	GUID                 string                     `json:"guid"`
	IsEnabled            *bool                      `json:"isEnabled"`
	Version              int64                      `json:"version"`
	Service              string                     `json:"service"`
	ServiceType          string                     `json:"serviceType"`
	Name                 string                     `json:"name"`
	PolicyType           int                        `json:"policyType"`
	PolicyPriority       int                        `json:"policyPriority"`
	Description          string                     `json:"description"`
	IsAuditEnabled       *bool                      `json:"isAuditEnabled"`
	Resources            map[string]*rangerResource `json:"resources"`
	AdditionalResources  []map[string]any           `json:"additionalResources"`
	Conditions           []rangerCondition          `json:"conditions"`
	PolicyItems          []rangerItem               `json:"policyItems"`
	DenyPolicyItems      []rangerItem               `json:"denyPolicyItems"`
	AllowExceptions      []rangerItem               `json:"allowExceptions"`
	DenyExceptions       []rangerItem               `json:"denyExceptions"`
	DataMaskPolicyItems  []rangerMaskItem           `json:"dataMaskPolicyItems"`
	RowFilterPolicyItems []rangerRowItem            `json:"rowFilterPolicyItems"`
	ValiditySchedules    []rangerSchedule           `json:"validitySchedules"`
	PolicyLabels         []string                   `json:"policyLabels"`
	ZoneName             string                     `json:"zoneName"`
	IsDenyAllElse        bool                       `json:"isDenyAllElse"`
}

// flexID accepts a number or a string.
type flexID string

func (f *flexID) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*f = flexID(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexID(n.String())
	return nil
}

func (f flexID) String() string { return string(f) }

type rangerResource struct {
	Values      []string `json:"values"`
	IsExcludes  bool     `json:"isExcludes"`
	IsRecursive bool     `json:"isRecursive"`
}

type rangerAccess struct {
	Type      string `json:"type"`
	IsAllowed *bool  `json:"isAllowed"`
}

type rangerCondition struct {
	Type   string   `json:"type"`
	Values []string `json:"values"`
}

type rangerItem struct {
	Accesses      []rangerAccess    `json:"accesses"`
	Users         []string          `json:"users"`
	Groups        []string          `json:"groups"`
	Roles         []string          `json:"roles"`
	Conditions    []rangerCondition `json:"conditions"`
	DelegateAdmin bool              `json:"delegateAdmin"`
}

type rangerMaskItem struct {
	rangerItem
	DataMaskInfo *struct {
		DataMaskType  string `json:"dataMaskType"`
		ConditionExpr string `json:"conditionExpr"`
		ValueExpr     string `json:"valueExpr"`
	} `json:"dataMaskInfo"`
}

type rangerRowItem struct {
	rangerItem
	RowFilterInfo *struct {
		FilterExpr string `json:"filterExpr"`
	} `json:"rowFilterInfo"`
}

type rangerSchedule struct {
	StartTime   string            `json:"startTime"`
	EndTime     string            `json:"endTime"`
	TimeZone    string            `json:"timeZone"`
	Recurrences []json.RawMessage `json:"recurrences"`
}
