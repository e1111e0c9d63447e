package endpointslice

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// podEndpoint is one pod's endpoint with the ports it serves: the slice
// grouping key, since every endpoint of a slice shares its port list.
type podEndpoint struct {
	endpoint discoveryv1.Endpoint
	ports    []discoveryv1.EndpointPort
}

// inEndpoints reports whether a pod belongs in its Services' slices, as
// upstream: it has an address and has not finished. A terminating pod
// stays, marked terminating, so that traffic can drain.
func inEndpoints(pod *skiffcorev1.Pod) bool {
	return pod.Status.PodIP != "" && !podutil.IsTerminal(pod)
}

// endpointFor builds a pod's endpoint for svc with upstream's conditions:
// serving follows the pod's Ready condition, terminating its deletion, and
// ready is serving and not terminating. publishNotReadyAddresses makes
// every endpoint ready and serving, for peers that must find each other
// before they are ready (a StatefulSet's members).
func endpointFor(svc *skiffcorev1.Service, pod *skiffcorev1.Pod) podEndpoint {
	publish := svc.Spec.PublishNotReadyAddresses
	terminating := podutil.IsTerminating(pod)
	serving := publish || podutil.IsReady(pod)
	ep := discoveryv1.Endpoint{
		Addresses: []string{pod.Status.PodIP},
		Conditions: discoveryv1.EndpointConditions{
			Ready:       ptr.To(publish || (serving && !terminating)),
			Serving:     ptr.To(serving),
			Terminating: ptr.To(terminating),
		},
		TargetRef: &corev1.ObjectReference{
			APIVersion: skiffcorev1.GroupVersion.String(),
			Kind:       "Pod",
			Namespace:  pod.Namespace,
			Name:       pod.Name,
			UID:        pod.UID,
		},
	}
	if pod.Spec.NodeName != "" {
		ep.NodeName = ptr.To(pod.Spec.NodeName)
	}
	// A pod names itself in DNS under the Service its subdomain names.
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name {
		ep.Hostname = ptr.To(pod.Spec.Hostname)
	}
	return podEndpoint{endpoint: ep, ports: endpointPorts(svc, pod)}
}

// endpointPorts lists, for each Service port, the port the pod serves it
// on. A port whose named targetPort the pod does not expose is left out
// for this pod, as upstream does.
func endpointPorts(svc *skiffcorev1.Service, pod *skiffcorev1.Pod) []discoveryv1.EndpointPort {
	var ports []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		target, ok := targetPort(sp, pod)
		if !ok {
			continue
		}
		ports = append(ports, discoveryv1.EndpointPort{
			Name:        ptr.To(sp.Name),
			Protocol:    ptr.To(protocol(sp.Protocol)),
			Port:        ptr.To(target),
			AppProtocol: sp.AppProtocol,
		})
	}
	return ports
}

// targetPort resolves a Service port's targetPort for one pod: a name is
// looked up among the pod's container ports of the same protocol (so two
// pods may serve it on different numbers), a number is used as is, and
// none means the Service port itself, as upstream's defaulting.
func targetPort(sp corev1.ServicePort, pod *skiffcorev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	if name := tp.StrVal; tp.Type == intstr.String && name != "" {
		return namedContainerPort(pod, name, protocol(sp.Protocol))
	}
	if tp.IntVal != 0 {
		return tp.IntVal, true
	}
	return sp.Port, true
}

// namedContainerPort finds the port called name in the pod's containers,
// including sidecars (init containers that keep running).
func namedContainerPort(pod *skiffcorev1.Pod, name string, proto corev1.Protocol) (int32, bool) {
	containers := pod.Spec.Containers
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(containers[:len(containers):len(containers)], c)
		}
	}
	for _, c := range containers {
		for _, p := range c.Ports {
			if p.Name == name && protocol(p.Protocol) == proto {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// protocol defaults an empty protocol to TCP: a custom resource gets no
// apiserver defaulting, so skiff reads it the way upstream writes it.
func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}
