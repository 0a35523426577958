package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// obj is a decoded JSON object; documents are decoded with json.Number so that re-encoding
// keeps every number as written. encoding/json writes map keys sorted, as the upstream
// documents are.
type obj = map[string]any

// specDir is the folder of the k8s.io/kubernetes module holding the OpenAPI documents
// kube-apiserver serves (dumped from a running server by hack/update-openapi-spec.sh).
func specDir(mods map[string]module) string {
	return filepath.Join(mods["k8s.io/kubernetes"].dir, "api/openapi-spec")
}

func readJSON(path string) (obj, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out obj
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return out, nil
}

// compact encodes v without spaces, keys sorted, and without HTML escaping (as the upstream
// files are written).
func compact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// gvPrefix is the URL prefix of a group version: /api/v1 or /apis/{group}/{version}.
func gvPrefix(group, version string) string {
	if group == "" {
		return "/api/" + version
	}
	return "/apis/" + group + "/" + version
}

// v3Key is the /openapi/v3/{key} of a URL prefix, and v3File its upstream file name.
func v3Key(prefix string) string { return strings.TrimPrefix(prefix, "/") }

func v3File(key string) string {
	return strings.ReplaceAll(key, "/", "__") + "_openapi.json"
}

// resourcePaths are the upstream paths of one served resource: the collection, the
// all-namespaces list, the object, its served subresources and the legacy /watch/ forms.
func resourcePaths(r resource) []string {
	p := gvPrefix(r.group, r.version)
	var out []string
	if r.namespaced {
		coll := "/namespaces/{namespace}/" + r.plural
		out = append(out, p+coll, p+coll+"/{name}", p+"/"+r.plural,
			p+"/watch"+coll, p+"/watch"+coll+"/{name}", p+"/watch/"+r.plural)
		for _, sub := range r.subresources {
			out = append(out, p+coll+"/{name}/"+sub)
		}
	} else {
		coll := "/" + r.plural
		out = append(out, p+coll, p+coll+"/{name}", p+"/watch"+coll, p+"/watch"+coll+"/{name}")
		for _, sub := range r.subresources {
			out = append(out, p+coll+"/{name}/"+sub)
		}
	}
	return out
}

// verbOf maps an operation's x-kubernetes-action to the discovery verb that serves it.
var verbOf = map[string]string{
	"get": "get", "list": "list", "put": "update", "patch": "patch", "post": "create",
	"delete": "delete", "deletecollection": "deletecollection", "watch": "watch",
	"watchlist": "watch",
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch"}

// servedPaths filters the `paths` of an upstream document to what core serves: the
// group-version roots and the resources' paths, each keeping only the operations whose verb is
// served. Paths outside any group version (`/api/`, `/apis/`, `/version/`) are kept when
// listed in `extra`. Every served resource under one of `prefixes` must be in the document.
func servedPaths(paths obj, s *served, prefixes []string, extra map[string]bool) (obj, error) {
	want := map[string]bool{}
	for k := range extra {
		want[k] = true
	}
	for _, gv := range s.groupVersions() {
		want[gvPrefix(gv[0], gv[1])+"/"] = true
	}
	for _, r := range s.all() {
		coll := resourcePaths(r)[0]
		for _, p := range prefixes {
			if _, ok := paths[coll]; !ok && p == gvPrefix(r.group, r.version) {
				return nil, fmt.Errorf("upstream has no path %s for %s", coll, r.plural)
			}
		}
		for _, p := range resourcePaths(r) {
			want[p] = true
		}
	}
	out := obj{}
	for path, item := range paths {
		if !want[path] {
			continue
		}
		item := item.(obj)
		kept := obj{}
		for k, op := range item {
			if k == "parameters" {
				kept[k] = op
				continue
			}
			action, _ := op.(obj)["x-kubernetes-action"].(string)
			// Discovery documents (`/api/v1/`, `/apis/`, `/version/`) have no action.
			discovery := action == "" && strings.HasSuffix(path, "/")
			if verb, ok := verbOf[action]; ok && s.hasVerb(verb) || discovery {
				kept[k] = op
			}
		}
		if len(kept) > len(onlyParams(kept)) {
			out[path] = kept
		}
	}
	return out, nil
}

func onlyParams(item obj) obj {
	if p, ok := item["parameters"]; ok {
		return obj{"parameters": p}
	}
	return obj{}
}

// refs collects the names of every `$ref` (`#/components/schemas/X`, `#/definitions/X`,
// `#/parameters/X`) under v.
func refs(v any, out map[string]bool) {
	switch t := v.(type) {
	case obj:
		for k, child := range t {
			if s, ok := child.(string); ok && k == "$ref" {
				out[s] = true
			} else {
				refs(child, out)
			}
		}
	case []any:
		for _, child := range t {
			refs(child, out)
		}
	}
}

// closure is every schema reachable from `roots` through `$ref`s into `defs`, whose refs
// start with `prefix`.
func closure(roots map[string]bool, defs obj, prefix string) (map[string]bool, error) {
	seen := map[string]bool{}
	todo := sortedKeys(roots)
	for len(todo) > 0 {
		ref := todo[0]
		todo = todo[1:]
		name, ok := strings.CutPrefix(ref, prefix)
		if !ok || seen[name] {
			continue
		}
		def, ok := defs[name]
		if !ok {
			return nil, fmt.Errorf("dangling $ref %s", ref)
		}
		seen[name] = true
		next := map[string]bool{}
		refs(def, next)
		todo = append(todo, sortedKeys(next)...)
	}
	return seen, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// v3Docs reads the upstream v3 document of every served group version, filtered to what is
// served, keyed by its /openapi/v3 key (`api/v1`, `apis/apps/v1`).
func v3Docs(mods map[string]module, s *served) (map[string]obj, error) {
	out := map[string]obj{}
	for _, gv := range s.groupVersions() {
		prefix := gvPrefix(gv[0], gv[1])
		key := v3Key(prefix)
		doc, err := readJSON(filepath.Join(specDir(mods), "v3", v3File(key)))
		if err != nil {
			return nil, err
		}
		paths, err := servedPaths(doc["paths"].(obj), s, []string{prefix}, nil)
		if err != nil {
			return nil, err
		}
		doc["paths"] = paths
		out[key] = doc
	}
	return out, nil
}

// requestBodies are the schemas the served operations accept as bodies (objects to create or
// replace, subresource bodies such as Binding and Scale, DeleteOptions), except PATCH's.
func requestBodies(docs map[string]obj) []string {
	seen := map[string]bool{}
	for _, doc := range docs {
		for _, item := range doc["paths"].(obj) {
			for method, op := range item.(obj) {
				if method == "parameters" || method == "patch" {
					continue
				}
				if body, ok := op.(obj)["requestBody"]; ok {
					refs(body, seen)
				}
			}
		}
	}
	var out []string
	for _, ref := range sortedKeys(seen) {
		out = append(out, strings.TrimPrefix(ref, "#/components/schemas/"))
	}
	return out
}
