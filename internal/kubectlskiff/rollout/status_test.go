package rollout

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

// checkProgress compares a Progress with the wanted message, done flag
// and error text.
func checkProgress(t *testing.T, got Progress, msg string, done bool, err string) {
	t.Helper()
	gotErr := ""
	if got.Err != nil {
		gotErr = got.Err.Error()
	}
	if got.Message != msg || got.Done != done || gotErr != err {
		t.Errorf("got (%q, done=%v, err=%q), want (%q, done=%v, err=%q)", got.Message, got.Done, gotErr, msg, done, err)
	}
}

func TestDeploymentProgress(t *testing.T) {
	deployment := func(generation, observed int64, replicas int32, status appsv1.DeploymentStatus) *skiffappsv1.Deployment {
		status.ObservedGeneration = observed
		return &skiffappsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: generation, Annotations: map[string]string{revisionAnnotation: "3"}},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
			Status:     status,
		}
	}
	timedOut := []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: "False", Reason: "ProgressDeadlineExceeded"}}
	cases := []struct {
		name     string
		d        *skiffappsv1.Deployment
		revision int64
		msg      string
		done     bool
		err      string
	}{
		{"spec not observed yet", deployment(2, 1, 3, appsv1.DeploymentStatus{}), 0,
			"Waiting for deployment spec update to be observed...", false, ""},
		{"new replicas being created", deployment(2, 2, 3, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1}), 0,
			`Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...`, false, ""},
		{"old replicas terminating", deployment(2, 2, 3, appsv1.DeploymentStatus{Replicas: 5, UpdatedReplicas: 3}), 0,
			`Waiting for deployment "web" rollout to finish: 2 old replicas are pending termination...`, false, ""},
		{"updated replicas not available", deployment(2, 2, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1}), 0,
			`Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...`, false, ""},
		{"rolled out", deployment(2, 2, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}), 0,
			`deployment "web" successfully rolled out`, true, ""},
		{"scaled to zero", deployment(1, 1, 0, appsv1.DeploymentStatus{}), 0,
			`deployment "web" successfully rolled out`, true, ""},
		{"progress deadline exceeded", deployment(2, 2, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, Conditions: timedOut}), 0,
			"", false, `deployment "web" exceeded its progress deadline`},
		{"pinned to the running revision", deployment(2, 2, 1, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}), 3,
			`deployment "web" successfully rolled out`, true, ""},
		{"pinned to another revision", deployment(2, 2, 1, appsv1.DeploymentStatus{}), 2,
			"", false, "desired revision (2) is different from the running revision (3)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkProgress(t, DeploymentProgress(c.d, c.revision), c.msg, c.done, c.err)
		})
	}
}

func TestStatefulSetProgress(t *testing.T) {
	set := func(generation int64, replicas int32, partition *int32, status appsv1.StatefulSetStatus) *skiffappsv1.StatefulSet {
		s := &skiffappsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: generation},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(replicas),
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}},
			Status: status,
		}
		if partition != nil {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: partition}
		}
		return s
	}
	onDelete := set(1, 1, nil, appsv1.StatefulSetStatus{ObservedGeneration: 1})
	onDelete.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
	cases := []struct {
		name string
		set  *skiffappsv1.StatefulSet
		msg  string
		done bool
		err  string
	}{
		{"never observed", set(1, 3, nil, appsv1.StatefulSetStatus{}), "Waiting for statefulset spec update to be observed...", false, ""},
		{"pods not ready", set(1, 3, nil, appsv1.StatefulSetStatus{ObservedGeneration: 1, ReadyReplicas: 1}), "Waiting for 2 pods to be ready...", false, ""},
		{"rolling", set(2, 3, nil, appsv1.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, UpdatedReplicas: 1, CurrentRevision: "db-1", UpdateRevision: "db-2"}),
			"waiting for statefulset rolling update to complete 1 pods at revision db-2...", false, ""},
		{"complete", set(2, 3, nil, appsv1.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, CurrentReplicas: 3, CurrentRevision: "db-2", UpdateRevision: "db-2"}),
			"statefulset rolling update complete 3 pods at revision db-2...", true, ""},
		{"partition pending", set(2, 3, ptr.To[int32](1), appsv1.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, UpdatedReplicas: 1}),
			"Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...", false, ""},
		{"partition done", set(2, 3, ptr.To[int32](1), appsv1.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, UpdatedReplicas: 2}),
			"partitioned roll out complete: 2 new pods have been updated...", true, ""},
		{"OnDelete", onDelete, "", false, "rollout status is only available for RollingUpdate strategy type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkProgress(t, StatefulSetProgress(c.set), c.msg, c.done, c.err)
		})
	}
}

func TestDaemonSetProgress(t *testing.T) {
	ds := func(generation int64, status appsv1.DaemonSetStatus) *skiffappsv1.DaemonSet {
		return &skiffappsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: generation}, Status: status}
	}
	onDelete := ds(1, appsv1.DaemonSetStatus{ObservedGeneration: 1})
	onDelete.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	cases := []struct {
		name string
		ds   *skiffappsv1.DaemonSet
		msg  string
		done bool
		err  string
	}{
		{"not observed", ds(2, appsv1.DaemonSetStatus{ObservedGeneration: 1}), "Waiting for daemon set spec update to be observed...", false, ""},
		{"updating", ds(2, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 1}),
			`Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...`, false, ""},
		{"not available", ds(2, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 2}),
			`Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...`, false, ""},
		{"done", ds(2, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}),
			`daemon set "agent" successfully rolled out`, true, ""},
		{"OnDelete", onDelete, "", false, "rollout status is only available for RollingUpdate strategy type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkProgress(t, DaemonSetProgress(c.ds), c.msg, c.done, c.err)
		})
	}
}
