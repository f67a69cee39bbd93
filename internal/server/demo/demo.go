// Package demo holds the demo's policy set, applied by `steward serve
// --demo`.
package demo

import _ "embed"

// Policies is the demo policy file.
//
//go:embed policies.yaml
var Policies []byte

// Buckets are created empty at the first demo start.
var Buckets = []string{"home", "public", "mortgages"}

// Owners: bob's group owns the mortgage data and approves access requests
// for it.
var Owners = map[string][]string{"s3://mortgages/**": {"bob"}}
