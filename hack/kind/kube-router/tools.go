//go:build tools

// The wrapper module of kube-router (hack/kind/build.sh, build_kube_router):
// this import keeps kube-router's command, and so every dependency it
// builds with, in the module graph that `go mod tidy` writes; the raised
// versions of raise.txt are then the ones compiled in.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
