package server

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// The node agent asks the apiserver who a caller is and what it may do, as
// the kubelet's webhook authenticator and authorizer do.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// How long a token's verdict is trusted, the kubelet's defaults
// (--authentication-token-webhook-cache-ttl and its failure TTL): a revoked
// token works for at most a minute; a new one is refused for at most 10 s.
const (
	tokenSuccessTTL = time.Minute
	tokenFailureTTL = 10 * time.Second
)

// authenticator knows callers by a client certificate that the cluster's
// CA signed, as the kubelet does with --client-ca-file, or by a bearer
// token, which it checks with TokenReviews and whose verdicts it
// remembers, so that a session of requests costs one review.
type authenticator struct {
	client client.Client
	now    func() time.Time
	// clientCAs verify client certificates; nil accepts tokens only.
	clientCAs *x509.CertPool

	mu    sync.Mutex
	cache map[[sha256.Size]byte]tokenVerdict
}

type tokenVerdict struct {
	user    *authenticationv1.UserInfo // nil when refused
	reason  string
	expires time.Time
}

func newAuthenticator(c client.Client) *authenticator {
	return &authenticator{client: c, now: time.Now, cache: map[[sha256.Size]byte]tokenVerdict{}}
}

// authenticate returns the user of the request's client certificate or
// bearer token, or a 401. A certificate is tried first, as the apiserver
// tries its x509 authenticator first; one that does not verify leaves the
// token to decide, and is the reason given when there is none.
func (a *authenticator) authenticate(ctx context.Context, r *http.Request) (*authenticationv1.UserInfo, error) {
	user, certErr := a.certificateUser(r)
	if user != nil {
		return user, nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		if certErr != nil {
			return nil, httpError{http.StatusUnauthorized, "Unauthorized: " + certErr.Error()}
		}
		return nil, httpError{http.StatusUnauthorized, "Unauthorized: " + a.askForCredentials()}
	}
	v, err := a.verdict(ctx, strings.TrimSpace(token))
	if err != nil {
		return nil, err
	}
	if v.user == nil {
		return nil, httpError{http.StatusUnauthorized, "Unauthorized: " + v.reason}
	}
	return v.user, nil
}

// askForCredentials says what the caller may send.
func (a *authenticator) askForCredentials() string {
	if a.clientCAs == nil {
		return "send a bearer token (Authorization: Bearer <token>)"
	}
	return "send a bearer token (Authorization: Bearer <token>) or a client certificate signed by the cluster's CA"
}

// certificateUser is the user a verified client certificate names, as the
// apiserver's x509 authenticator reads it: the subject's CommonName is the
// user name and its Organizations the groups. The TLS handshake only
// requests the certificate; it is verified here, so that one from another
// CA is answered with a 401 that says why, not a failed handshake. It
// returns nil, nil without a certificate, or without a client CA to
// verify one with.
func (a *authenticator) certificateUser(r *http.Request) (*authenticationv1.UserInfo, error) {
	if a.clientCAs == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, nil
	}
	leaf := r.TLS.PeerCertificates[0]
	intermediates := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: a.clientCAs, Intermediates: intermediates, CurrentTime: a.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("the client certificate of %q is not valid here (it must be signed by the node agent's --client-ca-file): %w", leaf.Subject.CommonName, err)
	}
	if leaf.Subject.CommonName == "" {
		return nil, errors.New("the client certificate names no user: its subject has no CommonName")
	}
	return &authenticationv1.UserInfo{Username: leaf.Subject.CommonName, Groups: leaf.Subject.Organization}, nil
}

// verdict is the cached TokenReview of token, or a new one.
func (a *authenticator) verdict(ctx context.Context, token string) (tokenVerdict, error) {
	key := sha256.Sum256([]byte(token))
	now := a.now()
	a.mu.Lock()
	v, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(v.expires) {
		return v, nil
	}
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if err := a.client.Create(ctx, review); err != nil {
		// Not cached: the apiserver's trouble says nothing of the token.
		return tokenVerdict{}, httpError{http.StatusInternalServerError, fmt.Sprintf("checking the token with a TokenReview: %v", err)}
	}
	if review.Status.Authenticated {
		v = tokenVerdict{user: &review.Status.User, expires: now.Add(tokenSuccessTTL)}
	} else {
		reason := review.Status.Error
		if reason == "" {
			reason = "the token is not valid"
		}
		v = tokenVerdict{reason: reason, expires: now.Add(tokenFailureTTL)}
	}
	a.mu.Lock()
	a.forgetExpired(now)
	a.cache[key] = v
	a.mu.Unlock()
	return v, nil
}

// forgetExpired drops the expired verdicts, so that the cache holds only
// the tokens of the last minute. a.mu is held.
func (a *authenticator) forgetExpired(now time.Time) {
	for k, v := range a.cache {
		if !now.Before(v.expires) {
			delete(a.cache, k)
		}
	}
}

// authorize asks the apiserver whether user may verb nodes/<subresource>
// of this node, as the kubelet asks for nodes/log and nodes/proxy, in
// skiff's group since skiff's Node is core.skiff.dev's. It returns a 403
// with the reason when not.
func (s *Server) authorize(ctx context.Context, user *authenticationv1.UserInfo, subresource, verb string) error {
	attrs := &authorizationv1.ResourceAttributes{
		Group:       skiffcorev1.GroupVersion.Group,
		Version:     skiffcorev1.GroupVersion.Version,
		Resource:    "nodes",
		Subresource: subresource,
		Name:        s.cfg.NodeName,
		Verb:        verb,
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: attrs,
		User:               user.Username,
		Groups:             user.Groups,
		UID:                user.UID,
		Extra:              extra(user.Extra),
	}}
	if err := s.cfg.Client.Create(ctx, sar); err != nil {
		return httpError{http.StatusInternalServerError, fmt.Sprintf("authorizing with a SubjectAccessReview: %v", err)}
	}
	if sar.Status.Allowed {
		return nil
	}
	msg := fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource=%s, group=%s)", user.Username, verb, subresource, attrs.Group)
	if sar.Status.Reason != "" {
		msg += ": " + sar.Status.Reason
	}
	return httpError{http.StatusForbidden, msg}
}

func extra(in map[string]authenticationv1.ExtraValue) map[string]authorizationv1.ExtraValue {
	if in == nil {
		return nil
	}
	out := make(map[string]authorizationv1.ExtraValue, len(in))
	for k, v := range in {
		out[k] = authorizationv1.ExtraValue(v)
	}
	return out
}
