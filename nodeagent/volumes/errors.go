package volumes

import (
	"errors"
	"fmt"
)

// FieldError is a failure caused by the pod's own configuration: a missing
// ConfigMap, Secret or key that is not optional, a subPath that escapes its
// volume, a hostPath of the wrong type. Retrying cannot fix it until the user
// changes something, so the runtime reports it as the container's
// CreateContainerConfigError (with Error() as the message) instead of as a
// runtime failure. Every other error of this package is transient.
type FieldError struct {
	// Field is the pod's field at fault, e.g. "spec.volumes[2].configMap".
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// IsConfigError reports whether err comes from the pod's configuration
// (see FieldError) rather than from the node.
func IsConfigError(err error) bool {
	var fe *FieldError
	return errors.As(err, &fe)
}

// fieldErrorf makes a FieldError for field with a formatted message.
func fieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
