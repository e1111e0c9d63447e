package prober

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Kind is which of a container's probes runs, since each acts differently:
// liveness restarts, readiness gates traffic, startup gates the other two.
type Kind string

// The kinds of probe, named as the kubelet's events name them.
const (
	Liveness  Kind = "Liveness"
	Readiness Kind = "Readiness"
	Startup   Kind = "Startup"
)

// thresholds are a probe's timing and counts with the API's defaults
// applied (skiff's Pod CRD does not apply them).
type thresholds struct {
	initialDelay time.Duration
	period       time.Duration
	success      int // results in a row that make a verdict of success
	failure      int // and of failure
}

func thresholdsOf(kind Kind, p *corev1.Probe) thresholds {
	th := thresholds{
		initialDelay: time.Duration(p.InitialDelaySeconds) * time.Second,
		period:       time.Duration(defaulted(p.PeriodSeconds, 10)) * time.Second,
		success:      int(defaulted(p.SuccessThreshold, 1)),
		failure:      int(defaulted(p.FailureThreshold, 3)),
	}
	if kind != Readiness {
		// The API allows only 1 for liveness and startup: one success is
		// enough to call a container alive or started.
		th.success = 1
	}
	return th
}

// state is one probe's verdict on a container and the run of equal results
// that leads to the next one, as the kubelet's probe worker keeps it.
type state struct {
	// verdict is what the probe says now: Success, Failure, or Unknown for
	// a startup probe that has not decided.
	verdict Result
	// last is the latest result and run how many times in a row it came.
	last Result
	run  int
	// onHold stops a liveness or startup probe that has failed: the
	// container is to be restarted, and probing it while it is killed
	// only adds noise. A new container starts a new state.
	onHold bool
}

// initialState is what a probe says of a container it has not probed yet:
// not ready, alive, and not known to have started.
func initialState(kind Kind) state {
	switch kind {
	case Readiness:
		return state{verdict: Failure}
	case Liveness:
		return state{verdict: Success}
	}
	return state{verdict: Unknown}
}

// observe adds one probe result to the probe's state and says whether its
// verdict changed. A verdict changes only when successThreshold successes or
// failureThreshold failures come in a row; Unknown results (the probe could
// not run) do not count and do not break a run; a Warning is a success.
func observe(kind Kind, th thresholds, s state, r Result) (state, bool) {
	if r == Unknown {
		return s, false
	}
	if r == Warning {
		r = Success
	}
	if r == s.last {
		s.run++
	} else {
		s.last, s.run = r, 1
	}
	if (r == Failure && s.run < th.failure) || (r == Success && s.run < th.success) {
		return s, false
	}
	changed := s.verdict != r
	s.verdict = r
	if r == Failure && kind != Readiness {
		s.onHold, s.run = true, 0
	}
	return s, changed
}

// due says whether a probe runs at its tick: a startup probe until the
// container has started, the others only after, and no probe on hold.
func due(kind Kind, s state, started bool) bool {
	if s.onHold {
		return false
	}
	if kind == Startup {
		return !started
	}
	return started
}
