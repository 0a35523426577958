// Command gen-kube-facts writes the files in which nautilus-core restates upstream Kubernetes
// facts, from pinned upstream Go modules (see inputs.go) and core's own resource table:
//
//   - core/src/protobuf/tables.rs: protobuf field tables of the bodies the served operations
//     accept (k8s.io/api generated.proto + Go struct tags);
//   - core/src/schema/types.rs: the object types of the served kinds (fields, list types and
//     keys, map types, patch strategies and merge keys) from the OpenAPI v3 definitions, read
//     by the strict-field check and by strategic merge patch and server-side apply;
//   - core/src/api/openapi/: the /openapi/v3 and /openapi/v2 documents (kube-apiserver 1.32's,
//     cut down to the served paths and verbs) and documents.rs, which embeds them;
//   - core/src/controllers/apf_bootstrap.json: the API priority and fairness configuration
//     kube-apiserver creates at start (imported from k8s.io/apiserver's bootstrap package,
//     pinned in go.mod at the same release).
//
// Every run writes byte-identical files:
//
//	go -C tools/gen-kube-facts run .          # regenerate in place
//	go -C tools/gen-kube-facts run . -check   # fail on any difference (tools/check-generated.sh)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	root := flag.String("root", "", "repository root (default: the nearest parent holding core/src/resource.rs)")
	check := flag.Bool("check", false, "compare with the files on disk instead of writing; exit 1 on any difference")
	overrides := modDirs{}
	flag.Var(overrides, "moddir", "`module=dir`: read a module from a local tree instead of the pinned download (repeatable)")
	flag.Parse()
	if *root == "" {
		found, err := findRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen-kube-facts:", err)
			os.Exit(2)
		}
		*root = found
	}
	files, err := generate(*root, overrides)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-kube-facts:", err)
		os.Exit(2)
	}
	if *check {
		if stale := compare(*root, files); len(stale) > 0 {
			for _, s := range stale {
				fmt.Fprintln(os.Stderr, "gen-kube-facts: out of date:", s)
			}
			fmt.Fprintln(os.Stderr, "gen-kube-facts: run `go -C tools/gen-kube-facts run .` and commit the result")
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "gen-kube-facts: %d generated files up to date\n", len(files))
		return
	}
	for _, path := range leftovers(*root, files) {
		if err := os.Remove(filepath.Join(*root, path)); err != nil {
			fmt.Fprintln(os.Stderr, "gen-kube-facts:", err)
			os.Exit(2)
		}
	}
	for _, path := range sortedKeys(files) {
		full := filepath.Join(*root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "gen-kube-facts:", err)
			os.Exit(2)
		}
		if err := os.WriteFile(full, files[path], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen-kube-facts:", err)
			os.Exit(2)
		}
	}
}

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "core/src/resource.rs")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no repository root (core/src/resource.rs) above the working directory")
		}
		dir = parent
	}
}

// generate builds every generated file in memory, keyed by its path from the root.
func generate(root string, overrides modDirs) (map[string][]byte, error) {
	s, err := readServed(root)
	if err != nil {
		return nil, err
	}
	mods, err := fetchModules(overrides)
	if err != nil {
		return nil, err
	}
	docs, err := v3Docs(mods, s)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	tables, err := protoTables(mods, append(requestBodies(docs), protoExtraRoots...))
	if err != nil {
		return nil, err
	}
	files["core/src/protobuf/tables.rs"] = tables
	types, err := schemaTypes(mods, s, docs)
	if err != nil {
		return nil, err
	}
	files["core/src/schema/types.rs"] = types
	if err := openapiFiles(mods, s, docs, files); err != nil {
		return nil, err
	}
	apf, err := apfBootstrap()
	if err != nil {
		return nil, err
	}
	files["core/src/controllers/apf_bootstrap.json"] = apf
	return files, nil
}

// ownedDirs hold nothing but generated files: a file there that is no longer generated (a
// group version no longer served) is stale too.
var ownedDirs = []string{"core/src/api/openapi/v3"}

// leftovers are the files in ownedDirs that this run does not generate.
func leftovers(root string, files map[string][]byte) []string {
	var out []string
	for _, dir := range ownedDirs {
		entries, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range entries {
			if path := filepath.Join(dir, e.Name()); files[path] == nil {
				out = append(out, path)
			}
		}
	}
	return out
}

// compare lists the generated files that differ from the ones on disk.
func compare(root string, files map[string][]byte) []string {
	stale := leftovers(root, files)
	for _, path := range sortedKeys(files) {
		have, err := os.ReadFile(filepath.Join(root, path))
		if err != nil || !bytes.Equal(have, files[path]) {
			stale = append(stale, path)
		}
	}
	sort.Strings(stale)
	return stale
}
