// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Socket-level service load balancing. The programs run in the cgroup
// sock_addr hooks, so a connect() or sendmsg() to a service VIP is rewritten
// to a backend before the kernel routes anything: no per-packet NAT, no
// conntrack. recvmsg() and getpeername() undo the rewrite, so applications
// only ever see the VIP.
//
// Every address is kept as 16 bytes; an IPv4 address is stored IPv4-mapped
// (::ffff:a.b.c.d). That is exactly what an IPv6 socket sees when it talks to
// an IPv4 peer, so the IPv6 hooks balance ::ffff:VIP with the same entries as
// the IPv4 hooks balance VIP.

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ECONNREFUSED 111
#define NSEC_PER_SEC 1000000000ULL

struct addr {
	__u32 w[4]; // network byte order
};

// svc_key names a service: VIP, port (network byte order) and IPPROTO_*.
struct svc_key {
	struct addr vip;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

// svc is a service's current revision. Each update gets a fresh id, so the
// backends of one revision are never rewritten under a reader.
struct svc {
	__u32 id;
	__u32 count;        // backends in slots [0, count)
	__u32 affinity_sec; // ClientIP affinity timeout; 0 disables affinity
	__u32 pad;
};

struct backend_key {
	__u32 id;
	__u32 slot;
};

struct backend {
	struct addr addr;
	__u16 port; // network byte order
	__u16 pad;
};

// revnat_key finds the VIP a socket meant when it talks to a backend.
struct revnat_key {
	__u64 cookie; // socket cookie
	struct addr addr;
	__u16 port;
	__u16 pad[3];
};

struct revnat {
	struct addr vip;
	__u16 port;
	__u16 pad;
};

// affinity_key identifies a client by its network namespace: a pod is one
// network namespace with one IP, and at connect() time the source address is
// not chosen yet.
struct affinity_key {
	struct svc_key svc;
	__u64 netns;
};

struct affinity {
	struct backend backend;
	__u32 id;   // service revision the backend was picked from
	__u32 slot; // and its slot there
	__u64 last_ns;
};

struct cidr_key {
	__u32 prefixlen;
	struct addr addr;
};

enum counter {
	COUNTER_TRANSLATED,
	COUNTER_NO_BACKEND,
	COUNTER_UNKNOWN_VIP,
	COUNTER_REVERSE_NAT,
	COUNTER_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct svc_key);
	__type(value, struct svc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct backend_key);
	__type(value, struct backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct revnat_key);
	__type(value, struct revnat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct affinity_key);
	__type(value, struct affinity);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_affinity SEC(".maps");

// lb_service_cidrs holds the service CIDRs: an address inside one that is no
// service is refused instead of leaking to the default route.
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__type(key, struct cidr_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_service_cidrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_counters SEC(".maps");

enum verdict {
	VERDICT_PASS,      // not a service: leave the socket alone
	VERDICT_TRANSLATE, // rewritten to a backend
	VERDICT_REFUSE,    // a service without backends, or an unknown VIP
};

static __always_inline void bump(enum counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&lb_counters, &key);

	if (v)
		*v += 1;
}

static __always_inline int same_backend(const struct backend *a, const struct backend *b)
{
	return a->addr.w[0] == b->addr.w[0] && a->addr.w[1] == b->addr.w[1] &&
	       a->addr.w[2] == b->addr.w[2] && a->addr.w[3] == b->addr.w[3] &&
	       a->port == b->port;
}

static __always_inline int in_service_cidr(const struct addr *a)
{
	struct cidr_key key = { .prefixlen = 128, .addr = *a };

	return bpf_map_lookup_elem(&lb_service_cidrs, &key) != NULL;
}

// sticky returns the backend this client was given within the affinity
// timeout, if it still serves the service. An update that keeps a backend
// keeps its slot, so affinity survives unrelated endpoint changes.
static __always_inline int sticky(struct affinity *a, __u32 id, __u32 count, __u64 now,
				  __u64 timeout, struct backend *out)
{
	struct backend_key bk = { .id = id, .slot = a->slot };
	struct backend *be;

	if (now - a->last_ns > timeout)
		return 0;
	if (a->id != id) {
		if (a->slot >= count)
			return 0;
		be = bpf_map_lookup_elem(&lb_backends, &bk);
		if (!be || !same_backend(be, &a->backend))
			return 0;
		a->id = id;
	}
	a->last_ns = now;
	*out = a->backend;
	return 1;
}

// pick chooses a backend for one service lookup. It returns -1 when the
// service changed between the two lookups (its old slots are being deleted),
// so the caller looks again.
static __always_inline int pick(void *ctx, const struct svc_key *key, struct backend *out)
{
	struct backend_key bk = {};
	struct affinity_key ak = {};
	struct affinity *a = NULL;
	struct backend *be;
	__u64 now = 0, timeout = 0;
	struct svc *svc;
	__u32 count;

	svc = bpf_map_lookup_elem(&lb_services, key);
	if (!svc) {
		if (!in_service_cidr(&key->vip))
			return VERDICT_PASS;
		bump(COUNTER_UNKNOWN_VIP);
		return VERDICT_REFUSE;
	}
	bk.id = svc->id;
	count = svc->count;
	timeout = (__u64)svc->affinity_sec * NSEC_PER_SEC;
	if (count == 0) {
		bump(COUNTER_NO_BACKEND);
		return VERDICT_REFUSE;
	}

	if (timeout) {
		now = bpf_ktime_get_ns();
		ak.svc = *key;
		ak.netns = bpf_get_netns_cookie(ctx);
		a = bpf_map_lookup_elem(&lb_affinity, &ak);
		if (a && sticky(a, bk.id, count, now, timeout, out))
			return VERDICT_TRANSLATE;
	}

	bk.slot = bpf_get_prandom_u32() % count;
	be = bpf_map_lookup_elem(&lb_backends, &bk);
	if (!be)
		return -1;
	*out = *be;

	if (timeout) {
		struct affinity v = { .backend = *be, .id = bk.id, .slot = bk.slot, .last_ns = now };

		bpf_map_update_elem(&lb_affinity, &ak, &v, BPF_ANY);
	}
	return VERDICT_TRANSLATE;
}

static __always_inline int balance(void *ctx, const struct svc_key *key, struct backend *out)
{
	int v = pick(ctx, key, out);

	if (v < 0)
		v = pick(ctx, key, out);
	if (v < 0) {
		bump(COUNTER_NO_BACKEND);
		return VERDICT_REFUSE;
	}
	if (v == VERDICT_TRANSLATE)
		bump(COUNTER_TRANSLATED);
	return v;
}

static __always_inline void remember(struct bpf_sock_addr *ctx, const struct svc_key *key,
				     const struct backend *be)
{
	struct revnat_key rk = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = be->addr,
		.port = be->port,
	};
	struct revnat v = { .vip = key->vip, .port = key->port };

	bpf_map_update_elem(&lb_revnat, &rk, &v, BPF_ANY);
}

static __always_inline struct revnat *recall(struct bpf_sock_addr *ctx, const struct addr *peer,
					     __u16 port)
{
	struct revnat_key rk = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = *peer,
		.port = port,
	};
	struct revnat *v = bpf_map_lookup_elem(&lb_revnat, &rk);

	if (v)
		bump(COUNTER_REVERSE_NAT);
	return v;
}

static __always_inline void mapped4(struct addr *a, __u32 ip4)
{
	a->w[0] = 0;
	a->w[1] = 0;
	a->w[2] = bpf_htonl(0x0000ffff);
	a->w[3] = ip4;
}

static __always_inline int is_mapped4(const struct addr *a)
{
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == bpf_htonl(0x0000ffff);
}

static __always_inline void read6(struct bpf_sock_addr *ctx, struct addr *a)
{
	a->w[0] = ctx->user_ip6[0];
	a->w[1] = ctx->user_ip6[1];
	a->w[2] = ctx->user_ip6[2];
	a->w[3] = ctx->user_ip6[3];
}

static __always_inline void write6(struct bpf_sock_addr *ctx, const struct addr *a)
{
	ctx->user_ip6[0] = a->w[0];
	ctx->user_ip6[1] = a->w[1];
	ctx->user_ip6[2] = a->w[2];
	ctx->user_ip6[3] = a->w[3];
}

// refuse fails the syscall with ECONNREFUSED, as a closed port would, rather
// than the EPERM a plain "return 0" gives.
static __always_inline int refuse(void)
{
	bpf_set_retval(-ECONNREFUSED);
	return 0;
}

static __always_inline int forward4(struct bpf_sock_addr *ctx)
{
	struct svc_key key = { .port = (__u16)ctx->user_port, .proto = (__u8)ctx->protocol };
	struct backend be;

	mapped4(&key.vip, ctx->user_ip4);
	switch (balance(ctx, &key, &be)) {
	case VERDICT_REFUSE:
		return refuse();
	case VERDICT_TRANSLATE:
		if (!is_mapped4(&be.addr))
			return refuse(); // an IPv6 backend cannot serve an IPv4 socket
		ctx->user_ip4 = be.addr.w[3];
		ctx->user_port = be.port;
		remember(ctx, &key, &be);
	}
	return 1;
}

static __always_inline int forward6(struct bpf_sock_addr *ctx)
{
	struct svc_key key = { .port = (__u16)ctx->user_port, .proto = (__u8)ctx->protocol };
	struct backend be;

	read6(ctx, &key.vip);
	switch (balance(ctx, &key, &be)) {
	case VERDICT_REFUSE:
		return refuse();
	case VERDICT_TRANSLATE:
		write6(ctx, &be.addr);
		ctx->user_port = be.port;
		remember(ctx, &key, &be);
	}
	return 1;
}

static __always_inline void reverse4(struct bpf_sock_addr *ctx)
{
	struct addr peer;
	struct revnat *v;

	mapped4(&peer, ctx->user_ip4);
	v = recall(ctx, &peer, (__u16)ctx->user_port);
	if (v) {
		ctx->user_ip4 = v->vip.w[3];
		ctx->user_port = v->port;
	}
}

static __always_inline void reverse6(struct bpf_sock_addr *ctx)
{
	struct addr peer;
	struct revnat *v;

	read6(ctx, &peer);
	v = recall(ctx, &peer, (__u16)ctx->user_port);
	if (v) {
		write6(ctx, &v->vip);
		ctx->user_port = v->port;
	}
}

SEC("cgroup/connect4")
int lb_connect4(struct bpf_sock_addr *ctx) { return forward4(ctx); }

SEC("cgroup/connect6")
int lb_connect6(struct bpf_sock_addr *ctx) { return forward6(ctx); }

SEC("cgroup/sendmsg4")
int lb_sendmsg4(struct bpf_sock_addr *ctx) { return forward4(ctx); }

SEC("cgroup/sendmsg6")
int lb_sendmsg6(struct bpf_sock_addr *ctx) { return forward6(ctx); }

// The reverse hooks must return 1: the kernel does not let them fail.
SEC("cgroup/recvmsg4")
int lb_recvmsg4(struct bpf_sock_addr *ctx)
{
	reverse4(ctx);
	return 1;
}

SEC("cgroup/recvmsg6")
int lb_recvmsg6(struct bpf_sock_addr *ctx)
{
	reverse6(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int lb_getpeername4(struct bpf_sock_addr *ctx)
{
	reverse4(ctx);
	return 1;
}

SEC("cgroup/getpeername6")
int lb_getpeername6(struct bpf_sock_addr *ctx)
{
	reverse6(ctx);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
