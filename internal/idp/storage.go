package idp

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// storage is the Provider seen as zitadel's op.Storage. Everything it keeps
// is in the metastore.
type storage Provider

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.DeviceAuthorizationStorage     = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
)

func (s *storage) p() *Provider { return (*Provider)(s) }

var errNotFound = errors.New("not found or expired")

// oidcError maps a steward error to the OAuth error op should answer.
func oidcError(err error) *oidc.Error {
	if steward.KindOf(err) == steward.EInternal {
		return oidc.ErrServerError().WithParent(err)
	}
	return oidc.ErrInvalidGrant().WithDescription("%s", steward.MessageOf(err)).WithParent(err)
}

// ---- authorization code flow ----

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired() // there are no sessions to use silently
	}
	if req.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrInvalidRequest().WithDescription("response_type must be code")
	}
	if req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method S256")
	}
	if req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	now := s.now()
	ar := &authRequest{
		ID:                  uuid.NewString(),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		State:               req.State,
		Nonce:               req.Nonce,
		Scopes:              allowedScopes(req.Scopes),
		ResponseType:        req.ResponseType,
		ResponseMode:        req.ResponseMode,
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
		CreatedAt:           now.UTC(),
	}
	data, err := json.Marshal(ar)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Exec(ctx, `INSERT INTO idp_auth_requests (id, data, expires_at) VALUES (?, ?, ?)`,
		ar.ID, string(data), now.Add(s.cfg.AuthRequestTTL).Unix()); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return ar, nil
}

func (s *storage) authRequest(ctx context.Context, q metastore.Querier, id string) (*authRequest, error) {
	var data string
	err := q.QueryRow(ctx, `SELECT data FROM idp_auth_requests WHERE id = ? AND expires_at >= ?`, id, s.now().Unix()).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	ar := new(authRequest)
	if err := json.Unmarshal([]byte(data), ar); err != nil {
		return nil, err
	}
	return ar, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	ar, err := s.authRequest(ctx, s.store, id)
	if err != nil {
		return nil, err
	}
	return ar, nil
}

// AuthRequestByCode redeems a code: each code works once, even if the
// exchange then fails (a wrong code_verifier burns the code).
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	var ar *authRequest
	err := s.store.InTx(ctx, func(tx *metastore.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `SELECT auth_request_id FROM idp_auth_codes WHERE code_hash = ? AND expires_at >= ?`,
			hashToken(code), s.now().Unix()).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM idp_auth_codes WHERE code_hash = ?`, hashToken(code))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errNotFound
		}
		ar, err = s.authRequest(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ar.IsDone {
		return nil, errNotFound
	}
	return ar, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	_, err := s.store.Exec(ctx, `INSERT INTO idp_auth_codes (code_hash, auth_request_id, expires_at) VALUES (?, ?, ?)`,
		hashToken(code), id, s.now().Add(authCodeTTL).Unix())
	return err
}

func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.store.InTx(ctx, func(tx *metastore.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM idp_auth_codes WHERE auth_request_id = ?`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM idp_auth_requests WHERE id = ?`, id)
		return err
	})
}

// completeAuthRequest marks the request id as logged in by username.
func (p *Provider) completeAuthRequest(ctx context.Context, id, username string) error {
	s := (*storage)(p)
	return p.store.InTx(ctx, func(tx *metastore.Tx) error {
		ar, err := s.authRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		if ar.IsDone {
			return errNotFound
		}
		ar.Subject, ar.AuthTime, ar.IsDone = username, p.now().UTC(), true
		data, err := json.Marshal(ar)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE idp_auth_requests SET data = ? WHERE id = ?`, string(data), id)
		return err
	})
}

// ---- tokens ----

// issue checks that the subject may still have tokens and records the
// issuance. Its error fails the token request.
func (s *storage) issue(ctx context.Context, req op.TokenRequest, jti string, refresh bool) error {
	grant, clientID, kind, _, _ := describe(req)
	action := "token.issue"
	if grant == grantRefresh {
		action = "token.refresh"
	}
	if _, err := s.p().identity(ctx, kind, req.GetSubject()); err != nil {
		if rerr := s.p().record(ctx, steward.AuditEvent{Actor: req.GetSubject(), ActorKind: string(kind), Action: action,
			Resource: "idp/client/" + clientID, Outcome: "failure", Reason: steward.MessageOf(err),
			Details: map[string]any{"grant_type": grant, "client_id": clientID}}); rerr != nil {
			return oidc.ErrServerError().WithParent(rerr)
		}
		if steward.KindOf(err) == steward.EInternal {
			return oidc.ErrServerError().WithParent(err)
		}
		return oidc.ErrInvalidGrant().WithDescription("%s", steward.MessageOf(err)).WithParent(err)
	}
	err := s.p().record(ctx, steward.AuditEvent{Actor: req.GetSubject(), ActorKind: string(kind), Action: action,
		Resource: "idp/client/" + clientID, Outcome: "success",
		Details: map[string]any{"grant_type": grant, "client_id": clientID, "subject": req.GetSubject(), "jti": jti,
			"scopes": req.GetScopes(), "refresh_token": refresh}})
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	jti := uuid.NewString()
	if err := s.issue(ctx, req, jti, false); err != nil {
		return "", time.Time{}, err
	}
	return jti, s.now().Add(s.cfg.AccessTokenTTL), nil
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	grant, clientID, kind, amr, authTime := describe(req)
	if grant == "unknown" {
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	now := s.now()
	family := uuid.NewString()
	if current != "" {
		rr, ok := req.(*refreshRequest)
		if !ok {
			return "", "", time.Time{}, oidc.ErrInvalidGrant()
		}
		family = rr.familyID
		// Rotate: the presented token becomes used, atomically; losing
		// the race means it was used twice.
		res, err := s.store.Exec(ctx, `UPDATE idp_refresh_tokens SET used = 1 WHERE token_hash = ? AND used = 0 AND revoked = 0 AND expires_at >= ?`,
			hashToken(current), now.Unix())
		if err != nil {
			return "", "", time.Time{}, oidc.ErrServerError().WithParent(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return "", "", time.Time{}, s.reuseDetected(ctx, rr.id, family, rr.subject, clientID)
		}
	}
	jti := uuid.NewString()
	if err := s.issue(ctx, req, jti, true); err != nil {
		return "", "", time.Time{}, err
	}
	token := string(NewSecret())
	scopes, _ := json.Marshal(req.GetScopes())
	amrJSON, _ := json.Marshal(amr)
	if authTime.IsZero() {
		authTime = now
	}
	_, err := s.store.Exec(ctx, `INSERT INTO idp_refresh_tokens (token_hash, id, family_id, client_id, subject, kind, scopes, amr, auth_time, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		hashToken(token), uuid.NewString(), family, clientID, req.GetSubject(), string(kind), string(scopes), string(amrJSON),
		authTime.Unix(), now.Unix(), now.Add(s.cfg.RefreshTokenTTL).Unix())
	if err != nil {
		return "", "", time.Time{}, oidc.ErrServerError().WithParent(err)
	}
	return jti, token, now.Add(s.cfg.AccessTokenTTL), nil
}

// reuseDetected revokes the family of a refresh token presented after it
// was used, and records it.
func (s *storage) reuseDetected(ctx context.Context, id, family, subject, clientID string) error {
	if _, err := s.store.Exec(ctx, `UPDATE idp_refresh_tokens SET revoked = 1 WHERE family_id = ?`, family); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	s.log.Warn("refresh token reuse: token family revoked", "subject", subject, "client_id", clientID, "refresh_token_id", id)
	if err := s.p().record(ctx, steward.AuditEvent{Actor: subject, ActorKind: "user", Action: "token.revoke",
		Resource: "idp/client/" + clientID, Outcome: "success", Reason: "refresh token reuse detected",
		Details: map[string]any{"client_id": clientID, "refresh_token_id": id, "family_id": family}}); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return oidc.ErrInvalidGrant().WithDescription("refresh token already used")
}

type refreshRow struct {
	refreshRequest
	used, revoked bool
	expires       time.Time
}

func (s *storage) refreshByToken(ctx context.Context, token string) (*refreshRow, error) {
	var r refreshRow
	var kind, scopes, amr string
	var authTime, expires, used, revoked int64
	err := s.store.QueryRow(ctx, `SELECT id, family_id, client_id, subject, kind, scopes, amr, auth_time, expires_at, used, revoked
		FROM idp_refresh_tokens WHERE token_hash = ?`, hashToken(token)).
		Scan(&r.id, &r.familyID, &r.clientID, &r.subject, &kind, &scopes, &amr, &authTime, &expires, &used, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, op.ErrInvalidRefreshToken
	}
	if err != nil {
		return nil, err
	}
	r.grant, r.kind = grantRefresh, steward.PrincipalKind(kind)
	if err := json.Unmarshal([]byte(scopes), &r.scopes); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(amr), &r.amr); err != nil {
		return nil, err
	}
	r.authTime, r.expires = time.Unix(authTime, 0), time.Unix(expires, 0)
	r.used, r.revoked = used != 0, revoked != 0
	return &r, nil
}

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	r, err := s.refreshByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	switch {
	case r.revoked:
		return nil, errors.New("refresh token revoked")
	case r.used:
		return nil, s.reuseDetected(ctx, r.id, r.familyID, r.subject, r.clientID)
	case s.now().After(r.expires):
		return nil, errors.New("refresh token expired")
	}
	return &r.refreshRequest, nil
}

func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	if userID == "" {
		return nil
	}
	_, err := s.store.Exec(ctx, `UPDATE idp_refresh_tokens SET revoked = 1 WHERE subject = ? AND client_id = ?`, userID, clientID)
	return err
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	r, err := s.refreshByToken(ctx, token)
	if err != nil {
		if errors.Is(err, op.ErrInvalidRefreshToken) {
			return "", "", err
		}
		return "", "", err
	}
	if r.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return r.subject, "rt:" + r.id, nil
}

// RevokeToken revokes a refresh token's family ("rt:<id>" from
// GetRefreshTokenInfo) or an access token by its jti.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	if userID == "" {
		return nil // not a token of ours: nothing to do (RFC 7009, section 2.2)
	}
	details := map[string]any{"client_id": clientID}
	if id, ok := strings.CutPrefix(tokenOrID, "rt:"); ok {
		if _, err := s.store.Exec(ctx, `UPDATE idp_refresh_tokens SET revoked = 1 WHERE family_id = (SELECT family_id FROM idp_refresh_tokens WHERE id = ?)`, id); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		details["refresh_token_id"] = id
	} else {
		_, err := s.store.Exec(ctx, `INSERT INTO idp_revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING`,
			tokenOrID, s.now().Add(s.cfg.AccessTokenTTL+time.Minute).Unix())
		if err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		details["jti"] = tokenOrID
	}
	if err := s.p().record(ctx, steward.AuditEvent{Actor: userID, ActorKind: "user", Action: "token.revoke",
		Resource: "idp/client/" + clientID, Outcome: "success", Details: details}); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// ---- keys ----

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, err := s.p().signingKey(ctx)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	keys, err := s.p().publishedKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(keys))
	for i, k := range keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

// ---- clients ----

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p().client(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.p().checkServiceSecret(ctx, id, secret)
	return err
}

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	sa, err := s.p().checkServiceSecret(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	return s.p().serviceClient(sa), nil
}

func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &tokenRequest{grant: grantClient, subject: id, clientID: id, kind: steward.KindService,
		scopes: allowedScopes(scopes), authTime: s.now()}, nil
}

// ---- claims ----

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil // deprecated by op; SetUserinfoFromRequest does the work
}

func (s *storage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	_, _, kind, _, _ := describe(req.(op.TokenRequest))
	id, err := s.p().identity(ctx, kind, req.GetSubject())
	if err != nil {
		return oidcError(err)
	}
	id.setUserinfo(ui, scopes)
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	if revoked, err := s.p().IsRevoked(ctx, tokenID); err != nil || revoked {
		return errors.Join(errors.New("token revoked"), err)
	}
	id, err := s.p().identity(ctx, "", subject)
	if err != nil {
		return err
	}
	id.setUserinfo(ui, []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail})
	return nil
}

func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	if revoked, err := s.p().IsRevoked(ctx, tokenID); err != nil || revoked {
		return errors.Join(errors.New("token revoked"), err)
	}
	id, err := s.p().identity(ctx, "", subject)
	if err != nil {
		return err
	}
	ui := new(oidc.UserInfo)
	id.setUserinfo(ui, []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail})
	resp.SetUserInfo(ui)
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	id, err := s.p().identity(ctx, "", userID)
	if err != nil {
		return nil, err
	}
	return id.accessClaims(clientID, scopes), nil
}

func (s *storage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	_, clientID, kind, _, _ := describe(req)
	id, err := s.p().identity(ctx, kind, req.GetSubject())
	if err != nil {
		return nil, oidcError(err)
	}
	return id.accessClaims(clientID, req.GetScopes()), nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile client authentication is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grant is not supported")
}

func (s *storage) Health(ctx context.Context) error { return s.store.Ping(ctx) }

// ---- device authorization ----

func (s *storage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	sc, _ := json.Marshal(allowedScopes(scopes))
	_, err := s.store.Exec(ctx, `INSERT INTO idp_device_codes (device_code_hash, user_code, client_id, scopes, expires_at) VALUES (?, ?, ?, ?, ?)`,
		hashToken(deviceCode), userCode, clientID, string(sc), expires.Unix())
	if metastore.IsUniqueViolation(err) {
		return op.ErrDuplicateUserCode
	}
	return err
}

// GetDeviceAuthorizatonState returns the state of a device authorization.
// An approved one is handed out once: the first poll after approval
// consumes it.
func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	var state, subject, scopes string
	var authTime, expires int64
	h := hashToken(deviceCode)
	err := s.store.QueryRow(ctx, `SELECT state, subject, scopes, auth_time, expires_at FROM idp_device_codes WHERE device_code_hash = ? AND client_id = ?`,
		h, clientID).Scan(&state, &subject, &scopes, &authTime, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	st := &op.DeviceAuthorizationState{ClientID: clientID, Audience: []string{Audience}, Expires: time.Unix(expires, 0)}
	if err := json.Unmarshal([]byte(scopes), &st.Scopes); err != nil {
		return nil, err
	}
	switch state {
	case "denied":
		st.Denied = true
	case "approved":
		res, err := s.store.Exec(ctx, `UPDATE idp_device_codes SET state = 'consumed' WHERE device_code_hash = ? AND state = 'approved'`, h)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil, errNotFound
		}
		st.Done, st.Subject, st.AMR, st.AuthTime = true, subject, []string{"pwd"}, time.Unix(authTime, 0)
	case "consumed":
		return nil, errNotFound
	}
	return st, nil
}

// deviceClient returns the client of the pending, unexpired device
// authorization with userCode.
func (p *Provider) deviceClient(ctx context.Context, userCode string) (string, error) {
	var clientID string
	err := p.store.QueryRow(ctx, `SELECT client_id FROM idp_device_codes WHERE user_code = ? AND state = 'pending' AND expires_at >= ?`,
		userCode, p.now().Unix()).Scan(&clientID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNotFound
	}
	return clientID, err
}

// decideDevice approves or denies the pending device authorization with
// userCode on behalf of username.
func (p *Provider) decideDevice(ctx context.Context, userCode, username string, approve bool) error {
	state := "denied"
	if approve {
		state = "approved"
	}
	now := p.now()
	res, err := p.store.Exec(ctx, `UPDATE idp_device_codes SET state = ?, subject = ?, auth_time = ? WHERE user_code = ? AND state = 'pending' AND expires_at >= ?`,
		state, username, now.Unix(), userCode, now.Unix())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errNotFound
	}
	return nil
}
