package metastoretest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// RunIdentity checks the steward.IdentityStore implementation.
func RunIdentity(t *testing.T, open OpenFunc) {
	t.Run("Users", func(t *testing.T) { testUsers(t, open(t)) })
	t.Run("Groups", func(t *testing.T) { testGroups(t, open(t)) })
	t.Run("ServiceAccounts", func(t *testing.T) { testServiceAccounts(t, open(t)) })
	t.Run("Errors", func(t *testing.T) { testIdentityErrors(t, open(t)) })
	t.Run("Names", func(t *testing.T) { testNames(t, open(t)) })
	t.Run("Timestamps", func(t *testing.T) { testTimestamps(t, open(t)) })
	t.Run("NamespaceRace", func(t *testing.T) { testNamespaceRace(t, open(t)) })
}

// testNamespaceRace creates one name as a user and as a service account
// from several goroutines at once: exactly one create wins.
func testNamespaceRace(t *testing.T, s *metastore.Store) {
	ctx := context.Background()
	for round := range 5 {
		name := "racer" + string(rune('a'+round))
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					errs[i] = s.CreateUser(ctx, &steward.User{Username: name}, "")
				} else {
					errs[i] = s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: name}, "")
				}
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch steward.KindOf(err) {
			case "":
				wins++
			case steward.EConflict:
			default:
				t.Fatalf("racing create of %s: %v", name, err)
			}
		}
		equal(t, "successful creates of "+name, wins, 1)
		_, uerr := s.GetUser(ctx, name)
		_, serr := s.GetServiceAccount(ctx, name)
		if (uerr == nil) == (serr == nil) {
			t.Fatalf("%s: user lookup %v, service account lookup %v; want exactly one to exist", name, uerr, serr)
		}
	}
}

// Kind fails t unless err is a *steward.Error of kind want with a message
// for the caller (nil when want is "").
func Kind(t *testing.T, err error, want steward.ErrorKind) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if got := steward.KindOf(err); got != want {
		t.Fatalf("error kind = %q (%v), want %q", got, err, want)
	}
	if msg := steward.MessageOf(err); msg == "" || msg == string(want) {
		t.Fatalf("error %v has no message for the caller", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func equalSlice(t *testing.T, what string, got, want []string) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s is nil, want %q (never nil)", what, want)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func testUsers(t *testing.T, s *metastore.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, &steward.Group{Name: "eng"}))
	must(t, s.CreateGroup(ctx, &steward.Group{Name: "admins"}))

	before := time.Now()
	u := &steward.User{Username: "alice", Email: "alice@example.com", DisplayName: "Alice A.",
		Roles: []string{"writer", "admin", "writer"}, Groups: []string{"eng", "admins"}}
	must(t, s.CreateUser(ctx, u, "hash-1"))
	if u.CreatedAt.IsZero() || u.CreatedAt.Before(before.Add(-time.Second)) || !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Fatalf("CreateUser set CreatedAt %v UpdatedAt %v", u.CreatedAt, u.UpdatedAt)
	}
	must(t, s.CreateUser(ctx, &steward.User{Username: "bob"}, ""))

	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	equal(t, "email", got.Email, "alice@example.com")
	equal(t, "display name", got.DisplayName, "Alice A.")
	equalSlice(t, "roles", got.Roles, []string{"admin", "writer"})
	equalSlice(t, "groups", got.Groups, []string{"admins", "eng"})
	equal(t, "disabled", got.Disabled, false)
	equal(t, "created", got.CreatedAt, u.CreatedAt)
	equal(t, "updated", got.UpdatedAt, u.UpdatedAt)

	bob, err := s.GetUser(ctx, "bob")
	must(t, err)
	equalSlice(t, "bob roles", bob.Roles, []string{})
	equalSlice(t, "bob groups", bob.Groups, []string{})

	h, err := s.PasswordHash(ctx, "alice")
	must(t, err)
	equal(t, "hash", h, "hash-1")
	must(t, s.SetPasswordHash(ctx, "alice", "hash-2"))
	h, err = s.PasswordHash(ctx, "alice")
	must(t, err)
	equal(t, "hash after set", h, "hash-2")
	h, err = s.PasswordHash(ctx, "bob")
	must(t, err)
	equal(t, "empty hash", h, "")

	upd := &steward.User{Username: "alice", Email: "a@example.org", DisplayName: "A", Roles: []string{"reader"}, Disabled: true,
		Groups: []string{"ignored"}}
	must(t, s.UpdateUser(ctx, upd))
	if upd.UpdatedAt.Before(u.CreatedAt) {
		t.Fatalf("UpdatedAt %v before CreatedAt %v", upd.UpdatedAt, u.CreatedAt)
	}
	got, err = s.GetUser(ctx, "alice")
	must(t, err)
	equal(t, "email after update", got.Email, "a@example.org")
	equal(t, "display name after update", got.DisplayName, "A")
	equalSlice(t, "roles after update", got.Roles, []string{"reader"})
	equal(t, "disabled after update", got.Disabled, true)
	equalSlice(t, "groups after update", got.Groups, []string{"admins", "eng"})
	equal(t, "created after update", got.CreatedAt, u.CreatedAt)
	equal(t, "updated after update", got.UpdatedAt, upd.UpdatedAt)
	h, err = s.PasswordHash(ctx, "alice")
	must(t, err)
	equal(t, "hash kept by update", h, "hash-2")

	list, err := s.ListUsers(ctx)
	must(t, err)
	if len(list) != 2 || list[0].Username != "alice" || list[1].Username != "bob" {
		t.Fatalf("ListUsers = %v", names(list, func(u *steward.User) string { return u.Username }))
	}
	equalSlice(t, "listed groups", list[0].Groups, []string{"admins", "eng"})
	equalSlice(t, "listed groups of bob", list[1].Groups, []string{})
	equal(t, "listed disabled", list[0].Disabled, true)

	must(t, s.DeleteUser(ctx, "alice"))
	_, err = s.GetUser(ctx, "alice")
	Kind(t, err, steward.ENotFound)
	g, err := s.GetGroup(ctx, "eng")
	must(t, err)
	equalSlice(t, "members after user deleted", g.Members, []string{})
	// The name is free again, for a user or a service account.
	must(t, s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "alice"}, ""))
	list, err = s.ListUsers(ctx)
	must(t, err)
	equal(t, "users after delete", len(list), 1)
}

func testGroups(t *testing.T, s *metastore.Store) {
	ctx := context.Background()
	must(t, s.CreateUser(ctx, &steward.User{Username: "zed"}, ""))
	must(t, s.CreateUser(ctx, &steward.User{Username: "amy"}, ""))
	must(t, s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "etl"}, ""))

	g := &steward.Group{Name: "data-eng", Description: "Data engineering", Members: []string{"zed", "etl", "zed"}}
	must(t, s.CreateGroup(ctx, g))
	if g.CreatedAt.IsZero() {
		t.Fatal("CreateGroup did not set CreatedAt")
	}
	must(t, s.CreateGroup(ctx, &steward.Group{Name: "analysts"}))
	must(t, s.AddGroupMember(ctx, "data-eng", "amy"))
	must(t, s.AddGroupMember(ctx, "analysts", "etl"))

	got, err := s.GetGroup(ctx, "data-eng")
	must(t, err)
	equal(t, "description", got.Description, "Data engineering")
	equalSlice(t, "members", got.Members, []string{"amy", "etl", "zed"})
	equal(t, "created", got.CreatedAt, g.CreatedAt)

	sa, err := s.GetServiceAccount(ctx, "etl")
	must(t, err)
	equalSlice(t, "service account groups", sa.Groups, []string{"analysts", "data-eng"})

	must(t, s.RemoveGroupMember(ctx, "data-eng", "zed"))
	got, err = s.GetGroup(ctx, "data-eng")
	must(t, err)
	equalSlice(t, "members after remove", got.Members, []string{"amy", "etl"})
	zed, err := s.GetUser(ctx, "zed")
	must(t, err)
	equalSlice(t, "groups after remove", zed.Groups, []string{})

	list, err := s.ListGroups(ctx)
	must(t, err)
	equalSlice(t, "ListGroups", names(list, func(g *steward.Group) string { return g.Name }), []string{"analysts", "data-eng"})
	equalSlice(t, "listed members", list[0].Members, []string{"etl"})
	equalSlice(t, "listed members", list[1].Members, []string{"amy", "etl"})

	must(t, s.DeleteGroup(ctx, "data-eng"))
	_, err = s.GetGroup(ctx, "data-eng")
	Kind(t, err, steward.ENotFound)
	amy, err := s.GetUser(ctx, "amy")
	must(t, err)
	equalSlice(t, "groups after group deleted", amy.Groups, []string{})
	// Recreating the group starts it empty.
	must(t, s.CreateGroup(ctx, &steward.Group{Name: "data-eng"}))
	got, err = s.GetGroup(ctx, "data-eng")
	must(t, err)
	equalSlice(t, "members of recreated group", got.Members, []string{})
}

func testServiceAccounts(t *testing.T, s *metastore.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, &steward.Group{Name: "pipelines"}))
	sa := &steward.ServiceAccount{Name: "nightly-etl", Description: "Nightly load", Owner: "alice",
		Roles: []string{"loader"}, Groups: []string{"pipelines"}}
	must(t, s.CreateServiceAccount(ctx, sa, "secret-1"))
	if sa.CreatedAt.IsZero() || !sa.RotatedAt.Equal(sa.CreatedAt) {
		t.Fatalf("CreateServiceAccount set CreatedAt %v RotatedAt %v", sa.CreatedAt, sa.RotatedAt)
	}
	must(t, s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "a-bot", Disabled: true}, ""))

	got, err := s.GetServiceAccount(ctx, "nightly-etl")
	must(t, err)
	equal(t, "description", got.Description, "Nightly load")
	equal(t, "owner", got.Owner, "alice")
	equalSlice(t, "roles", got.Roles, []string{"loader"})
	equalSlice(t, "groups", got.Groups, []string{"pipelines"})
	equal(t, "created", got.CreatedAt, sa.CreatedAt)
	equal(t, "rotated", got.RotatedAt, sa.RotatedAt)

	h, err := s.ServiceAccountSecretHash(ctx, "nightly-etl")
	must(t, err)
	equal(t, "secret hash", h, "secret-1")
	must(t, s.SetServiceAccountSecretHash(ctx, "nightly-etl", "secret-2"))
	h, err = s.ServiceAccountSecretHash(ctx, "nightly-etl")
	must(t, err)
	equal(t, "secret hash after rotation", h, "secret-2")
	got, err = s.GetServiceAccount(ctx, "nightly-etl")
	must(t, err)
	if got.RotatedAt.Before(sa.CreatedAt) {
		t.Fatalf("RotatedAt %v before CreatedAt %v", got.RotatedAt, sa.CreatedAt)
	}
	equal(t, "created after rotation", got.CreatedAt, sa.CreatedAt)

	list, err := s.ListServiceAccounts(ctx)
	must(t, err)
	equalSlice(t, "ListServiceAccounts", names(list, func(a *steward.ServiceAccount) string { return a.Name }), []string{"a-bot", "nightly-etl"})
	equal(t, "listed disabled", list[0].Disabled, true)
	equalSlice(t, "listed groups", list[1].Groups, []string{"pipelines"})
	equalSlice(t, "listed groups", list[0].Groups, []string{})

	// Service accounts are not users.
	users, err := s.ListUsers(ctx)
	must(t, err)
	equal(t, "users", len(users), 0)

	must(t, s.DeleteServiceAccount(ctx, "nightly-etl"))
	_, err = s.GetServiceAccount(ctx, "nightly-etl")
	Kind(t, err, steward.ENotFound)
	g, err := s.GetGroup(ctx, "pipelines")
	must(t, err)
	equalSlice(t, "members after service account deleted", g.Members, []string{})
	must(t, s.CreateUser(ctx, &steward.User{Username: "nightly-etl"}, ""))
}

// testIdentityErrors checks every method's error kinds, and that a failed
// call changes nothing.
func testIdentityErrors(t *testing.T, s *metastore.Store) {
	ctx := context.Background()
	must(t, s.CreateUser(ctx, &steward.User{Username: "alice"}, "h"))
	must(t, s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "etl"}, "h"))
	must(t, s.CreateGroup(ctx, &steward.Group{Name: "eng", Members: []string{"alice"}}))

	type call func(context.Context, *metastore.Store) error
	get := func(f func(context.Context, string) error) func(string) call {
		return func(n string) call { return func(ctx context.Context, _ *metastore.Store) error { return f(ctx, n) } }
	}
	getUser := get(func(ctx context.Context, n string) error { _, err := s.GetUser(ctx, n); return err })
	getGroup := get(func(ctx context.Context, n string) error { _, err := s.GetGroup(ctx, n); return err })
	getSA := get(func(ctx context.Context, n string) error { _, err := s.GetServiceAccount(ctx, n); return err })
	pwHash := get(func(ctx context.Context, n string) error { _, err := s.PasswordHash(ctx, n); return err })
	saHash := get(func(ctx context.Context, n string) error { _, err := s.ServiceAccountSecretHash(ctx, n); return err })

	cases := []struct {
		name string
		call call
		want steward.ErrorKind
	}{
		{"CreateUser duplicate", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateUser(ctx, &steward.User{Username: "alice"}, "")
		}, steward.EConflict},
		{"CreateUser named like a service account", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateUser(ctx, &steward.User{Username: "etl"}, "")
		}, steward.EConflict},
		{"CreateUser invalid name", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateUser(ctx, &steward.User{Username: "Bob"}, "")
		}, steward.EInvalid},
		{"CreateUser empty role", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateUser(ctx, &steward.User{Username: "bob", Roles: []string{""}}, "")
		}, steward.EInvalid},
		{"CreateUser unknown group", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateUser(ctx, &steward.User{Username: "bob", Groups: []string{"eng", "nope"}}, "")
		}, steward.ENotFound},
		{"GetUser missing", getUser("bob"), steward.ENotFound},
		{"GetUser service account", getUser("etl"), steward.ENotFound},
		{"GetUser invalid", getUser("a b"), steward.EInvalid},
		{"UpdateUser missing", func(ctx context.Context, s *metastore.Store) error {
			return s.UpdateUser(ctx, &steward.User{Username: "bob"})
		}, steward.ENotFound},
		{"UpdateUser invalid", func(ctx context.Context, s *metastore.Store) error {
			return s.UpdateUser(ctx, &steward.User{Username: ""})
		}, steward.EInvalid},
		{"DeleteUser missing", func(ctx context.Context, s *metastore.Store) error { return s.DeleteUser(ctx, "bob") }, steward.ENotFound},
		{"DeleteUser service account", func(ctx context.Context, s *metastore.Store) error { return s.DeleteUser(ctx, "etl") }, steward.ENotFound},
		{"DeleteUser invalid", func(ctx context.Context, s *metastore.Store) error { return s.DeleteUser(ctx, "-x") }, steward.EInvalid},
		{"PasswordHash missing", pwHash("bob"), steward.ENotFound},
		{"PasswordHash invalid", pwHash("x/y"), steward.EInvalid},
		{"SetPasswordHash missing", func(ctx context.Context, s *metastore.Store) error {
			return s.SetPasswordHash(ctx, "bob", "h")
		}, steward.ENotFound},
		{"SetPasswordHash invalid", func(ctx context.Context, s *metastore.Store) error {
			return s.SetPasswordHash(ctx, "BOB", "h")
		}, steward.EInvalid},

		{"CreateGroup duplicate", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateGroup(ctx, &steward.Group{Name: "eng"})
		}, steward.EConflict},
		{"CreateGroup invalid", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateGroup(ctx, &steward.Group{Name: "_eng"})
		}, steward.EInvalid},
		{"CreateGroup unknown member", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateGroup(ctx, &steward.Group{Name: "ops", Members: []string{"alice", "nobody"}})
		}, steward.ENotFound},
		{"CreateGroup invalid member", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateGroup(ctx, &steward.Group{Name: "ops", Members: []string{"Alice"}})
		}, steward.EInvalid},
		{"GetGroup missing", getGroup("ops"), steward.ENotFound},
		{"GetGroup invalid", getGroup(strings.Repeat("g", 65)), steward.EInvalid},
		{"DeleteGroup missing", func(ctx context.Context, s *metastore.Store) error { return s.DeleteGroup(ctx, "ops") }, steward.ENotFound},
		{"DeleteGroup invalid", func(ctx context.Context, s *metastore.Store) error { return s.DeleteGroup(ctx, "") }, steward.EInvalid},
		{"AddGroupMember unknown group", func(ctx context.Context, s *metastore.Store) error {
			return s.AddGroupMember(ctx, "ops", "alice")
		}, steward.ENotFound},
		{"AddGroupMember unknown member", func(ctx context.Context, s *metastore.Store) error {
			return s.AddGroupMember(ctx, "eng", "bob")
		}, steward.ENotFound},
		{"AddGroupMember already member", func(ctx context.Context, s *metastore.Store) error {
			return s.AddGroupMember(ctx, "eng", "alice")
		}, steward.EConflict},
		{"AddGroupMember invalid group", func(ctx context.Context, s *metastore.Store) error {
			return s.AddGroupMember(ctx, "E", "alice")
		}, steward.EInvalid},
		{"AddGroupMember invalid member", func(ctx context.Context, s *metastore.Store) error {
			return s.AddGroupMember(ctx, "eng", "a'b")
		}, steward.EInvalid},
		{"RemoveGroupMember not a member", func(ctx context.Context, s *metastore.Store) error {
			return s.RemoveGroupMember(ctx, "eng", "etl")
		}, steward.ENotFound},
		{"RemoveGroupMember unknown group", func(ctx context.Context, s *metastore.Store) error {
			return s.RemoveGroupMember(ctx, "ops", "alice")
		}, steward.ENotFound},
		{"RemoveGroupMember invalid", func(ctx context.Context, s *metastore.Store) error {
			return s.RemoveGroupMember(ctx, "eng", "")
		}, steward.EInvalid},

		{"CreateServiceAccount duplicate", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "etl"}, "")
		}, steward.EConflict},
		{"CreateServiceAccount named like a user", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "alice"}, "")
		}, steward.EConflict},
		{"CreateServiceAccount invalid", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "etl job"}, "")
		}, steward.EInvalid},
		{"CreateServiceAccount unknown group", func(ctx context.Context, s *metastore.Store) error {
			return s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "bot", Groups: []string{"nope"}}, "")
		}, steward.ENotFound},
		{"GetServiceAccount missing", getSA("bot"), steward.ENotFound},
		{"GetServiceAccount user", getSA("alice"), steward.ENotFound},
		{"GetServiceAccount invalid", getSA("é"), steward.EInvalid},
		{"DeleteServiceAccount missing", func(ctx context.Context, s *metastore.Store) error {
			return s.DeleteServiceAccount(ctx, "bot")
		}, steward.ENotFound},
		{"DeleteServiceAccount user", func(ctx context.Context, s *metastore.Store) error {
			return s.DeleteServiceAccount(ctx, "alice")
		}, steward.ENotFound},
		{"DeleteServiceAccount invalid", func(ctx context.Context, s *metastore.Store) error {
			return s.DeleteServiceAccount(ctx, ".bot")
		}, steward.EInvalid},
		{"ServiceAccountSecretHash missing", saHash("bot"), steward.ENotFound},
		{"ServiceAccountSecretHash invalid", saHash("Bot"), steward.EInvalid},
		{"SetServiceAccountSecretHash missing", func(ctx context.Context, s *metastore.Store) error {
			return s.SetServiceAccountSecretHash(ctx, "bot", "h")
		}, steward.ENotFound},
		{"SetServiceAccountSecretHash invalid", func(ctx context.Context, s *metastore.Store) error {
			return s.SetServiceAccountSecretHash(ctx, "", "h")
		}, steward.EInvalid},
	}
	want := snapshot(t, s)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Kind(t, tc.call(ctx, s), tc.want)
			if got := snapshot(t, s); got != want {
				t.Fatalf("failed call changed the store:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// snapshot renders every identity in s, to compare before and after.
func snapshot(t *testing.T, s *metastore.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	users, err := s.ListUsers(ctx)
	must(t, err)
	for _, u := range users {
		h, err := s.PasswordHash(ctx, u.Username)
		must(t, err)
		b.WriteString("user " + u.Username + " " + u.Email + " " + strings.Join(u.Groups, ",") + " " + strings.Join(u.Roles, ",") +
			" " + u.UpdatedAt.String() + " " + h + "\n")
	}
	groups, err := s.ListGroups(ctx)
	must(t, err)
	for _, g := range groups {
		b.WriteString("group " + g.Name + " " + strings.Join(g.Members, ",") + "\n")
	}
	sas, err := s.ListServiceAccounts(ctx)
	must(t, err)
	for _, a := range sas {
		h, err := s.ServiceAccountSecretHash(ctx, a.Name)
		must(t, err)
		b.WriteString("sa " + a.Name + " " + strings.Join(a.Groups, ",") + " " + a.RotatedAt.String() + " " + h + "\n")
	}
	return b.String()
}

func testNames(t *testing.T, s *metastore.Store) {
	ctx := context.Background()
	cases := []struct {
		name  string
		valid bool
	}{
		{"a", true},
		{"7", true},
		{"alice", true},
		{"a.b_c-d", true},
		{"0xdead.beef", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"Alice", false},
		{"-a", false},
		{".a", false},
		{"_a", false},
		{"a b", false},
		{"a/b", false},
		{"a@b", false},
		{"a'b", false},
		{"a?", false},
		{"ä", false},
		{"a\x00", false},
		{"a\n", false},
	}
	for i, tc := range cases {
		t.Run(strings.ToValidUTF8(tc.name, "?"), func(t *testing.T) {
			equal(t, "ValidName", metastore.ValidName(tc.name), tc.valid)
			want := steward.EInvalid
			if tc.valid {
				want = ""
			}
			// Groups have their own namespace; users and service accounts
			// share one, so alternate between them.
			Kind(t, s.CreateGroup(ctx, &steward.Group{Name: tc.name}), want)
			if i%2 == 0 {
				Kind(t, s.CreateUser(ctx, &steward.User{Username: tc.name}, ""), want)
			} else {
				Kind(t, s.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: tc.name}, ""), want)
			}
		})
	}
}

func testTimestamps(t *testing.T, s *metastore.Store) {
	ctx := context.Background()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	base := time.Date(2024, 2, 29, 23, 59, 59, 0, zone)
	// Chosen so that text comparison of variable-width fractions would
	// order them wrongly (.5 > .45 as text but not with fixed width).
	times := []time.Time{
		base.Add(450 * time.Millisecond),
		base.Add(5 * time.Millisecond),
		base.Add(500 * time.Millisecond),
		base.Add(123456789 * time.Nanosecond),
		base.Add(time.Second),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2100, 1, 1, 0, 0, 0, 1000, time.UTC),
	}
	for i, tm := range times {
		u := &steward.User{Username: "u" + string(rune('a'+i)), CreatedAt: tm, UpdatedAt: tm.Add(time.Hour)}
		must(t, s.CreateUser(ctx, u, ""))
		got, err := s.GetUser(ctx, u.Username)
		must(t, err)
		want := tm.Truncate(time.Microsecond).UTC()
		if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
			t.Fatalf("CreatedAt round trip: stored %v, got %v (%v), want %v UTC", tm, got.CreatedAt, got.CreatedAt.Location(), want)
		}
		if got.CreatedAt != u.CreatedAt {
			t.Fatalf("CreatedAt written back to the user %v differs from stored %v", u.CreatedAt, got.CreatedAt)
		}
		if !got.UpdatedAt.Equal(want.Add(time.Hour)) || got.UpdatedAt.Location() != time.UTC {
			t.Fatalf("UpdatedAt round trip: got %v, want %v", got.UpdatedAt, want.Add(time.Hour))
		}
	}
	// Timestamps sort in time order inside the database.
	rows, err := s.Query(ctx, `SELECT created_at FROM users ORDER BY created_at`)
	must(t, err)
	defer rows.Close()
	var got []time.Time
	for rows.Next() {
		var tm time.Time
		must(t, rows.Scan(metastore.ScanTime(&tm)))
		got = append(got, tm)
	}
	must(t, rows.Err())
	if !slices.IsSortedFunc(got, func(a, b time.Time) int { return a.Compare(b) }) || len(got) != len(times) {
		t.Fatalf("ORDER BY created_at gave %v", got)
	}
	// And compare with a bound argument.
	var n int
	must(t, s.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE created_at > ?`,
		metastore.TimeValue(s.Dialect(), base.Add(460*time.Millisecond))).Scan(&n))
	equal(t, "users created after the bound", n, 3)

	// A zero CreatedAt is filled with now.
	before := time.Now().Truncate(time.Microsecond)
	g := &steward.Group{Name: "g"}
	must(t, s.CreateGroup(ctx, g))
	after := time.Now()
	gg, err := s.GetGroup(ctx, "g")
	must(t, err)
	if gg.CreatedAt.Before(before) || gg.CreatedAt.After(after) || gg.CreatedAt.Location() != time.UTC {
		t.Fatalf("group CreatedAt %v not within [%v, %v] UTC", gg.CreatedAt, before, after)
	}
}

func names[T any](xs []T, name func(T) string) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, name(x))
	}
	return out
}
