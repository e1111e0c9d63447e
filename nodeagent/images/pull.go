package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
)

// The reasons an image is not there to run, as upstream's kubelet names them
// in a container's Waiting state. A *PullError matches one of them with
// errors.Is.
var (
	ErrImagePull        = errors.New("ErrImagePull")
	ErrImageNeverPull   = errors.New("ErrImageNeverPull")
	ErrImagePullBackOff = errors.New("ImagePullBackOff")
	ErrInvalidImageName = errors.New("InvalidImageName")
)

// PullError says why a container's image is missing, in the words the
// runtime reports: Reason (one of the Err* above; Reason.Error() is the
// Waiting reason) and Message, upstream's message.
type PullError struct {
	Reason  error
	Message string
	// Err is the underlying failure, such as the registry's, if any.
	Err error
}

func (e *PullError) Error() string { return e.Message }

// Is matches the error's reason, so that callers can test
// errors.Is(err, ErrImagePull).
func (e *PullError) Is(target error) bool { return target == e.Reason }

func (e *PullError) Unwrap() error { return e.Err }

// dialTimeout bounds the connection to a registry, so that a node without
// network fails a pull in seconds and reports ErrImagePull, instead of
// hanging the pod for the system's TCP timeout (minutes).
const dialTimeout = 5 * time.Second

// Resolver is how Ensure reaches registries: plain HTTP on localhost, TLS
// elsewhere, short timeouts, and credentials from creds (nil for anonymous
// pulls; the runtime passes one that reads the pod's imagePullSecrets).
// Pass it to Ensure with containerd.WithResolver.
func Resolver(creds func(host string) (user, secret string, err error)) remotes.Resolver {
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConns:          10,
		IdleConnTimeout:       30 * time.Second,
	}}
	authOpts := []docker.AuthorizerOpt{docker.WithAuthClient(client)}
	if creds != nil {
		authOpts = append(authOpts, docker.WithAuthCreds(creds))
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithClient(client),
		docker.WithPlainHTTP(docker.MatchLocalhost),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(authOpts...)),
	)})
}

// anonymous is the resolver of pulls without credentials, made once so
// that its connections and tokens serve every pull.
var anonymous = sync.OnceValue(func() remotes.Resolver { return Resolver(nil) })

// Ensure makes image present and unpacked in containerd as policy asks,
// pulling it when needed, and returns it. An empty policy gets upstream's
// default (see PullPolicy). Failures are *PullError. opts go to
// client.Pull after skiff's own, so that containerd.WithResolver(Resolver(creds))
// there replaces the anonymous resolver.
func Ensure(ctx context.Context, client *containerd.Client, image string, policy corev1.PullPolicy, opts ...containerd.RemoteOpt) (containerd.Image, error) {
	return ensure(ctx, client, image, policy, nil, opts)
}

// ensure is Ensure with a gate that may refuse a pull (the back-off).
func ensure(ctx context.Context, client *containerd.Client, image string, policy corev1.PullPolicy, mayPull func() error, opts []containerd.RemoteOpt) (containerd.Image, error) {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return nil, &PullError{Reason: ErrInvalidImageName, Message: fmt.Sprintf("Failed to apply default image tag %q: couldn't parse image name %q: %v", image, image, err), Err: err}
	}
	ref := named.String()
	img, err := client.GetImage(ctx, ref)
	present := err == nil
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("looking up image %q in containerd: %w", image, err)
	}
	pull, err := shouldPull(image, PullPolicy(image, policy), present)
	if err != nil {
		return nil, err
	}
	if !pull {
		if err := unpack(ctx, img); err != nil {
			return nil, err
		}
		return img, nil
	}
	if mayPull != nil {
		if err := mayPull(); err != nil {
			return nil, err
		}
	}
	opts = append([]containerd.RemoteOpt{containerd.WithResolver(anonymous()), containerd.WithPullUnpack}, opts...)
	img, err = client.Pull(ctx, ref, opts...)
	if err != nil {
		return nil, &PullError{Reason: ErrImagePull, Message: withLoadHint(ref, fmt.Sprintf("failed to pull and unpack image %q: %v", ref, err)), Err: err}
	}
	return img, nil
}

// PullPolicy is the policy that applies to image: policy when set, else
// upstream's default, which the CRD cannot express because it depends on
// the image: Always for the tag latest or no tag, IfNotPresent otherwise
// (a digest without a tag included).
func PullPolicy(image string, policy corev1.PullPolicy) corev1.PullPolicy {
	if policy != "" {
		return policy
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return corev1.PullAlways // Ensure reports the bad name
	}
	if t, ok := named.(reference.Tagged); ok {
		if t.Tag() == "latest" {
			return corev1.PullAlways
		}
		return corev1.PullIfNotPresent
	}
	if _, ok := named.(reference.Digested); ok {
		return corev1.PullIfNotPresent
	}
	return corev1.PullAlways
}

// shouldPull decides whether to pull an image, given whether containerd
// has it; a missing image that may not be pulled is ErrImageNeverPull.
func shouldPull(image string, policy corev1.PullPolicy, present bool) (bool, error) {
	switch policy {
	case corev1.PullAlways:
		return true, nil
	case corev1.PullIfNotPresent:
		return !present, nil
	case corev1.PullNever:
		if !present {
			return false, &PullError{Reason: ErrImageNeverPull, Message: withLoadHint(image, fmt.Sprintf("Container image %q is not present with pull policy of Never", image))}
		}
		return false, nil
	}
	return false, fmt.Errorf("imagePullPolicy %q of image %q: want Always, IfNotPresent or Never", policy, image)
}
