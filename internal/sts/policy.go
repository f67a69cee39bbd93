package sts

import (
	"encoding/json"
	"strings"

	"github.com/stewardhq/steward"
)

// SessionPolicy is the supported subset of an IAM session policy: Allow
// statements whose Action lists s3 actions ("s3:GetObject", "s3:Get*",
// "s3:*", "*") and whose Resource lists S3 ARNs ("arn:aws:s3:::bucket",
// "arn:aws:s3:::bucket/prefix/*", "*"), with * and ? wildcards. It can only
// narrow: a request must be allowed by the principal's policies and by
// some statement here. Deny, NotAction, NotResource, Principal and
// Condition are refused as MalformedPolicyDocument rather than ignored.
type SessionPolicy struct {
	Statements []Statement `json:"s"`
}

// Statement is one Allow statement.
type Statement struct {
	Actions   []string `json:"a"`
	Resources []string `json:"r"`
}

// maxPolicyLen bounds the session policy text.
const maxPolicyLen = 8192

// stringOrList decodes "x" or ["x", "y"].
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

type iamStatement struct {
	Sid         string          `json:"Sid"`
	Effect      string          `json:"Effect"`
	Action      stringOrList    `json:"Action"`
	Resource    stringOrList    `json:"Resource"`
	NotAction   json.RawMessage `json:"NotAction"`
	NotResource json.RawMessage `json:"NotResource"`
	Principal   json.RawMessage `json:"Principal"`
	Condition   json.RawMessage `json:"Condition"`
}

func malformed(msg string) error {
	e := steward.Errorf(steward.EInvalid, "%s", msg)
	e.Op = "MalformedPolicyDocument"
	return e
}

// ParseSessionPolicy parses an IAM JSON session policy in the supported
// subset.
func ParseSessionPolicy(text string) (*SessionPolicy, error) {
	if len(text) > maxPolicyLen {
		return nil, malformed("the session policy is too long")
	}
	var doc struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, malformed("the session policy is not valid JSON with Version and Statement")
	}
	if doc.Version != "" && doc.Version != "2012-10-17" && doc.Version != "2008-10-17" {
		return nil, malformed("unsupported policy Version")
	}
	var sts []iamStatement
	if len(doc.Statement) > 0 && doc.Statement[0] == '{' {
		var one iamStatement
		if err := json.Unmarshal(doc.Statement, &one); err != nil {
			return nil, malformed("malformed Statement")
		}
		sts = []iamStatement{one}
	} else if err := json.Unmarshal(doc.Statement, &sts); err != nil {
		return nil, malformed("malformed Statement")
	}
	if len(sts) == 0 || len(sts) > 64 {
		return nil, malformed("a session policy needs between 1 and 64 statements")
	}
	p := &SessionPolicy{}
	for _, s := range sts {
		switch {
		case s.Effect != "Allow":
			return nil, malformed("only Allow statements are supported in session policies")
		case s.NotAction != nil || s.NotResource != nil || s.Principal != nil || s.Condition != nil:
			return nil, malformed("NotAction, NotResource, Principal and Condition are not supported in session policies")
		case len(s.Action) == 0 || len(s.Resource) == 0:
			return nil, malformed("every statement needs Action and Resource")
		}
		for _, a := range s.Action {
			if a != "*" && !strings.HasPrefix(strings.ToLower(a), "s3:") {
				return nil, malformed("only s3 actions are supported: " + a)
			}
		}
		for _, r := range s.Resource {
			if r != "*" && !strings.HasPrefix(r, "arn:aws:s3:::") {
				return nil, malformed("only arn:aws:s3::: resources are supported: " + r)
			}
		}
		p.Statements = append(p.Statements, Statement{Actions: s.Action, Resources: s.Resource})
	}
	return p, nil
}

// bucketActions are checked against the bucket ARN even when the request
// names a prefix (IAM semantics: the prefix would be a condition).
var bucketActions = map[string]bool{
	"s3:listbucket": true, "s3:listbucketversions": true, "s3:listbucketmultipartuploads": true,
	"s3:getbucketlocation": true, "s3:createbucket": true, "s3:deletebucket": true,
	"s3:getbucketversioning": true, "s3:putbucketversioning": true,
}

// Allows reports whether a statement allows action on bucket/key.
func (p *SessionPolicy) Allows(action, bucket, key string) bool {
	if p == nil {
		return true
	}
	la := strings.ToLower(action)
	arn := "arn:aws:s3:::" + bucket
	if key != "" && !bucketActions[la] {
		arn += "/" + key
	}
	for _, s := range p.Statements {
		if !matchAny(s.Actions, la, true) {
			continue
		}
		if matchAny(s.Resources, arn, false) {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			p = strings.ToLower(p)
		}
		if wildcard(p, s) {
			return true
		}
	}
	return false
}

// wildcard matches s against p with * (any run) and ? (one byte).
func wildcard(p, s string) bool {
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
