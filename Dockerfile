# tierq image: the production binary only (cmd/tierq), the default target.
# The emulators used by `make demo` and `tierq-dev up` live in cmd/tierq-dev
# and are never built into this image: the separate `dev` target below
# (docker build --target dev) holds tierq-dev alone, for docker-compose.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tierq ./cmd/tierq

FROM build AS dev-build
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tierq-dev ./cmd/tierq-dev

# dev: `tierq-dev up`, the local SQS, S3 and Bedrock simulator of docker-compose.
FROM gcr.io/distroless/static-debian12:nonroot AS dev
COPY --from=dev-build /out/tierq-dev /usr/local/bin/tierq-dev
USER nonroot
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tierq-dev"]
CMD ["up", "--bind", "0.0.0.0"]

# The production image: the last stage, so `docker build .` builds it.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tierq /usr/local/bin/tierq
COPY tiering/default.yaml /etc/tierq/tiers.yaml
USER nonroot
# ECS sends SIGTERM and waits stopTimeout (30 s by default) before SIGKILL;
# the worker drains within TIERQ_DRAIN_TIMEOUT (25 s by default).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tierq"]
CMD ["worker"]
