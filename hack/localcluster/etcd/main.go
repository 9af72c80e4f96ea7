// Command etcd is etcd's own server entry point, built from the Go module
// proxy. etcd's repository uses relative replace directives, so
// `go install go.etcd.io/etcd/server/v3@...` does not work; this wrapper
// module requires the published server module and calls its main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
