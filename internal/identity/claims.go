package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stewardhq/steward"
)

// claims is a decoded JWT claims set; numbers are kept as json.Number.
type claims map[string]any

func decodeClaims(payload []byte) (claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var c claims
	if err := dec.Decode(&c); err != nil {
		return nil, fail(reasonMalformed, err)
	}
	if c == nil {
		return nil, failf(reasonMalformed, "claims are not an object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, failf(reasonMalformed, "data after claims")
	}
	return c, nil
}

// principal checks the verified claims in payload and maps them.
func (v *Verifier) principal(payload []byte) (*steward.Principal, error) {
	c, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	cfg := &v.cfg

	iss, ok := c["iss"].(string)
	if !ok || iss != cfg.Issuer {
		return nil, failf(reasonIssuer, "issuer mismatch")
	}
	if typ, ok := c["typ"].(string); ok {
		switch strings.ToLower(typ) {
		case "refresh", "offline", "logout":
			return nil, failf(reasonTokenType, "refresh, offline or logout token")
		}
	}

	now := cfg.Now()
	exp, ok, err := c.time("exp")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, failf(reasonMalformed, "no exp")
	}
	if now.After(exp.Add(cfg.ClockSkew)) {
		return nil, failf(reasonExpired, "expired")
	}
	nbf, ok, err := c.time("nbf")
	if err != nil {
		return nil, err
	}
	if ok && now.Add(cfg.ClockSkew).Before(nbf) {
		return nil, failf(reasonNotYet, "nbf in the future")
	}
	iat, ok, err := c.time("iat")
	if err != nil {
		return nil, err
	}
	if ok && now.Add(cfg.ClockSkew).Before(iat) {
		return nil, failf(reasonNotYet, "iat in the future")
	}

	aud, err := c.audience()
	if err != nil {
		return nil, err
	}
	azp, err := c.optString("azp")
	if err != nil {
		return nil, err
	}
	if !accepted(aud, azp, cfg.Audiences, cfg.AuthorizedParties) {
		return nil, failf(reasonAudience, "neither aud nor azp accepted")
	}
	clientID := azp
	if clientID == "" {
		// RFC 9068 access tokens name the client in client_id.
		if clientID, err = c.optString("client_id"); err != nil {
			return nil, err
		}
	}

	sub, err := c.optString("sub")
	if err != nil {
		return nil, err
	}
	if sub == "" {
		return nil, failf(reasonMalformed, "no sub")
	}
	jti, err := c.optString("jti")
	if err != nil {
		return nil, err
	}

	uv, ok := c.path(cfg.UsernameClaim)
	if !ok || uv == "" {
		return nil, failf(reasonNoUsername, "no username claim")
	}
	username, ok := uv.(string)
	if !ok || !validName(username) {
		return nil, failf(reasonClaimType, "username claim is not a valid name")
	}
	groups, err := c.names(cfg.GroupsClaim, !cfg.KeepGroupsSlash)
	if err != nil {
		return nil, err
	}
	roles, err := c.names(cfg.RolesClaim, false)
	if err != nil {
		return nil, err
	}

	kind := steward.KindUser
	if sv, ok := c.path(cfg.ServiceAccountClaim); ok && sv == cfg.ServiceAccountValue {
		kind = steward.KindService
	}
	if strings.HasPrefix(username, cfg.ServiceAccountPrefix) {
		kind = steward.KindService
	}

	p := &steward.Principal{
		Kind:      kind,
		Subject:   sub,
		Username:  username,
		Groups:    groups,
		Roles:     roles,
		Issuer:    iss,
		ClientID:  clientID,
		TokenID:   jti,
		ExpiresAt: exp,
	}
	if !iat.IsZero() {
		p.IssuedAt = iat
	}
	return p, nil
}

func accepted(aud []string, azp string, audiences, parties []string) bool {
	for _, a := range aud {
		for _, want := range audiences {
			if a == want {
				return true
			}
		}
	}
	if azp != "" {
		for _, want := range parties {
			if azp == want {
				return true
			}
		}
	}
	return false
}

// time reads a NumericDate claim.
func (c claims) time(name string) (time.Time, bool, error) {
	v, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false, failf(reasonMalformed, name+" is not a number")
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false, failf(reasonMalformed, name+" is out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// audience reads "aud", a string or an array of strings.
func (c claims) audience() ([]string, error) {
	switch a := c["aud"].(type) {
	case nil:
		if _, present := c["aud"]; present {
			return nil, failf(reasonMalformed, "aud is null")
		}
		return nil, nil
	case string:
		return []string{a}, nil
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, failf(reasonMalformed, "aud has a non-string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, failf(reasonMalformed, "aud is neither string nor array")
}

// optString reads a string claim that may be absent.
func (c claims) optString(name string) (string, error) {
	v, ok := c[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", failf(reasonMalformed, name+" is not a string")
	}
	return s, nil
}

// path finds a claim by name; a top-level claim with the literal name wins,
// otherwise a dotted name walks nested objects.
func (c claims) path(name string) (any, bool) {
	if v, ok := c[name]; ok {
		return v, true
	}
	var cur any = map[string]any(c)
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// names reads a list-of-names claim (groups, roles). Absent or null is
// empty; a single string is one name; anything else must be an array of
// valid names.
func (c claims) names(name string, stripSlash bool) ([]string, error) {
	v, ok := c.path(name)
	if !ok || v == nil {
		return nil, nil
	}
	var raw []any
	switch t := v.(type) {
	case string:
		raw = []any{t}
	case []any:
		raw = t
	default:
		return nil, fail(reasonClaimType, errors.New(name+" is not a list of strings"))
	}
	if len(raw) > maxClaimValues {
		return nil, failf(reasonClaimType, name+" has too many values")
	}
	out := make([]string, 0, len(raw))
	for _, e := range raw {
		s, ok := e.(string)
		if !ok {
			return nil, failf(reasonClaimType, name+" has a non-string value")
		}
		if stripSlash {
			s = strings.TrimPrefix(s, "/")
		}
		if s == "" {
			continue
		}
		if !validName(s) {
			return nil, failf(reasonClaimType, name+" has an invalid value")
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// validName accepts printable UTF-8 of bounded length, so that names are
// safe in logs, audit records and policies.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLength || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}
