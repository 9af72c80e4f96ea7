// CoreDNS for the offline kind node with only the plugins its Corefile uses
// (hack/kind/cluster.sh): errors, health, ready, kubernetes, prometheus,
// cache, loop, reload, loadbalance, and log for debugging. Built by
// hack/kind/build.sh against the CoreDNS version kubeadm names. Leaving out
// the other plugins (cloud DNS back ends, tracing, dnstap, etcd, grpc...)
// leaves 754 Go packages to compile instead of 1,290; and without the
// forward plugin this binary cannot send a query outside the cluster,
// whatever its Corefile says.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() { coremain.Run() }
