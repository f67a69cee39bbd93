package steward

import (
	"errors"
	"fmt"
)

// ErrorKind classifies an error so that each transport can map it to its own
// codes in one place.
type ErrorKind string

// The kinds of error. Transports map each to a status: Invalid 400,
// Unauthenticated 401, Permission 403, NotFound 404, Conflict 409,
// TooLarge 413, Unavailable 503, Internal 500.
const (
	EInvalid         ErrorKind = "invalid"
	EUnauthenticated ErrorKind = "unauthenticated"
	EPermission      ErrorKind = "permission"
	ENotFound        ErrorKind = "not_found"
	EConflict        ErrorKind = "conflict"
	ETooLarge        ErrorKind = "too_large"
	EUnavailable     ErrorKind = "unavailable"
	EInternal        ErrorKind = "internal"
)

// Error is Steward's error type. Message is safe to show to the caller; Err
// carries internal detail that is logged but never returned to a user.
type Error struct {
	Kind    ErrorKind
	Op      string // operation, for logs: "metastore.CreateUser"
	Message string // for the caller
	Err     error  // cause, for logs only
}

func (e *Error) Error() string {
	s := string(e.Kind)
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a caller-safe message.
func Errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error of kind k for operation op whose cause is err.
// The message shown to callers is msg; err stays internal.
func WrapError(k ErrorKind, op string, err error, msg string) *Error {
	return &Error{Kind: k, Op: op, Message: msg, Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, or EInternal.
func KindOf(err error) ErrorKind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return EInternal
}

// MessageOf returns the caller-safe message of err. Errors that are not
// *Error yield a generic message so that internal detail never leaks.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	if KindOf(err) == EInternal {
		return "internal error"
	}
	return string(KindOf(err))
}
