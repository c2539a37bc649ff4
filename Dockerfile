# tierq image: the production binary only (cmd/tierq). The emulators used by
# `make demo` live in cmd/tierq-dev and are never built into this image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tierq ./cmd/tierq

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tierq /usr/local/bin/tierq
COPY tiering/default.yaml /etc/tierq/tiers.yaml
USER nonroot
# ECS sends SIGTERM and waits stopTimeout (30 s by default) before SIGKILL;
# the worker drains within TIERQ_DRAIN_TIMEOUT (25 s by default).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tierq"]
CMD ["worker"]
