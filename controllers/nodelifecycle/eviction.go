package nodelifecycle

import (
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
)

// evictionDecision is when a pod on a node with NoExecute taints must go.
type evictionDecision struct {
	// evict is true when the pod must go: at once if at is zero or past.
	evict bool
	// at is when; zero when evict is false (the pod tolerates every taint
	// forever) or when some taint is not tolerated at all.
	at time.Time
}

// decideEviction applies taint-based eviction to one pod: a NoExecute taint
// the pod does not tolerate evicts it at once; one it tolerates for a while
// evicts it that long after the taint's timeAdded; one it tolerates without
// tolerationSeconds never does. The earliest deadline wins. Tolerations are
// the pod's own plus what upstream's DefaultTolerationSeconds admission
// would have added (see withDefaultTolerations).
func decideEviction(tolerations []corev1.Toleration, taints []corev1.Taint, defaultSeconds int64) evictionDecision {
	tolerations = withDefaultTolerations(tolerations, defaultSeconds)
	var d evictionDecision
	for i := range taints {
		taint := &taints[i]
		if taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		seconds, tolerated, forever := tolerationFor(tolerations, taint)
		switch {
		case !tolerated:
			return evictionDecision{evict: true}
		case forever:
			continue
		}
		var added time.Time
		if taint.TimeAdded != nil {
			added = taint.TimeAdded.Time
		}
		at := added.Add(time.Duration(seconds) * time.Second)
		if !d.evict || at.Before(d.at) {
			d = evictionDecision{evict: true, at: at}
		}
	}
	return d
}

// tolerationFor finds how long the tolerations let a pod stay under taint:
// the smallest tolerationSeconds among the tolerations that match it (zero
// or less meaning "leave now"), or forever if none of them sets one.
func tolerationFor(tolerations []corev1.Toleration, taint *corev1.Taint) (seconds int64, tolerated, forever bool) {
	forever = true
	for i := range tolerations {
		tol := &tolerations[i]
		if !tol.ToleratesTaint(logr.Discard(), taint, false) {
			continue
		}
		tolerated = true
		if tol.TolerationSeconds == nil {
			continue
		}
		s := max(*tol.TolerationSeconds, 0)
		if forever || s < seconds {
			seconds, forever = s, false
		}
	}
	return seconds, tolerated, forever
}

// withDefaultTolerations adds what upstream's DefaultTolerationSeconds
// admission plugin gives every pod created through the core API: a
// toleration of not-ready:NoExecute and of unreachable:NoExecute for
// defaultSeconds, each unless the pod already has a toleration that could
// cover that taint (same or empty key, NoExecute or empty effect). skiff's
// Pods are custom resources that no admission plugin sees, so the eviction
// logic applies it itself.
func withDefaultTolerations(tolerations []corev1.Toleration, defaultSeconds int64) []corev1.Toleration {
	out := tolerations
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		if coversTaintKey(tolerations, key) {
			continue
		}
		if len(out) == len(tolerations) {
			// Copy before the first append, so the pod's slice is never touched.
			out = append([]corev1.Toleration(nil), tolerations...)
		}
		out = append(out, corev1.Toleration{
			Key:               key,
			Operator:          corev1.TolerationOpExists,
			Effect:            corev1.TaintEffectNoExecute,
			TolerationSeconds: &defaultSeconds,
		})
	}
	return out
}

// coversTaintKey reports whether a toleration addresses key's NoExecute
// taint, the test the admission plugin uses to leave a pod's own choice be.
func coversTaintKey(tolerations []corev1.Toleration, key string) bool {
	for _, t := range tolerations {
		if (t.Key == key || t.Key == "") && (t.Effect == corev1.TaintEffectNoExecute || t.Effect == "") {
			return true
		}
	}
	return false
}
