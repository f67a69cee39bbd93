package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/idp"
	"github.com/stewardhq/steward/internal/policystore"
	"github.com/stewardhq/steward/internal/server/demo"
)

// Demo identities: alice analyses, bob owns the mortgage data, carol runs
// the platform.
var demoGroups = []steward.Group{
	{Name: "analysts", Description: "Data scientists and analysts"},
	{Name: "mortgages", Description: "The mortgage business line; owns the mortgage data"},
	{Name: "platform-admins", Description: "Administrators of the Steward platform"},
}

var demoUsers = []struct {
	user  steward.User
	group string
}{
	{steward.User{Username: "alice", Email: "alice@bank.example", DisplayName: "Alice Analyst"}, "analysts"},
	{steward.User{Username: "bob", Email: "bob@bank.example", DisplayName: "Bob Mortgages"}, "mortgages"},
	{steward.User{Username: "carol", Email: "carol@bank.example", DisplayName: "Carol Platform"}, "platform-admins"},
}

// seedDemo creates the demo groups and users if they are missing. With
// --demo-password their password is (re)set to it; otherwise new users get
// a generated password that is printed once, on stdout and never in logs.
func (s *Server) seedDemo(ctx context.Context, stdout io.Writer) error {
	for _, g := range demoGroups {
		if _, err := s.store.GetGroup(ctx, g.Name); steward.KindOf(err) == steward.ENotFound {
			if err := s.store.CreateGroup(ctx, &g); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	password := s.cfg.DemoPassword
	generated := false
	if password == "" {
		password = generatePassword()
		generated = true
	}
	hash, err := idp.HashPassword(password)
	if err != nil {
		return err
	}
	created := 0
	for _, du := range demoUsers {
		_, err := s.store.GetUser(ctx, du.user.Username)
		switch {
		case steward.KindOf(err) == steward.ENotFound:
			u := du.user
			if err := s.store.CreateUser(ctx, &u, hash); err != nil {
				return err
			}
			if err := s.store.AddGroupMember(ctx, du.group, u.Username); err != nil {
				return err
			}
			created++
		case err != nil:
			return err
		case !generated:
			if err := s.store.SetPasswordHash(ctx, du.user.Username, hash); err != nil {
				return err
			}
		}
	}
	if _, err := s.policies.ApplyFile(ctx, "demo/policies.yaml", demo.Policies, policystore.ApplyOptions{Actor: "steward"}); err != nil {
		return err
	}
	if _, err := s.engine.Refresh(ctx); err != nil {
		return err
	}
	for res, users := range demo.Owners {
		if err := s.policies.SetOwners(ctx, policystore.Owners{Resource: res, Users: users}, "steward"); err != nil {
			return err
		}
	}
	for _, b := range demo.Buckets {
		if err := s.objects.CreateBucket(ctx, b); err != nil && steward.KindOf(err) != steward.EConflict {
			return err
		}
	}
	if err := s.audit.Record(ctx, steward.AuditEvent{Actor: "steward", ActorKind: "system", Action: "demo.seed", Outcome: "success",
		Details: map[string]any{"users_created": created}}); err != nil {
		return err
	}
	switch {
	case generated && created > 0:
		fmt.Fprintf(stdout, "\nDemo users alice (analysts), bob (mortgages), carol (platform-admins)\nhave the password: %s\n(printed once; set your own with --demo-password)\n\n", password)
	case generated:
		fmt.Fprintln(stdout, "Demo users exist already; their password was printed when they were created (or use --demo-password to reset it).")
	}
	return nil
}

func generatePassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
