package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// pin is one upstream Go module the facts come from, at one version, with the go.sum hash the
// download must match (the module proxy and sum.golang.org check it too; this makes the pin
// exact even with GONOSUMDB or a private proxy).
type pin struct {
	path, version, sum string
}

// Kubernetes v1.32, the version `/version` reports: every generated fact comes from this one
// release so the protobuf tables, the strict-field schema, the patch strategies and the served
// OpenAPI documents agree with each other and with kubectl 1.32.
var pins = []pin{
	{"k8s.io/api", "v0.32.13", "h1:CAtHUTtSau6UhSGcrypjKXc2365TncaxUtrIfnjUPGE="},
	{"k8s.io/apimachinery", "v0.32.13", "h1:OQ1djPkMwU8F9BQwZUW314DdYsalB8hRvBgLRqimJdo="},
	// Only its apiextensions/v1 package is read: the protobuf form of CustomResourceDefinitions.
	{"k8s.io/apiextensions-apiserver", "v0.32.13", "h1:3M8y1UNKgAp/I+T4TDEeqXiR1wj8nrqzTqgMHRKsO8A="},
	// Only its api/openapi-spec folder is read: the OpenAPI documents kube-apiserver serves.
	{"k8s.io/kubernetes", "v1.32.13", "h1:5TGYdZ6YZqdp6h/Rp1vX/4TIoybMPdgv97LCZCtPuNQ="},
}

// module is a pinned module's extracted tree and the label written into generated headers.
type module struct {
	dir, label string
}

// modDirs are `-moddir path=dir` overrides: read a module from a local tree (an upstream
// checkout at another commit) instead of the pinned download, to compare outputs.
type modDirs map[string]string

func (m modDirs) String() string { return fmt.Sprint(map[string]string(m)) }

func (m modDirs) Set(v string) error {
	path, dir, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want module=dir, got %q", v)
	}
	m[path] = dir
	return nil
}

// fetchModules downloads every pin through the Go module proxy (a no-op when cached) and
// checks its hash.
func fetchModules(overrides modDirs) (map[string]module, error) {
	out := map[string]module{}
	for _, p := range pins {
		if dir, ok := overrides[p.path]; ok {
			out[p.path] = module{dir: dir, label: dir}
			continue
		}
		cmd := exec.Command("go", "mod", "download", "-json", p.path+"@"+p.version)
		// Outside any module, so this module's go.mod is neither read nor changed.
		cmd.Dir = os.TempDir()
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		raw, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go mod download %s@%s: %v\n%s%s", p.path, p.version, err, raw, stderr.Bytes())
		}
		var info struct{ Dir, Sum, Error string }
		if err := json.Unmarshal(raw, &info); err != nil {
			return nil, fmt.Errorf("go mod download %s: %v", p.path, err)
		}
		if info.Error != "" {
			return nil, fmt.Errorf("go mod download %s@%s: %s", p.path, p.version, info.Error)
		}
		if info.Sum != p.sum {
			return nil, fmt.Errorf("%s@%s has hash %s, pinned %s", p.path, p.version, info.Sum, p.sum)
		}
		out[p.path] = module{dir: info.Dir, label: p.path + "@" + p.version}
	}
	return out, nil
}
