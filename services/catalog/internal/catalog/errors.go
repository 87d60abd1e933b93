package catalog

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned when a resource does not exist in the caller's workspace.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write lost a compare-and-set race or would
// create a duplicate (same id or slug).
var ErrConflict = errors.New("conflict")

// ErrUnauthenticated is returned for a missing, malformed or unknown token.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrPermissionDenied is returned when the principal's role does not allow the call.
var ErrPermissionDenied = errors.New("permission denied")

// NotFoundError says which resource was not found; it matches ErrNotFound.
type NotFoundError struct {
	Kind Kind
	ID   string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %q not found", e.Kind.singular(), e.ID)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ValidationError is bad input: Field names the request field, Rule is a
// stable machine-readable name and Message explains it.
type ValidationError struct {
	Field   string
	Rule    string
	Message string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

func invalid(field, rule, format string, args ...any) error {
	return &ValidationError{Field: field, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// RevisionError is a conditional write that found another revision stored:
// the caller read an old version. It matches ErrConflict.
type RevisionError struct {
	Kind    Kind
	ID      string
	Want    uint64
	Current uint64
}

func (e *RevisionError) Error() string {
	return fmt.Sprintf("%s %q is at revision %d, not %d: read it again and reapply the change", e.Kind.singular(), e.ID, e.Current, e.Want)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *RevisionError) Is(target error) bool { return target == ErrConflict }

// PermissionError says which role a call needs; it matches ErrPermissionDenied.
type PermissionError struct {
	// Need is the least role that may make the call, e.g. "editor".
	Need string
	// Action describes the call, e.g. "change sources".
	Action string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("only %ss and above may %s", e.Need, e.Action)
}

// Is makes errors.Is(err, ErrPermissionDenied) true.
func (e *PermissionError) Is(target error) bool { return target == ErrPermissionDenied }
