//go:build tools

// Package peers imports the main packages build.sh builds, so that `go mod tidy` keeps every
// module they need in go.mod and go.sum.
package peers

import (
	_ "github.com/onsi/ginkgo/v2/ginkgo"
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubemark"
	_ "k8s.io/kubernetes/test/e2e"
)
