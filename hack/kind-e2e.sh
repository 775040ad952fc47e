#!/usr/bin/env bash
# Runs the e2e suite (test/e2e) on a kind cluster, for machines with a Docker engine.
# The suite itself only needs a KUBECONFIG; on machines without Docker `npm test` runs it
# against the local control plane (hack/local-cluster) instead.
#
#   hack/kind-e2e.sh            create the cluster, load the image, run the suite, delete it
#   KEEP_CLUSTER=1 hack/kind-e2e.sh   keep the cluster afterwards
set -euo pipefail

KIND_NODE_IMAGE="kindest/node:v1.36.3"   # the Kubernetes release the local control plane builds
CLUSTER="tiercache-e2e"
IMAGE="tiercache:e2e"
cd "$(dirname "$0")/.."

command -v docker >/dev/null || { echo "kind-e2e needs Docker; without it run npm test (local control plane)" >&2; exit 1; }
command -v kind >/dev/null || { echo "install kind: go install sigs.k8s.io/kind@latest" >&2; exit 1; }

docker build -t "$IMAGE" .
kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --wait 120s --config - <<'YAML'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
    labels: { topology.kubernetes.io/region: ap-southeast-1, topology.kubernetes.io/zone: ap-southeast-1a }
  - role: worker
    labels: { topology.kubernetes.io/region: ap-southeast-1, topology.kubernetes.io/zone: ap-southeast-1b }
  - role: worker
    labels: { topology.kubernetes.io/region: eu-west-1, topology.kubernetes.io/zone: eu-west-1a }
YAML
[ "${KEEP_CLUSTER:-}" = 1 ] || trap 'kind delete cluster --name "$CLUSTER"' EXIT
kind load docker-image "$IMAGE" --name "$CLUSTER"

KUBECONFIG="$(mktemp)"
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG"
E2E_KUBECONFIG="$KUBECONFIG" E2E_IMAGE="$IMAGE" npx vitest run --project e2e
