# Images of Strom: one static binary per image, on an empty base, running as uid 65532.
#
# From source (needs the official Rust image):
#   docker build --target broker   -t strom-broker:dev .
#   docker build --target operator -t strom-operator:dev .
#
# From static binaries built beforehand (no base image is pulled at all, so this works where no
# registry can be reached; podman/buildah need `--isolation chroot` only for RUN steps, and these
# stages have none):
#   cargo build --release --locked --target x86_64-unknown-linux-musl -p strom-broker -p strom-operator
#   cp /etc/ssl/certs/ca-certificates.crt target/x86_64-unknown-linux-musl/release/
#   podman build --target broker-prebuilt   -t strom-broker:dev .
#   podman build --target operator-prebuilt -t strom-operator:dev .
# (`e2e/scripts/build-images.sh` does exactly this.) BIN_DIR names another directory of the build
# context that holds the binaries, e.g. --build-arg BIN_DIR=target/musl/x86_64-unknown-linux-musl/release.

ARG RUST_IMAGE=rust:1-bookworm
ARG BIN_DIR=target/x86_64-unknown-linux-musl/release
ARG VERSION=0.1.0
ARG REVISION=unknown

# ---------------------------------------------------------------------------------------------
# Builder: static musl binaries of the broker and the operator.
FROM ${RUST_IMAGE} AS builder
# musl-tools: the C parts of dependencies (jemalloc in the broker, ring in the operator) compile
# with musl-gcc.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# The target dir is a cache mount, so the binaries are copied out of it before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --target x86_64-unknown-linux-musl -p strom-broker -p strom-operator \
 && mkdir -p /out \
 && cp target/x86_64-unknown-linux-musl/release/strom-broker \
       target/x86_64-unknown-linux-musl/release/strom-operator /out/ \
 && cp /etc/ssl/certs/ca-certificates.crt /out/

# ---------------------------------------------------------------------------------------------
# An empty directory tree for the broker's data dir: WORKDIR creates it without any RUN step, and
# COPY --chown hands it to the broker's user. With podman/buildah's layer cache a stage whose
# only step is WORKDIR commits no filesystem change (the directory would be missing), so a COPY
# to elsewhere makes the stage commit it; only /var/lib/strom is taken from this stage.
FROM scratch AS datadir
WORKDIR /var/lib/strom
COPY Cargo.toml /.commit-layer

# ---------------------------------------------------------------------------------------------
# What both broker images share: everything but the binary.
FROM scratch AS broker-base
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="strom-broker" \
      org.opencontainers.image.description="Strom: a Kafka-compatible event streaming broker" \
      org.opencontainers.image.source="https://github.com/strom-io/strom" \
      org.opencontainers.image.url="https://github.com/strom-io/strom" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Strom" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=datadir --chown=65532:65532 /var/lib/strom /var/lib/strom
USER 65532:65532
WORKDIR /var/lib/strom
# 9092: Kafka protocol; 9404: admin HTTP (/metrics, /healthz, /readyz).
EXPOSE 9092 9404
ENTRYPOINT ["/strom-broker"]
# Defaults for `podman run -p 127.0.0.1:9092:9092 IMAGE`; Kubernetes (the operator) passes its own
# arguments, with the pod's DNS name as the advertised listener.
CMD ["--data-dir", "/var/lib/strom", "--listen", "0.0.0.0:9092", "--advertised-listener", "127.0.0.1:9092", "--admin-listen", "0.0.0.0:9404"]

# ---------------------------------------------------------------------------------------------
# What both operator images share.
FROM scratch AS operator-base
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="strom-operator" \
      org.opencontainers.image.description="Strom: Kubernetes operator for Kafka-compatible Strom clusters" \
      org.opencontainers.image.source="https://github.com/strom-io/strom" \
      org.opencontainers.image.url="https://github.com/strom-io/strom" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Strom" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
USER 65532:65532
# 8080: /metrics, /healthz, /readyz.
EXPOSE 8080
ENTRYPOINT ["/strom-operator"]

# ---------------------------------------------------------------------------------------------
# Images from binaries in the build context (BIN_DIR).
FROM operator-base AS operator-prebuilt
ARG BIN_DIR
COPY ${BIN_DIR}/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY ${BIN_DIR}/strom-operator /strom-operator

FROM broker-base AS broker-prebuilt
ARG BIN_DIR
COPY ${BIN_DIR}/strom-broker /strom-broker

# ---------------------------------------------------------------------------------------------
# Images built from source.
FROM operator-base AS operator
COPY --from=builder /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /out/strom-operator /strom-operator

FROM broker-base AS broker
COPY --from=builder /out/strom-broker /strom-broker
