package volumes

import "testing"

// requireConfigError fails the test unless err is a config error (a
// FieldError) saying exactly want.
func requireConfigError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want || !IsConfigError(err) {
		t.Fatalf("error = %v\nwant config error %s", err, want)
	}
}
