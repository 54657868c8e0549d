#!/usr/bin/env bash
# Builds the broker and operator images from static musl binaries, without pulling any base
# image: `cargo build --target x86_64-unknown-linux-musl`, then the Dockerfile's
# `broker-prebuilt` and `operator-prebuilt` targets with podman (or buildah).
#
# Usage: e2e/scripts/build-images.sh [broker|operator]...   (default: both)
# Environment:
#   STROM_IMAGE_TAG     image tag (default: dev)
#   STROM_IMAGE_PREFIX  repository prefix (default: localhost/), images are
#                       ${STROM_IMAGE_PREFIX}strom-broker:${STROM_IMAGE_TAG} and ...strom-operator...
#   CARGO_TARGET_DIR    must lie under target/ of the repository, which is the build context
#                       (default: target/musl, apart from the debug builds)
# Prints one line per image: `image NAME SIZE_BYTES`.
# Needs: rustup target x86_64-unknown-linux-musl, musl-tools, podman or buildah (all from
# e2e/install-tools.sh).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tag="${STROM_IMAGE_TAG:-dev}"
prefix="${STROM_IMAGE_PREFIX:-localhost/}"
target_dir="${CARGO_TARGET_DIR:-$repo/target/musl}"
case "$target_dir" in
  /*) ;;
  *) target_dir="$repo/$target_dir" ;;
esac
case "$target_dir" in
  "$repo"/target/*) ;;
  *)
    echo "build-images: CARGO_TARGET_DIR=$target_dir is outside $repo/target/, so outside the build context" >&2
    exit 2
    ;;
esac

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(broker operator)
packages=()
for component in "${components[@]}"; do
  case "$component" in
    broker | operator) packages+=(-p "strom-$component") ;;
    *)
      echo "build-images: unknown image '$component' (broker or operator)" >&2
      exit 2
      ;;
  esac
done

if command -v podman >/dev/null; then
  builder=(podman build)
elif command -v buildah >/dev/null; then
  builder=(buildah bud)
else
  echo "build-images: neither podman nor buildah is installed: run e2e/install-tools.sh" >&2
  exit 1
fi

echo "build-images: cargo build --release --target x86_64-unknown-linux-musl ${packages[*]} (CARGO_TARGET_DIR=$target_dir)" >&2
(cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release --locked \
  --target x86_64-unknown-linux-musl "${packages[@]}")

bin_dir="${target_dir#"$repo"/}/x86_64-unknown-linux-musl/release"
# The operator image carries the CA bundle for TLS to endpoints outside the cluster.
cp /etc/ssl/certs/ca-certificates.crt "$repo/$bin_dir/ca-certificates.crt"

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml")"
revision="$(git -C "$repo" rev-parse --verify -q HEAD 2>/dev/null || echo unknown)"

for component in "${components[@]}"; do
  image="${prefix}strom-${component}:${tag}"
  echo "build-images: building $image" >&2
  "${builder[@]}" --isolation chroot --quiet \
    --file "$repo/Dockerfile" \
    --target "${component}-prebuilt" \
    --build-arg "BIN_DIR=$bin_dir" \
    --build-arg "VERSION=$version" \
    --build-arg "REVISION=$revision" \
    --tag "$image" \
    "$repo" >/dev/null
  size="$(podman image inspect --format "{{.Size}}" "$image" 2>/dev/null || echo unknown)"
  echo "image $image $size"
done
