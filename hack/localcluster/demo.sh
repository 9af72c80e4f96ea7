#!/usr/bin/env bash
# Shows what the local cluster does (make cluster-demo): nodes, a Deployment
# and a StatefulSet with volumes rolling out, a ResourceQuota refusing a pod
# without requests, RBAC refusing a ServiceAccount without a RoleBinding.
# Uses a cluster of its own (NEURALLOG_CLUSTER_NAME, default "demo") and
# removes it at the end.
set -uo pipefail
cd "$(dirname "$0")/../.."
export NEURALLOG_CLUSTER_NAME=${NEURALLOG_CLUSTER_NAME:-demo}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
. hack/lib/cache.sh
K=$neurallog_cache/bin/kubectl
echo '$ time cluster.py up'; ( time .venv/bin/python hack/localcluster/cluster.py up ) 2>&1
export KUBECONFIG=$(.venv/bin/python hack/localcluster/cluster.py kubeconfig)
echo '$ kubectl version'; $K version
echo '$ kubectl get nodes -o wide'; $K get nodes -o wide
echo '$ kubectl get storageclass'; $K get storageclass
$K create namespace demo
cat <<'Y' | $K -n demo apply -f -
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.example/web:1.0}]}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: registry.example/db:1.0}]}
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
Y
echo '$ kubectl -n demo rollout status deployment/web statefulset/db'
$K -n demo rollout status deployment/web --timeout=90s
$K -n demo rollout status statefulset/db --timeout=90s
echo '$ kubectl -n demo get deploy,sts,pods,pvc'; $K -n demo get deploy,sts,pods,pvc -o wide
$K create namespace quota-demo
$K -n quota-demo create quota q --hard=requests.cpu=1,requests.memory=1Gi,limits.cpu=2,limits.memory=2Gi
echo '$ kubectl -n quota-demo run nores --image=registry.example/x:1 (a pod without resource requests)'
$K -n quota-demo run nores --image=registry.example/x:1
$K -n demo create serviceaccount nobody
TOKEN=$($K -n demo create token nobody)
echo '$ kubectl --token=<nobody SA token> -n demo get secrets'
SERVER=$($K config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
cp "$($K config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')" "$work/ca.crt"
KUBECONFIG=/dev/null $K --server="$SERVER" --certificate-authority="$work/ca.crt" --token="$TOKEN" -n demo get secrets 2>&1
echo '$ kubectl auth can-i list secrets -n demo --as=system:serviceaccount:demo:nobody'
$K auth can-i list secrets -n demo --as=system:serviceaccount:demo:nobody
.venv/bin/python hack/localcluster/cluster.py down
