package sts

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward"
)

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

// RoleARNPrefix prefixes the role ARNs a session may be narrowed to:
// RoleARNPrefix + "<group or role>"; RoleARNPrefix + "*" keeps all of the
// principal's groups and roles.
func (s *Service) RoleARNPrefix() string { return "arn:aws:iam::" + s.cfg.Account + ":role/" }

func stsError(kind steward.ErrorKind, code, msg string) error {
	e := steward.Errorf(kind, "%s", msg)
	e.Op = code
	return e
}

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
	Result  struct {
		SubjectFromWebIdentityToken string `xml:"SubjectFromWebIdentityToken"`
		Audience                    string `xml:"Audience,omitempty"`
		AssumedRoleUser             struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
		Credentials credentialsXML `xml:"Credentials"`
		Provider    string         `xml:"Provider,omitempty"`
	} `xml:"AssumeRoleWithWebIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func writeSTSError(w http.ResponseWriter, status int, code, msg, reqID string) {
	var e errorResponse
	e.Error.Type = "Sender"
	if status >= 500 {
		e.Error.Type = "Receiver"
	}
	e.Error.Code, e.Error.Message, e.RequestID = code, msg, reqID
	b, _ := xml.Marshal(e)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

func validSessionName(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_+=,.@-", c)) {
			return false
		}
	}
	return true
}

// ServeSTS serves STS actions (AssumeRoleWithWebIdentity) posted to the
// S3 endpoint root; implements s3api.STSHandler.
func (s *Service) ServeSTS(w http.ResponseWriter, r *http.Request) {
	reqID := steward.RequestIDFrom(r.Context())
	if reqID == "" {
		reqID = steward.NewRequestID()
	}
	w.Header().Set("X-Amzn-RequestId", reqID)
	ctx := steward.WithRequestID(r.Context(), reqID)
	client := steward.ClientAddrFrom(ctx)
	if client == "" {
		client, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	ev := steward.AuditEvent{Time: time.Now().UTC(), RequestID: reqID, Actor: "anonymous", ActorKind: "anonymous",
		Action: "sts:AssumeRoleWithWebIdentity", ClientAddr: client}
	iss, status, err := s.assume(ctx, w, r, &ev)
	if err != nil {
		code, msg := "InternalFailure", "internal error"
		var se *steward.Error
		if errors.As(err, &se) {
			msg = steward.MessageOf(se)
			code = se.Op
			switch se.Kind {
			case steward.EInvalid:
				status = 400
				if code == "" {
					code = "ValidationError"
				}
			case steward.EPermission:
				status, code = 403, "AccessDenied"
			case steward.EUnauthenticated:
				status = 400
				if code == "" {
					code = "InvalidIdentityToken"
				}
			case steward.EUnavailable:
				status, code, msg = 503, "ServiceUnavailable", "the service is unavailable"
			default:
				status, code, msg = 500, "InternalFailure", "internal error"
			}
		}
		if status >= 500 {
			s.log.ErrorContext(ctx, "AssumeRoleWithWebIdentity failed", "request_id", reqID, "err", err)
		}
		ev.Outcome, ev.Reason = "failure", code+": "+msg
		if ev.Decision == "" && status == 403 {
			ev.Decision = "deny"
		}
		if aerr := s.auditor.Record(ctx, ev); aerr != nil {
			s.log.ErrorContext(ctx, "audit record failed", "err", aerr)
			status, code, msg = 503, "ServiceUnavailable", "the audit trail is unavailable"
		}
		writeSTSError(w, status, code, msg, reqID)
		return
	}
	ev.Outcome, ev.Decision = "success", "allow"
	ev.Details = map[string]any{"session": iss.SessionID, "expires": iss.Expiration.Format(time.RFC3339), "access_key_id": iss.AccessKeyID}
	if iss.Role != "" {
		ev.Details["role"] = iss.Role
	}
	if err := s.auditor.Record(ctx, ev); err != nil {
		s.log.ErrorContext(ctx, "audit record failed; refusing to issue credentials", "err", err)
		writeSTSError(w, 503, "ServiceUnavailable", "the audit trail is unavailable", reqID)
		return
	}
	var out assumeResponse
	res := &out.Result
	res.SubjectFromWebIdentityToken = iss.Principal.Subject
	res.Audience = iss.Principal.ClientID
	res.Provider = iss.Principal.Issuer
	role := iss.Role
	if role == "" {
		role = "steward"
	}
	sessName := r.Form.Get("RoleSessionName")
	res.AssumedRoleUser.Arn = "arn:aws:sts::" + s.cfg.Account + ":assumed-role/" + role + "/" + sessName
	res.AssumedRoleUser.AssumedRoleID = "AROA" + strings.ToUpper(iss.SessionID[:16]) + ":" + sessName
	res.Credentials = credentialsXML{AccessKeyID: iss.AccessKeyID, SecretAccessKey: iss.SecretAccessKey.Reveal(),
		SessionToken: iss.SessionToken.Reveal(), Expiration: iss.Expiration.Format(time.RFC3339)}
	out.RequestID = reqID
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

func (s *Service) assume(ctx context.Context, w http.ResponseWriter, r *http.Request, ev *steward.AuditEvent) (*Issued, int, error) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, 405, stsError(steward.EInvalid, "InvalidAction", "use POST")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, 400, stsError(steward.EInvalid, "InvalidParameterValue", "the request body is not a valid form or is too large")
	}
	f := r.Form
	if a := f.Get("Action"); a != "AssumeRoleWithWebIdentity" {
		return nil, 400, stsError(steward.EInvalid, "InvalidAction", "only AssumeRoleWithWebIdentity is supported")
	}
	if v := f.Get("Version"); v != "2011-06-15" {
		return nil, 400, stsError(steward.EInvalid, "InvalidParameterValue", "Version must be 2011-06-15")
	}
	tok := f.Get("WebIdentityToken")
	if tok == "" {
		return nil, 400, stsError(steward.EInvalid, "MissingParameter", "WebIdentityToken is required")
	}
	if len(tok) > 20000 {
		return nil, 400, stsError(steward.EInvalid, "ValidationError", "WebIdentityToken is too long")
	}
	name := f.Get("RoleSessionName")
	if !validSessionName(name) {
		return nil, 400, stsError(steward.EInvalid, "ValidationError", "RoleSessionName must be 2 to 64 characters of [A-Za-z0-9_+=,.@-]")
	}
	d := s.cfg.DefaultDuration
	if v := f.Get("DurationSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || time.Duration(n)*time.Second < s.cfg.MinDuration || time.Duration(n)*time.Second > s.cfg.MaxDuration {
			return nil, 400, stsError(steward.EInvalid, "ValidationError",
				"DurationSeconds must be between "+strconv.Itoa(int(s.cfg.MinDuration.Seconds()))+" and "+strconv.Itoa(int(s.cfg.MaxDuration.Seconds())))
		}
		d = time.Duration(n) * time.Second
	}
	var pol *SessionPolicy
	if v := f.Get("Policy"); v != "" {
		if !utf8.ValidString(v) {
			return nil, 400, stsError(steward.EInvalid, "MalformedPolicyDocument", "the policy is not UTF-8")
		}
		p, err := ParseSessionPolicy(v)
		if err != nil {
			return nil, 400, err
		}
		pol = p
	}
	if f.Get("PolicyArns.member.1.arn") != "" {
		return nil, 400, stsError(steward.EInvalid, "InvalidParameterValue", "PolicyArns are not supported; pass an inline Policy")
	}
	p, err := s.verifier.Verify(ctx, tok)
	if err != nil {
		if steward.KindOf(err) == steward.EUnavailable {
			return nil, 400, stsError(steward.EUnauthenticated, "IDPCommunicationError", "the identity provider could not be reached")
		}
		return nil, 400, stsError(steward.EUnauthenticated, "InvalidIdentityToken", steward.MessageOf(err))
	}
	ev.Actor, ev.ActorKind = p.Username, string(p.Kind)
	if ev.ActorKind == "" {
		ev.ActorKind = string(steward.KindUser)
	}
	role := ""
	if arn := f.Get("RoleArn"); arn != "" {
		rest, ok := strings.CutPrefix(arn, s.RoleARNPrefix())
		if !ok || rest == "" {
			ev.Resource = arn
			return nil, 403, stsError(steward.EPermission, "AccessDenied", "not authorized to assume "+arn)
		}
		role = rest
		ev.Resource = "role:" + rest
	}
	iss, err := s.Issue(ctx, p, d, role, pol)
	if err != nil {
		return nil, 0, err
	}
	return iss, 200, nil
}
