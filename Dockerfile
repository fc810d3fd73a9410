# syntax=docker/dockerfile:1
# The gateway's container image: a static binary on distroless, non-root,
# Pebble data in the /data volume. Build: `make image` (podman or docker).
#
#   docker run -d -p 8080:8080 -v gateway-data:/data \
#     -e ASSISTIV_ADMIN_KEY=... -e ASSISTIV_MASTER_KEY=... assistiv/gateway:dev
#
# cmd/gateway/image_test.go builds the runtime stage below FROM scratch (no
# base image can be pulled there) and runs the binary out of its exported
# root file system: keep the runtime stage's COPY lines in the
# `COPY --from=build /out/<path> <dest>` form.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO off: a static binary that runs on any base, scratch included.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gateway ./cmd/gateway \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /usr/local/bin/gateway
COPY --from=build --chown=65532:65532 /out/data /data
ENV ASSISTIV_LISTEN=0.0.0.0:8080 \
    ASSISTIV_DATA_DIR=/data \
    ASSISTIV_PUBLIC_URL=http://127.0.0.1:8080
USER 65532:65532
VOLUME ["/data"]
# 8080 HTTP; 7946 memberlist (tcp and udp) and 8090 the actor remote in cluster mode.
EXPOSE 8080 7946 7946/udp 8090
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["serve"]
