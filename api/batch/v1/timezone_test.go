package v1_test

import (
	"archive/zip"
	"path/filepath"
	"runtime"
	"testing"
)

// TestTimeZoneRuleAcceptsEveryZone checks the CRD's timeZone name rule
// against every zone of Go's tz database (the controller's), so that it
// refuses only names no database has.
func TestTimeZoneRuleAcceptsEveryZone(t *testing.T) {
	rx := ruleRegexp(t, "!has(self.timeZone) || self.timeZone.matches('")
	zones, err := zip.OpenReader(filepath.Join(runtime.GOROOT(), "lib", "time", "zoneinfo.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zones.Close()
	n := 0
	for _, f := range zones.File {
		if f.FileInfo().IsDir() {
			continue
		}
		n++
		if !rx.MatchString(f.Name) {
			t.Errorf("the timeZone rule refuses the tz database zone %q", f.Name)
		}
	}
	if n < 300 {
		t.Fatalf("only %d zones in Go's tz database", n)
	}
	for _, bad := range []string{"../etc/passwd", "Europe/../UTC", "-UTC", "Europe/", "/UTC", "UTC+09:00", "Europe/Paris ", "Europe/ThisIsFarTooLong"} {
		if rx.MatchString(bad) {
			t.Errorf("the timeZone rule accepts %q", bad)
		}
	}
}
