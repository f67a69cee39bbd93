package catalog

import (
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// Decider is the policy engine as the catalog asks it
// (*policystore.Holder satisfies it).
type Decider interface {
	Decide(req *policy.Request, d *policy.Decision)
}

// Viewer is who asks the catalog.
type Viewer struct {
	User   string
	Groups []string
	Roles  []string
	// Admin: a Steward administrator, who sees and edits everything.
	Admin bool
}

// ViewerOf returns the viewer for a principal; admin says whether the
// principal administers Steward (api.IsAdmin).
func ViewerOf(p *steward.Principal, admin bool) Viewer {
	if p == nil {
		return Viewer{}
	}
	return Viewer{User: p.Username, Groups: p.Groups, Roles: p.Roles, Admin: admin}
}

// Owns reports whether v is one of the dataset's owners or stewards
// (directly or through a group).
func (v Viewer) Owns(d *Dataset) bool {
	if v.User == "" {
		return false
	}
	for _, lists := range [][]string{d.Owners, d.Stewards} {
		for _, o := range lists {
			if g, ok := strings.CutPrefix(o, "group:"); ok {
				for _, vg := range v.Groups {
					if vg == g {
						return true
					}
				}
			} else if o == v.User {
				return true
			}
		}
	}
	return false
}

// CanEdit reports whether v may change the dataset's metadata:
// administrators, owners and stewards.
func (v Viewer) CanEdit(d *Dataset) bool { return v.Admin || v.Owns(d) }

// CanDiscover applies the discovery rule (see the package documentation)
// to d's own tags: admins, owners and stewards always; C4 needs an
// explicit discover allow; anything else is visible unless a policy
// explicitly denies discover. A nil decider means no policies: C4 stays
// hidden from non-owners. Service.CanDiscover decides on the effective
// tags (own plus inherited through lineage).
func CanDiscover(dec Decider, v Viewer, d *Dataset) bool {
	if v.Admin || v.Owns(d) {
		return true
	}
	return discover(dec, v, d.Level(), PolicyName(d.Namespace, d.Name), d.PolicyTags())
}

// discover is CanDiscover for non-owners, with the classification, policy
// name and tags computed by the caller (the index keeps them; effective
// adds the inherited ones).
func discover(dec Decider, v Viewer, level policy.Classification, name string, tags []policy.Tag) bool {
	var dd policy.Decision
	if dec != nil {
		dec.Decide(&policy.Request{
			User: v.User, Groups: v.Groups, Roles: v.Roles,
			Access:         policy.AccessDiscover,
			Resource:       policy.Resource{Kind: policy.ResourceDataset, Name: name},
			Tags:           tags,
			Classification: level,
			Time:           time.Now(),
		}, &dd)
	}
	if level >= policy.C4 {
		return dd.Allowed
	}
	// Default allow: only an explicit deny (a deciding policy) hides it.
	return dd.Allowed || dd.PolicyID == ""
}
