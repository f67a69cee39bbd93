package trino

import (
	"github.com/stewardhq/steward/internal/policy"
)

// target says what an operation is decided on.
type target uint8

const (
	tAlways         target = iota + 1 // allowed without a policy decision
	tSystem                           // dataset "_trino.system"
	tUser                             // dataset "<prefix>.<user>"; the user's own name is always allowed
	tSystemSession                    // dataset "_trino.session.<property>"
	tCatalogSession                   // dataset "_trino.session.<catalog>.<property>"
	tCatalog                          // table name "catalog"
	tSchema                           // table name "catalog.schema"
	tTable                            // table name "catalog.schema.table", table level
	tColumns                          // each of the table's columns (table level if none)
	tRename                           // delete on resource, create on targetResource
	tFunction                         // table name "catalog.schema.function"
)

// op is how one Trino operation is decided. visible means: allowed when
// discover or select is allowed (seeing that a thing exists).
type op struct {
	target  target
	access  policy.Access
	visible bool
	prefix  string // tUser: dataset prefix
}

var (
	visibleOp = func(t target) op { return op{target: t, access: policy.AccessDiscover, visible: true} }
	accessOp  = func(t target, a policy.Access) op { return op{target: t, access: a} }
)

// operations maps every operation Trino's OPA access control sends (as in
// io.trino.plugin.opa.OpaAccessControl) to its decision. Keep in step with
// OPERATIONS.md. Operations not listed are denied.
var operations = map[string]op{
	"ExecuteQuery":           {target: tAlways},
	"ImpersonateUser":        {target: tUser, access: policy.AccessAdmin, prefix: "_trino.user"},
	"ViewQueryOwnedBy":       {target: tUser, access: policy.AccessRead, prefix: "_trino.query"},
	"FilterViewQueryOwnedBy": {target: tUser, access: policy.AccessRead, prefix: "_trino.query"},
	"KillQueryOwnedBy":       {target: tUser, access: policy.AccessDelete, prefix: "_trino.query"},
	"ReadSystemInformation":  accessOp(tSystem, policy.AccessRead),
	"WriteSystemInformation": accessOp(tSystem, policy.AccessWrite),

	"SetSystemSessionProperty":  accessOp(tSystemSession, policy.AccessWrite),
	"SetCatalogSessionProperty": accessOp(tCatalogSession, policy.AccessWrite),

	"AccessCatalog":  visibleOp(tCatalog),
	"FilterCatalogs": visibleOp(tCatalog),
	"ShowSchemas":    visibleOp(tCatalog),
	"CreateCatalog":  accessOp(tCatalog, policy.AccessCreate),
	"DropCatalog":    accessOp(tCatalog, policy.AccessDelete),

	"CreateSchema":           accessOp(tSchema, policy.AccessCreate),
	"DropSchema":             accessOp(tSchema, policy.AccessDelete),
	"RenameSchema":           {target: tRename},
	"SetSchemaAuthorization": accessOp(tSchema, policy.AccessAdmin),
	"ShowCreateSchema":       visibleOp(tSchema),
	"FilterSchemas":          visibleOp(tSchema),
	"ShowTables":             visibleOp(tSchema),
	"ShowFunctions":          visibleOp(tSchema),

	"ShowCreateTable":                 visibleOp(tTable),
	"CreateTable":                     accessOp(tTable, policy.AccessCreate),
	"DropTable":                       accessOp(tTable, policy.AccessDelete),
	"RenameTable":                     {target: tRename},
	"SetTableProperties":              accessOp(tTable, policy.AccessAdmin),
	"SetTableComment":                 accessOp(tTable, policy.AccessAdmin),
	"SetViewComment":                  accessOp(tTable, policy.AccessAdmin),
	"SetColumnComment":                accessOp(tTable, policy.AccessAdmin),
	"ShowColumns":                     visibleOp(tTable),
	"FilterTables":                    visibleOp(tTable),
	"FilterColumns":                   visibleOp(tColumns),
	"AddColumn":                       accessOp(tTable, policy.AccessAdmin),
	"AlterColumn":                     accessOp(tTable, policy.AccessAdmin),
	"DropColumn":                      accessOp(tTable, policy.AccessAdmin),
	"RenameColumn":                    accessOp(tTable, policy.AccessAdmin),
	"SetTableAuthorization":           accessOp(tTable, policy.AccessAdmin),
	"SetViewAuthorization":            accessOp(tTable, policy.AccessAdmin),
	"SelectFromColumns":               accessOp(tColumns, policy.AccessSelect),
	"InsertIntoTable":                 accessOp(tTable, policy.AccessWrite),
	"DeleteFromTable":                 accessOp(tTable, policy.AccessWrite),
	"TruncateTable":                   accessOp(tTable, policy.AccessWrite),
	"UpdateTableColumns":              accessOp(tColumns, policy.AccessWrite),
	"CreateView":                      accessOp(tTable, policy.AccessCreate),
	"RenameView":                      {target: tRename},
	"DropView":                        accessOp(tTable, policy.AccessDelete),
	"CreateViewWithSelectFromColumns": accessOp(tColumns, policy.AccessSelect),
	"CreateMaterializedView":          accessOp(tTable, policy.AccessCreate),
	"RefreshMaterializedView":         accessOp(tTable, policy.AccessWrite),
	"SetMaterializedViewProperties":   accessOp(tTable, policy.AccessAdmin),
	"SetMaterializedViewComment":      accessOp(tTable, policy.AccessAdmin),
	"DropMaterializedView":            accessOp(tTable, policy.AccessDelete),
	"RenameMaterializedView":          {target: tRename},
	"ExecuteTableProcedure":           accessOp(tTable, policy.AccessWrite),

	"FilterFunctions":               visibleOp(tFunction),
	"ShowCreateFunction":            visibleOp(tFunction),
	"ExecuteFunction":               accessOp(tFunction, policy.AccessSelect),
	"CreateViewWithExecuteFunction": accessOp(tFunction, policy.AccessSelect),
	"ExecuteProcedure":              accessOp(tFunction, policy.AccessWrite),
	"CreateFunction":                accessOp(tFunction, policy.AccessCreate),
	"DropFunction":                  accessOp(tFunction, policy.AccessDelete),
}
