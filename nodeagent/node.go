package nodeagent

import (
	"context"
	goruntime "runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// KubeletVersion is the version the agent reports as nodeInfo.kubeletVersion:
// the Kubernetes release skiff mirrors.
const KubeletVersion = "v1.37.2-skiff"

// Labels every node carries, as upstream's kubelet sets them.
const (
	LabelHostname     = "kubernetes.io/hostname"
	LabelOS           = "kubernetes.io/os"
	LabelArch         = "kubernetes.io/arch"
	LabelInstanceType = "node.kubernetes.io/instance-type"
)

// NodeConfig describes one node that a host runs.
type NodeConfig struct {
	// Name is the Node's name.
	Name string
	// InstanceType, when set, becomes the node.kubernetes.io/instance-type label.
	InstanceType string
	// Capacity and Allocatable are the node's resources; Allocatable
	// defaults to Capacity.
	Capacity    corev1.ResourceList
	Allocatable corev1.ResourceList
	// InternalIP is the node's address, and its pods' hostIP.
	InternalIP string
	// OSImage, KernelVersion, MachineID, SystemUUID and BootID describe
	// the machine in nodeInfo.
	OSImage       string
	KernelVersion string
	MachineID     string
	SystemUUID    string
	BootID        string
	// Port is where the agent serves logs and exec (the kubelet's 10250),
	// published in status.daemonEndpoints; 0 when it serves none.
	Port int32
}

// labels are the labels the agent puts on its Node.
func (c NodeConfig) labels() map[string]string {
	l := map[string]string{
		LabelHostname: c.Name,
		LabelOS:       goruntime.GOOS,
		LabelArch:     goruntime.GOARCH,
	}
	if c.InstanceType != "" {
		l[LabelInstanceType] = c.InstanceType
	}
	return l
}

// The node conditions the agent keeps, worded as upstream's kubelet.
var nodeConditions = []corev1.NodeCondition{
	{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "skiff node agent is posting ready status"},
	{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
	{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
	{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
}

// nodeStatus computes the status the agent reports for its node from the
// stored one. It reports whether it must be written: when anything but the
// heartbeat differs (say the lifecycle controller marked the node
// Ready=Unknown while the agent was away), or when the last report is
// older than reportEvery. It also returns when the next report is due.
func nodeStatus(old corev1.NodeStatus, cfg NodeConfig, runtimeVersion string, networkErr error, now time.Time, reportEvery time.Duration) (corev1.NodeStatus, bool, time.Time) {
	status := *old.DeepCopy()
	status.Capacity = cfg.Capacity.DeepCopy()
	status.Allocatable = cfg.Capacity.DeepCopy()
	if cfg.Allocatable != nil {
		status.Allocatable = cfg.Allocatable.DeepCopy()
	}
	status.Addresses = nil
	if cfg.InternalIP != "" {
		status.Addresses = append(status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: cfg.InternalIP})
	}
	status.Addresses = append(status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: cfg.Name})
	status.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               cfg.MachineID,
		SystemUUID:              cfg.SystemUUID,
		BootID:                  cfg.BootID,
		KernelVersion:           cfg.KernelVersion,
		OSImage:                 cfg.OSImage,
		ContainerRuntimeVersion: runtimeVersion,
		KubeletVersion:          KubeletVersion,
		OperatingSystem:         goruntime.GOOS,
		Architecture:            goruntime.GOARCH,
	}
	status.DaemonEndpoints.KubeletEndpoint.Port = cfg.Port
	for _, c := range nodeConditions {
		if c.Type == corev1.NodeReady && networkErr != nil {
			c = networkNotReady(networkErr)
		}
		setNodeCondition(&status, c, now)
	}

	lastReport := oldestHeartbeat(status.Conditions)
	due := lastReport.IsZero() || !now.Before(lastReport.Add(reportEvery))
	if !due && equality.Semantic.DeepEqual(old, status) {
		return status, false, lastReport.Add(reportEvery)
	}
	for i := range status.Conditions {
		if isAgentCondition(status.Conditions[i].Type) {
			status.Conditions[i].LastHeartbeatTime = metav1.NewTime(now).Rfc3339Copy()
		}
	}
	return status, true, now.Add(reportEvery)
}

// networkNotReady is the Ready condition of a node whose pod network is not
// ready yet (no podCIDR, no CNI plugins), worded as upstream's kubelet, so
// that no pod is scheduled to a node that cannot give it an address.
func networkNotReady(err error) corev1.NodeCondition {
	return corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
		Message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:" + err.Error(),
	}
}

// setNodeCondition adds or updates a condition, keeping its heartbeat;
// the transition time moves only when its status does.
func setNodeCondition(status *corev1.NodeStatus, c corev1.NodeCondition, now time.Time) {
	for i := range status.Conditions {
		old := &status.Conditions[i]
		if old.Type != c.Type {
			continue
		}
		c.LastHeartbeatTime = old.LastHeartbeatTime
		c.LastTransitionTime = old.LastTransitionTime
		if old.Status != c.Status {
			c.LastTransitionTime = metav1.NewTime(now).Rfc3339Copy()
		}
		*old = c
		return
	}
	c.LastTransitionTime = metav1.NewTime(now).Rfc3339Copy()
	status.Conditions = append(status.Conditions, c)
}

// oldestHeartbeat is the earliest heartbeat of the agent's conditions;
// zero when one has none.
func oldestHeartbeat(conds []corev1.NodeCondition) time.Time {
	var oldest time.Time
	for _, c := range conds {
		if !isAgentCondition(c.Type) {
			continue
		}
		if c.LastHeartbeatTime.IsZero() {
			return time.Time{}
		}
		if oldest.IsZero() || c.LastHeartbeatTime.Before(&metav1.Time{Time: oldest}) {
			oldest = c.LastHeartbeatTime.Time
		}
	}
	return oldest
}

func isAgentCondition(t corev1.NodeConditionType) bool {
	for _, c := range nodeConditions {
		if c.Type == t {
			return true
		}
	}
	return false
}

// nodeReconciler keeps each hosted node's status: it rewrites it when it
// differs from what the agent would report, and otherwise every
// StatusReportFrequency.
type nodeReconciler struct {
	host *Host
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes/status,verbs=update;patch

// Reconcile reports one hosted node's status.
func (r *nodeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	a := r.host.agent(req.Name)
	if a == nil || a.stopped() {
		return ctrl.Result{}, nil
	}
	node := &skiffcorev1.Node{}
	if err := r.host.client.Get(ctx, req.NamespacedName, node); err != nil {
		if apierrors.IsNotFound(err) {
			// Someone deleted the Node: the machine is still here, so
			// register it again, as a kubelet does.
			_, err = r.host.register(ctx, a)
		}
		return ctrl.Result{}, err
	}
	r.tellSchedulable(a, node)
	if err := a.runtime.UpdatePodCIDR(node.Spec.PodCIDR); err != nil {
		log.FromContext(ctx).Error(err, "the node's podCIDR is unusable; pods get no IP", "podCIDR", node.Spec.PodCIDR)
	}
	now := r.host.clock.Now()
	var networkErr error
	if n, ok := a.runtime.(NetworkReporter); ok {
		networkErr = n.NetworkReady()
	}
	status, write, next := nodeStatus(node.Status, a.cfg, a.runtime.Version(), networkErr, now, r.host.opts.StatusReportFrequency)
	recheck := min(next.Sub(now), r.host.opts.StatusUpdateFrequency)
	if !write {
		return ctrl.Result{RequeueAfter: recheck}, nil
	}
	// An update rather than a merge patch: the Node CRD requires every
	// nodeInfo field, empty or not, and a patch would leave out those
	// that did not change.
	readiness, changed := readinessChange(node.Status, status)
	node.Status = status
	if err := r.host.client.Status().Update(ctx, node); err != nil {
		if apierrors.IsConflict(err) {
			// The cache is behind; the newer Node's event brings us back.
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	if changed {
		r.tellStatus(node, readiness)
	}
	return ctrl.Result{RequeueAfter: recheck}, nil
}

// tellSchedulable records NodeSchedulable or NodeNotSchedulable when the
// node's spec.unschedulable differs from the last seen, as upstream's
// kubelet does: a cordon shows in the node's Events.
func (r *nodeReconciler) tellSchedulable(a *agent, node *skiffcorev1.Node) {
	if was := a.unschedulable.Swap(node.Spec.Unschedulable); was == node.Spec.Unschedulable {
		return
	}
	if node.Spec.Unschedulable {
		r.tellStatus(node, "NodeNotSchedulable")
	} else {
		r.tellStatus(node, "NodeSchedulable")
	}
}

// tellStatus records one of the kubelet's node status Events, in its words.
func (r *nodeReconciler) tellStatus(node *skiffcorev1.Node, reason string) {
	r.host.events.Eventf(node, nil, corev1.EventTypeNormal, reason, "UpdateNodeStatus", "Node %s status is now: %s", node.Name, reason)
}

// readinessChange is the Event reason for a change of the Ready condition
// between two statuses, as upstream's kubelet tells it: NodeReady when it
// becomes True, from anything or nothing, and NodeNotReady when it leaves
// a status for another. A new node that is not ready yet is no news.
func readinessChange(old, updated corev1.NodeStatus) (string, bool) {
	was, now := readyStatus(old), readyStatus(updated)
	switch {
	case was == now:
		return "", false
	case now == corev1.ConditionTrue:
		return "NodeReady", true
	case was == "":
		return "", false
	default:
		return "NodeNotReady", true
	}
}

// readyStatus is the status of the Ready condition; empty without one.
func readyStatus(s corev1.NodeStatus) corev1.ConditionStatus {
	for _, c := range s.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// register creates the agent's Node, or brings the labels of an existing
// one up to date, and returns it.
func (a *agent) register(ctx context.Context, c client.Client, reader client.Reader) (*skiffcorev1.Node, error) {
	node := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name, Labels: a.cfg.labels()}}
	err := c.Create(ctx, node)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return node, err
	}
	if err := reader.Get(ctx, types.NamespacedName{Name: a.cfg.Name}, node); err != nil {
		return nil, err
	}
	patch := client.MergeFrom(node.DeepCopy())
	changed := false
	for k, v := range a.cfg.labels() {
		if node.Labels[k] != v {
			if node.Labels == nil {
				node.Labels = map[string]string{}
			}
			node.Labels[k], changed = v, true
		}
	}
	if !changed {
		return node, nil
	}
	return node, c.Patch(ctx, node, patch)
}
