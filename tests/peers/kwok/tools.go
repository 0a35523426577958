//go:build tools

// Package kwok imports the main package build.sh builds, so that `go mod tidy` keeps every
// module it needs in go.mod and go.sum.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
