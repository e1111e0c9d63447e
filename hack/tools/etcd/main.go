// Command etcd is upstream etcd's server, built from go.etcd.io/etcd/server/v3
// so that skiff needs no downloaded binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
