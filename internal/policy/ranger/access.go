package ranger

import (
	"strings"

	"github.com/stewardhq/steward/internal/policy"
)

// family is a kind of Ranger service, which fixes its resources and access
// types.
type family string

const (
	famHDFS   family = "hdfs"  // path
	famBucket family = "s3"    // bucket + path
	famOzone  family = "ozone" // volume + bucket + key
	famHive   family = "hive"  // database / table / column
	famTrino  family = "trino" // catalog / schema / table / column
	famTag    family = "tag"   // tag
)

// accessMap is one Ranger access type's Steward counterpart. An empty To
// means there is none: the access is dropped (and reported).
type accessMap struct {
	To     []policy.Access
	Approx string // non-empty: mapped approximately, this says how
}

var (
	aRead     = policy.AccessRead
	aWrite    = policy.AccessWrite
	aList     = policy.AccessList
	aCreate   = policy.AccessCreate
	aDelete   = policy.AccessDelete
	aSelect   = policy.AccessSelect
	aAdmin    = policy.AccessAdmin
	aDiscover = policy.AccessDiscover
)

func acc(a ...policy.Access) accessMap { return accessMap{To: a} }

func approx(note string, a ...policy.Access) accessMap { return accessMap{To: a, Approx: note} }

// accessTables maps each family's access types (lower case). Keep in step
// with MAPPING.md.
var accessTables = map[family]map[string]accessMap{
	famHDFS: {
		"read":    acc(aRead, aList),
		"write":   acc(aWrite, aCreate, aDelete),
		"execute": approx("HDFS execute (directory traversal) has no S3 counterpart; mapped to discover", aDiscover),
		"all":     acc(aRead, aList, aWrite, aCreate, aDelete, aDiscover),
	},
	famBucket: {
		"read":   acc(aRead),
		"write":  acc(aWrite, aCreate),
		"list":   acc(aList),
		"delete": acc(aDelete),
		"all":    acc(aRead, aWrite, aCreate, aList, aDelete),
	},
	famOzone: {
		"read":      acc(aRead),
		"write":     acc(aWrite),
		"create":    acc(aCreate),
		"list":      acc(aList),
		"delete":    acc(aDelete),
		"read_acl":  {Approx: "Ozone read_acl (reading ACLs) has no Steward counterpart; dropped"},
		"write_acl": approx("Ozone write_acl mapped to admin (administer the resource)", aAdmin),
		"all":       acc(aRead, aWrite, aCreate, aList, aDelete, aAdmin),
	},
	famHive: {
		"select":       acc(aSelect),
		"update":       acc(aWrite),
		"create":       acc(aCreate),
		"drop":         acc(aDelete),
		"alter":        acc(aAdmin),
		"index":        {Approx: "Hive index has no Steward counterpart; dropped"},
		"lock":         {Approx: "Hive lock has no Steward counterpart; dropped"},
		"read":         acc(aRead),
		"write":        acc(aWrite),
		"refresh":      {Approx: "Hive refresh has no Steward counterpart; dropped"},
		"repladmin":    {Approx: "Hive repladmin (replication) has no Steward counterpart; dropped"},
		"serviceadmin": {Approx: "Hive serviceadmin (kill queries) has no Steward counterpart; dropped"},
		"tempudfadmin": {Approx: "Hive tempudfadmin (temporary UDFs) has no Steward counterpart; dropped"},
		"all":          acc(aSelect, aWrite, aCreate, aDelete, aAdmin, aDiscover, aRead),
	},
	famTrino: {
		"select":      acc(aSelect),
		"insert":      acc(aWrite),
		"delete":      acc(aWrite),
		"update":      acc(aWrite),
		"create":      acc(aCreate),
		"drop":        acc(aDelete),
		"alter":       acc(aAdmin),
		"show":        acc(aDiscover),
		"use":         acc(aDiscover),
		"grant":       approx("Trino grant mapped to admin (Steward has no SQL GRANT; admin administers the resource's policies)", aAdmin),
		"revoke":      approx("Trino revoke mapped to admin (Steward has no SQL REVOKE; admin administers the resource's policies)", aAdmin),
		"execute":     {Approx: "Trino execute (procedures, functions, queries) has no Steward counterpart in table policies; dropped"},
		"impersonate": {Approx: "Trino impersonate has no Steward counterpart in table policies; dropped"},
		"all":         acc(aSelect, aWrite, aCreate, aDelete, aAdmin, aDiscover),
	},
}

// serviceFamily maps a Ranger service type (and, for tag accesses, the
// prefix of "hive:select") to a family.
func serviceFamily(serviceType string) (family, bool) {
	switch strings.ToLower(strings.TrimSpace(serviceType)) {
	case "hdfs":
		return famHDFS, true
	case "s3", "aws-s3", "adls", "gcs", "abfs", "s3a":
		return famBucket, true
	case "ozone":
		return famOzone, true
	case "hive", "hiveserver2", "impala", "spark", "sparksql":
		return famHive, true
	case "trino", "presto", "prestosql", "starburst":
		return famTrino, true
	case "tag":
		return famTag, true
	}
	return "", false
}

// inferFamily guesses the family from the resource names when serviceType
// is missing or unknown.
func inferFamily(res map[string]*rangerResource) (family, bool) {
	has := func(k string) bool { _, ok := res[k]; return ok }
	switch {
	case has("tag"):
		return famTag, true
	case has("volume"):
		return famOzone, true
	case has("bucket"):
		return famBucket, true
	case has("path"):
		return famHDFS, true
	case has("catalog"):
		return famTrino, true
	case has("database"):
		return famHive, true
	}
	return "", false
}
