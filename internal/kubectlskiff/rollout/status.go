package rollout

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

// revisionAnnotation holds a Deployment's (and its ReplicaSets') revision,
// as upstream.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// progressDeadlineExceeded is the Progressing reason of a Deployment that
// made no progress for spec.progressDeadlineSeconds, as upstream.
const progressDeadlineExceeded = "ProgressDeadlineExceeded"

// Progress is what `rollout status` says about an object at one moment:
// a message, whether the rollout is done, or an error that ends the wait.
type Progress struct {
	Message string
	Done    bool
	Err     error
}

// DeploymentProgress reads a Deployment's rollout from its status, in
// kubectl's words. revision, when not 0, must be the Deployment's.
func DeploymentProgress(d *skiffappsv1.Deployment, revision int64) Progress {
	if revision > 0 {
		current, _ := strconv.ParseInt(d.Annotations[revisionAnnotation], 10, 64)
		if current != revision {
			return Progress{Err: fmt.Errorf("desired revision (%d) is different from the running revision (%d)", revision, current)}
		}
	}
	s := d.Status
	// A status written before the latest spec says nothing about it.
	if d.Generation > s.ObservedGeneration {
		return Progress{Message: "Waiting for deployment spec update to be observed..."}
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == progressDeadlineExceeded {
			return Progress{Err: fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)}
		}
	}
	waiting := func(format string, args ...any) Progress {
		return Progress{Message: fmt.Sprintf("Waiting for deployment %q rollout to finish: ", d.Name) + fmt.Sprintf(format, args...)}
	}
	switch want := ptr.Deref(d.Spec.Replicas, 1); {
	case s.UpdatedReplicas < want:
		return waiting("%d out of %d new replicas have been updated...", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return waiting("%d old replicas are pending termination...", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		return waiting("%d of %d updated replicas are available...", s.AvailableReplicas, s.UpdatedReplicas)
	}
	return Progress{Message: fmt.Sprintf("deployment %q successfully rolled out", d.Name), Done: true}
}

// StatefulSetProgress reads a StatefulSet's rollout from its status, in
// kubectl's words. Only RollingUpdate sets have a rollout to follow.
func StatefulSetProgress(set *skiffappsv1.StatefulSet) Progress {
	if set.Spec.UpdateStrategy.Type != "" && set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return Progress{Err: fmt.Errorf("rollout status is only available for %s strategy type", appsv1.RollingUpdateStatefulSetStrategyType)}
	}
	s := set.Status
	if s.ObservedGeneration == 0 || set.Generation > s.ObservedGeneration {
		return Progress{Message: "Waiting for statefulset spec update to be observed..."}
	}
	want := ptr.Deref(set.Spec.Replicas, 1)
	if s.ReadyReplicas < want {
		return Progress{Message: fmt.Sprintf("Waiting for %d pods to be ready...", want-s.ReadyReplicas)}
	}
	// A partition keeps the ordinals below it on the old revision: the
	// rollout is done once the ones above it are updated.
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		if target := want - *ru.Partition; s.UpdatedReplicas < target {
			return Progress{Message: fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...", s.UpdatedReplicas, target)}
		}
		return Progress{Message: fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...", s.UpdatedReplicas), Done: true}
	}
	if s.UpdateRevision != s.CurrentRevision {
		return Progress{Message: fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s...", s.UpdatedReplicas, s.UpdateRevision)}
	}
	return Progress{Message: fmt.Sprintf("statefulset rolling update complete %d pods at revision %s...", s.CurrentReplicas, s.CurrentRevision), Done: true}
}

// DaemonSetProgress reads a DaemonSet's rollout from its status, in
// kubectl's words. Only RollingUpdate sets have a rollout to follow.
func DaemonSetProgress(ds *skiffappsv1.DaemonSet) Progress {
	if ds.Spec.UpdateStrategy.Type != "" && ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		return Progress{Err: fmt.Errorf("rollout status is only available for %s strategy type", appsv1.RollingUpdateDaemonSetStrategyType)}
	}
	s := ds.Status
	if ds.Generation > s.ObservedGeneration {
		return Progress{Message: "Waiting for daemon set spec update to be observed..."}
	}
	switch {
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		return Progress{Message: fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...", ds.Name, s.UpdatedNumberScheduled, s.DesiredNumberScheduled)}
	case s.NumberAvailable < s.DesiredNumberScheduled:
		return Progress{Message: fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...", ds.Name, s.NumberAvailable, s.DesiredNumberScheduled)}
	}
	return Progress{Message: fmt.Sprintf("daemon set %q successfully rolled out", ds.Name), Done: true}
}
