# skiff: Kubernetes' architecture rebuilt as operators.
#
# The two commands:
#   make up     run skiff locally (etcd, kube-apiserver, the manager, a node agent)
#   make test   run every test

# Images of the manager (for `make deploy`) and the node agent, for
# `make docker-build`.
IMG ?= skiff/manager:latest
NODEAGENT_IMG ?= skiff/nodeagent:latest

# Versions. KUBERNETES_VERSION must match the k8s.io/* modules in go.mod.
KUBERNETES_VERSION ?= v1.37.2
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
KUBECTL ?= $(LOCALBIN)/kubectl
KUBE_APISERVER ?= $(LOCALBIN)/kube-apiserver
ETCD ?= $(LOCALBIN)/etcd

# envtest and the tests find the control plane here.
export KUBEBUILDER_ASSETS := $(LOCALBIN)

# Stamp the control plane with its release so that `kubectl version` and the
# apiserver's /version tell the truth.
K8S_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBERNETES_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(KUBERNETES_VERSION:v%=%))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBERNETES_VERSION:v%=%))) \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBERNETES_VERSION)

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

.PHONY: all
all: build

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs and RBAC from the API types and markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:generateEmbeddedObjectMeta=true paths="./api/..." paths="./controllers/..." paths="./cmd/..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=skiff-node-agent paths="./nodeagent/..." output:rbac:artifacts:config=config/rbac/nodeagent
	go run ./hack/crd-upstream config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) node-prereqs ## Generate the DeepCopy methods and the eBPF bindings (bpf2go, clang).
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."
	go generate ./ebpf/...

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify-generated
verify-generated: generate manifests ## Fail when generated files differ from what is committed.
	@git diff --exit-code --stat -- api config ebpf || { echo "generated files are stale: run 'make generate manifests' and commit the result"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- api config ebpf); if [ -n "$$untracked" ]; then echo "generated files are not committed: $$untracked"; exit 1; fi

.PHONY: test
test: envtest-assets node-prereqs images $(KUSTOMIZE) vet ## Run every test: unit tests and the envtest suites against a real apiserver.
	go test ./... -count=1

.PHONY: bench
# Only the packages that hold benchmarks, so that no suite starts a control
# plane just to run no test.
BENCH_PKGS = $(sort $(patsubst %/,./%,$(dir $(shell grep -rl --include='*_test.go' '^func Benchmark' api cmd controllers internal hack nodeagent ebpf 2>/dev/null))))

# The scale scenarios run the real binaries as separate processes, so that
# their CPU and memory are measured apart from the benchmark's own.
bench: envtest-assets build images node-prereqs ## Run the benchmarks and print their figures.
	go test $(BENCH_PKGS) -run '^$$' -bench . -benchtime 3x -count=1
	go run ./hack/bench -bin $(LOCALBIN) -scenario scale -nodes 1000 -pods 10000 -replicas 1000
	go run ./hack/bench -bin $(LOCALBIN) -scenario rollout -nodes 100 -replicas 1000
	go run ./hack/bench -bin $(LOCALBIN) -scenario pods -pods 30
	go run ./hack/bench -bin $(LOCALBIN) -scenario services -requests 5000

##@ Node prerequisites

# What the node agent runs pods with, and what its end-to-end tests need:
# containerd and runc, the CNI plugins in /usr/lib/cni, busybox for the test
# images, and clang and bpftool for the eBPF programs.
NODE_PACKAGES := containerd runc containernetworking-plugins busybox-static clang llvm bpftool libbpf-dev iproute2 iptables nftables

.PHONY: node-prereqs
node-prereqs: ## Install the node's Debian packages when any is missing.
	@if [ "$$(id -u)" != 0 ]; then echo "node-prereqs: not root, not installing: $(NODE_PACKAGES)"; exit 0; fi; \
	missing=$$(for p in $(NODE_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

##@ Build

# skiff's test images (busybox, echo, memhog) as OCI tarballs, built offline
# from busybox-static and static Go programs; `go run ./hack/images -load
# -address <containerd.sock>` imports them into a node's containerd.
.PHONY: images
images: ## Build the test images into bin/images (no Docker, no registry).
	go run ./hack/images -out $(LOCALBIN)/images

.PHONY: build
build: ## Build the manager, the node agent and the kubectl plugin.
	go build -o $(LOCALBIN)/manager ./cmd/manager
	go build -o $(LOCALBIN)/nodeagent ./cmd/nodeagent
	go build -o $(LOCALBIN)/kubectl-skiff ./cmd/kubectl-skiff

.PHONY: run
run: manifests generate ## Run the manager against the kubeconfig's cluster.
	go run ./cmd/manager

# NODES is how many node agents `make up` runs: one in this machine's network,
# or several, each in a network namespace of its own (make up NODES=3).
NODES ?= 1

.PHONY: up
up: build envtest-assets images node-prereqs $(KUSTOMIZE) ## Run skiff locally: etcd, kube-apiserver, the manager and NODES node agents.
	go run ./hack/up --manager=$(LOCALBIN)/manager --nodeagent=$(LOCALBIN)/nodeagent --nodes=$(NODES)

.PHONY: docker-build
docker-build: ## Build the manager and node agent images (needs a Docker engine).
	docker build --target manager -t $(IMG) .
	docker build --target nodeagent -t $(NODEAGENT_IMG) .

##@ Deployment

.PHONY: install
install: $(KUSTOMIZE) $(KUBECTL) ## Install the CRDs into the kubeconfig's cluster (server-side: they are large).
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side --force-conflicts -f -

.PHONY: uninstall
uninstall: $(KUSTOMIZE) $(KUBECTL) ## Remove the CRDs, and every skiff object with them.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: $(KUSTOMIZE) $(KUBECTL) ## Deploy the manager into the kubeconfig's cluster.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | $(KUBECTL) apply --server-side --force-conflicts -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) $(KUBECTL) ## Remove what deploy created.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Tools (built only when missing, from the Go module proxy)

.PHONY: envtest-assets
envtest-assets: $(KUBE_APISERVER) $(ETCD) $(KUBECTL) ## Build kube-apiserver, etcd and kubectl into bin/.

$(KUBE_APISERVER) $(ETCD) $(KUBECTL): hack/tools/go.mod
	@mkdir -p $(LOCALBIN)
	@echo "building $(notdir $@) from source (hack/tools/go.mod) (the first build takes about 5 minutes)"
	cd hack/tools && go build -ldflags "$(K8S_LDFLAGS)" -o $@ ./$(notdir $@)

$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

$(KUSTOMIZE):
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
