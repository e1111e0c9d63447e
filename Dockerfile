# Builds skiff's images: `docker build --target manager .` for the control
# plane, `docker build --target nodeagent .` for the node agent.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY nodeagent/ nodeagent/
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/manager ./cmd/manager && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/nodeagent ./cmd/nodeagent

# The node agent runs as root: it will drive containerd, CNI and eBPF on
# its host (the node agent and networking issues).
FROM gcr.io/distroless/static AS nodeagent
COPY --from=build /out/nodeagent /nodeagent
ENTRYPOINT ["/nodeagent"]

# The manager needs no shell and runs as an unprivileged user. Last, so
# that a plain `docker build .` builds it.
FROM gcr.io/distroless/static:nonroot AS manager
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
