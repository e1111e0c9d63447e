package nodelifecycle

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(seconds int) time.Time { return t0.Add(time.Duration(seconds) * time.Second) }

func TestLastHeartbeat(t *testing.T) {
	ready := func(heartbeat int) corev1.NodeStatus {
		return corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(at(heartbeat))}}}
	}
	lease := func(renew int) *coordinationv1.Lease {
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: ptr.To(metav1.NewMicroTime(at(renew)))}}
	}
	cases := []struct {
		name   string
		status corev1.NodeStatus
		lease  *coordinationv1.Lease
		want   time.Time
	}{
		{"never reported: counts from creation", corev1.NodeStatus{}, nil, at(0)},
		{"Ready heartbeat only", ready(30), nil, at(30)},
		{"Lease newer than Ready", ready(30), lease(95), at(95)},
		{"Ready newer than Lease", ready(100), lease(95), at(100)},
		{"Lease without renewTime", ready(30), &coordinationv1.Lease{}, at(30)},
		{"Lease only", corev1.NodeStatus{}, lease(12), at(12)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := lastHeartbeat(&tc.status, metav1.NewTime(at(0)), tc.lease); !got.Equal(tc.want) {
				t.Fatalf("lastHeartbeat = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMarkUnknown(t *testing.T) {
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: "KubeletReady", LastHeartbeatTime: metav1.NewTime(at(1)), LastTransitionTime: metav1.NewTime(at(0))}
	}
	cases := []struct {
		name        string
		conditions  []corev1.NodeCondition
		wantChanged bool
		want        map[corev1.NodeConditionType]string // type -> "status/reason"
	}{
		{
			name:        "Ready and pressures go Unknown",
			conditions:  []corev1.NodeCondition{cond(corev1.NodeReady, corev1.ConditionTrue), cond(corev1.NodeMemoryPressure, corev1.ConditionFalse), cond(corev1.NodePIDPressure, corev1.ConditionFalse)},
			wantChanged: true,
			want: map[corev1.NodeConditionType]string{
				corev1.NodeReady:          "Unknown/NodeStatusUnknown",
				corev1.NodeMemoryPressure: "Unknown/NodeStatusUnknown",
				corev1.NodePIDPressure:    "Unknown/NodeStatusUnknown",
			},
		},
		{
			name:        "absent pressure conditions are not added",
			conditions:  []corev1.NodeCondition{cond(corev1.NodeReady, corev1.ConditionFalse)},
			wantChanged: true,
			want:        map[corev1.NodeConditionType]string{corev1.NodeReady: "Unknown/NodeStatusUnknown"},
		},
		{
			name:        "a node that never reported gets Ready=Unknown",
			wantChanged: true,
			want:        map[corev1.NodeConditionType]string{corev1.NodeReady: "Unknown/NodeStatusNeverUpdated"},
		},
		{
			name:        "already Unknown: no change",
			conditions:  []corev1.NodeCondition{cond(corev1.NodeReady, corev1.ConditionUnknown)},
			wantChanged: false,
			want:        map[corev1.NodeConditionType]string{corev1.NodeReady: "Unknown/KubeletReady"},
		},
		{
			name:        "other conditions are left alone",
			conditions:  []corev1.NodeCondition{cond(corev1.NodeReady, corev1.ConditionTrue), cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse)},
			wantChanged: true,
			want:        map[corev1.NodeConditionType]string{corev1.NodeReady: "Unknown/NodeStatusUnknown", corev1.NodeNetworkUnavailable: "False/KubeletReady"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status := corev1.NodeStatus{Conditions: tc.conditions}
			if changed := markUnknown(&status, at(60)); changed != tc.wantChanged {
				t.Fatalf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if len(status.Conditions) != len(tc.want) {
				t.Fatalf("conditions %v, want %v", status.Conditions, tc.want)
			}
			for _, c := range status.Conditions {
				if got := string(c.Status) + "/" + c.Reason; got != tc.want[c.Type] {
					t.Errorf("%s = %s, want %s", c.Type, got, tc.want[c.Type])
				}
				if c.Reason == reasonStatusUnknown {
					if c.Message != messageStatusUnknown || !c.LastTransitionTime.Time.Equal(at(60)) || !c.LastHeartbeatTime.Time.Equal(at(1)) {
						t.Errorf("%s: message %q, transition %s, heartbeat %s: want the upstream message, transition now, heartbeat kept", c.Type, c.Message, c.LastTransitionTime, c.LastHeartbeatTime)
					}
				}
			}
		})
	}
}

func TestTaints(t *testing.T) {
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{{Type: corev1.NodeReady, Status: s}}
	}
	taint := func(key string, effect corev1.TaintEffect, added int) corev1.Taint {
		t := corev1.Taint{Key: key, Effect: effect}
		if added >= 0 {
			t.TimeAdded = ptr.To(metav1.NewTime(at(added)))
		}
		return t
	}
	const none = -1
	userTaint := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	cases := []struct {
		name          string
		unschedulable bool
		conditions    []corev1.NodeCondition
		current       []corev1.Taint
		want          []corev1.Taint
		wantChanged   bool
	}{
		{
			name:       "healthy node: no taints",
			conditions: ready(corev1.ConditionTrue),
		},
		{
			name:        "Ready=Unknown: unreachable NoSchedule and NoExecute with timeAdded",
			conditions:  ready(corev1.ConditionUnknown),
			want:        []corev1.Taint{taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, none), taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, 60)},
			wantChanged: true,
		},
		{
			name:        "Ready=False replaces unreachable with not-ready",
			conditions:  ready(corev1.ConditionFalse),
			current:     []corev1.Taint{userTaint, taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, none), taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, 10)},
			want:        []corev1.Taint{userTaint, taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule, none), taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, 60)},
			wantChanged: true,
		},
		{
			name:       "taints already right keep their timeAdded",
			conditions: ready(corev1.ConditionUnknown),
			current:    []corev1.Taint{taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, 10), taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, none)},
			want:       []corev1.Taint{taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, 10), taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, none)},
		},
		{
			name:        "recovery removes the managed taints and keeps the user's",
			conditions:  ready(corev1.ConditionTrue),
			current:     []corev1.Taint{taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, none), userTaint, taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, 10)},
			want:        []corev1.Taint{userTaint},
			wantChanged: true,
		},
		{
			name:          "cordon adds unschedulable",
			unschedulable: true,
			conditions:    ready(corev1.ConditionTrue),
			current:       []corev1.Taint{userTaint},
			want:          []corev1.Taint{userTaint, taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule, none)},
			wantChanged:   true,
		},
		{
			name:        "uncordon removes it",
			conditions:  ready(corev1.ConditionTrue),
			current:     []corev1.Taint{taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule, none)},
			want:        []corev1.Taint{},
			wantChanged: true,
		},
		{
			name:        "pressure conditions bring NoSchedule taints",
			conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}, {Type: corev1.NodeDiskPressure, Status: corev1.ConditionTrue}, {Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}},
			want:        []corev1.Taint{taint(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule, none)},
			wantChanged: true,
		},
		{
			name:        "someone else's NoExecute taint gets a timeAdded",
			conditions:  ready(corev1.ConditionTrue),
			current:     []corev1.Taint{taint("maintenance", corev1.TaintEffectNoExecute, none)},
			want:        []corev1.Taint{taint("maintenance", corev1.TaintEffectNoExecute, 60)},
			wantChanged: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := corev1.NodeSpec{Unschedulable: tc.unschedulable}
			status := corev1.NodeStatus{Conditions: tc.conditions}
			got, changed := reconcileTaints(tc.current, wantedTaints(&spec, &status), at(60))
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("taints %v, want %v", got, tc.want)
			}
			for i := range got {
				w := tc.want[i]
				if got[i].Key != w.Key || got[i].Value != w.Value || got[i].Effect != w.Effect ||
					(got[i].TimeAdded == nil) != (w.TimeAdded == nil) ||
					(w.TimeAdded != nil && !got[i].TimeAdded.Equal(w.TimeAdded)) {
					t.Fatalf("taint %d = %+v, want %+v (all: %v)", i, got[i], w, got)
				}
			}
		})
	}
}

func TestDecideEviction(t *testing.T) {
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: ptr.To(metav1.NewTime(at(0)))}
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: ptr.To(metav1.NewTime(at(20)))}
	noSchedule := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}
	custom := corev1.Taint{Key: "maintenance", Value: "now", Effect: corev1.TaintEffectNoExecute, TimeAdded: ptr.To(metav1.NewTime(at(5)))}
	tolerate := func(key string, seconds *int64) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds}
	}
	const defaultSeconds = 300
	cases := []struct {
		name        string
		tolerations []corev1.Toleration
		taints      []corev1.Taint
		want        evictionDecision
	}{
		{"NoSchedule taints never evict", nil, []corev1.Taint{noSchedule}, evictionDecision{}},
		{"no toleration: the default 300s", nil, []corev1.Taint{unreachable}, evictionDecision{evict: true, at: at(300)}},
		{"explicit 600s wins over the default", []corev1.Toleration{tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](600))}, []corev1.Taint{unreachable}, evictionDecision{evict: true, at: at(600)}},
		{"tolerating forever stays", []corev1.Toleration{tolerate(corev1.TaintNodeUnreachable, nil)}, []corev1.Taint{unreachable}, evictionDecision{}},
		{"a toleration of every taint forever stays", []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, []corev1.Taint{unreachable, notReady, custom}, evictionDecision{}},
		{"an untolerated custom NoExecute taint evicts at once", nil, []corev1.Taint{custom}, evictionDecision{evict: true}},
		{"a tolerated custom taint counts from its timeAdded", []corev1.Toleration{tolerate("maintenance", ptr.To[int64](10))}, []corev1.Taint{custom}, evictionDecision{evict: true, at: at(15)}},
		{"the earliest deadline over several taints", []corev1.Toleration{tolerate(corev1.TaintNodeNotReady, ptr.To[int64](5))}, []corev1.Taint{unreachable, notReady}, evictionDecision{evict: true, at: at(25)}},
		{"the smallest of matching tolerations", []corev1.Toleration{tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](600)), {Operator: corev1.TolerationOpExists, TolerationSeconds: ptr.To[int64](60)}}, []corev1.Taint{unreachable}, evictionDecision{evict: true, at: at(60)}},
		{"negative tolerationSeconds means at once after timeAdded", []corev1.Toleration{tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](-5))}, []corev1.Taint{unreachable}, evictionDecision{evict: true, at: at(0)}},
		{"a NoSchedule-only toleration does not stop the default", []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}, []corev1.Taint{unreachable}, evictionDecision{evict: true, at: at(300)}},
		{"one taint tolerated forever, another not at all", []corev1.Toleration{tolerate(corev1.TaintNodeUnreachable, nil)}, []corev1.Taint{unreachable, custom}, evictionDecision{evict: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]corev1.Toleration(nil), tc.tolerations...)
			got := decideEviction(tc.tolerations, tc.taints, defaultSeconds)
			if got.evict != tc.want.evict || !got.at.Equal(tc.want.at) {
				t.Fatalf("decideEviction = %+v, want %+v", got, tc.want)
			}
			if len(before) != len(tc.tolerations) {
				t.Fatalf("the pod's tolerations were modified")
			}
		})
	}
}
