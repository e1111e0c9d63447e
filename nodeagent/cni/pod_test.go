package cni

import "testing"

func TestCheckUID(t *testing.T) {
	tests := []struct {
		uid  string
		fine bool
	}{
		{uid: "0b7c9c8e-3f2a-4a57-9a57-2c1f6f1e1f00", fine: true},
		{uid: "uid-a_1.b", fine: true},
		{uid: "", fine: false},
		{uid: "../escape", fine: false},
		{uid: "a/b", fine: false},
		{uid: "-leading-dash", fine: false},
		{uid: "with space", fine: false},
	}
	for _, tt := range tests {
		if err := checkUID(tt.uid); (err == nil) != tt.fine {
			t.Errorf("checkUID(%q) = %v, want fine=%v", tt.uid, err, tt.fine)
		}
	}
}
