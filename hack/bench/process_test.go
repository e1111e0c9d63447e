package main

import (
	"testing"
	"time"
)

func TestCPUFromStat(t *testing.T) {
	cases := []struct {
		name string
		stat string
		want time.Duration
	}{
		{"plain name", "42 (manager) S 1 42 42 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 12 0 100 0 0", 3800 * time.Millisecond},
		{"name with spaces and a parenthesis", "7 (my (odd) proc) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0", 30 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cpuFromStat([]byte(tc.stat))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("cpuFromStat = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := cpuFromStat([]byte("garbage")); err == nil {
		t.Error("cpuFromStat accepted a stat line without a command name")
	}
}

func TestStatusKB(t *testing.T) {
	status := []byte("Name:\tmanager\nVmPeak:\t  900 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n")
	cases := map[string]int64{"VmHWM": 51234, "VmRSS": 40000, "VmSwap": 0}
	for key, want := range cases {
		if got := statusKB(status, key); got != want {
			t.Errorf("statusKB(%s) = %d, want %d", key, got, want)
		}
	}
}
