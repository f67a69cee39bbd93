package policystore

import (
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/policystore/policyfile"
)

// FormatFile writes policies in the policy file format (YAML); see
// policyfile.Format.
func FormatFile(policies []*policy.Policy) ([]byte, error) { return policyfile.Format(policies) }
