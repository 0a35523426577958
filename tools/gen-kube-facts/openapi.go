package main

// core/src/api/openapi/: the OpenAPI documents core serves at /openapi/v3 and /openapi/v2.
//
// They are kube-apiserver 1.32's own documents (k8s.io/kubernetes api/openapi-spec, dumped from
// a running server), cut down to what core serves: the paths of the served resources with only
// the operations of served verbs, the discovery paths (/api/, /apis/, /apis/{group}/,
// /version/), and the schemas those reach through $ref. Everything kept is kept verbatim
// (full nested schemas, x-kubernetes-* extensions, the fieldValidation parameter kubectl looks
// for); only info.version is set to the served version, as kube-apiserver does. The bytes are
// compact JSON with sorted keys, embedded by core with include_bytes!; the ETag (upper-case hex
// SHA-512 of the JSON, as kube-openapi computes it) is precomputed here.

import (
	"bytes"
	"crypto/sha512"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
)

const openapiDir = "core/src/api/openapi"

func etag(data []byte) string {
	return fmt.Sprintf("%X", sha512.Sum512(data))
}

// infoVersion is what kube-apiserver puts in info.version: its version up to the first '-'.
func infoVersion(s *served) string {
	v, _, _ := strings.Cut(s.gitVersion, "-")
	return v
}

// pruneV3 and pruneV2 keep only the definitions reachable from the document's paths (and, in
// v2, from the shared parameters they use).
func pruneV3(doc obj) error {
	roots := map[string]bool{}
	refs(doc["paths"], roots)
	comps := doc["components"].(obj)
	schemas := comps["schemas"].(obj)
	keep, err := closure(roots, schemas, "#/components/schemas/")
	if err != nil {
		return err
	}
	for name := range schemas {
		if !keep[name] {
			delete(schemas, name)
		}
	}
	return nil
}

func pruneV2(doc obj) error {
	roots := map[string]bool{}
	refs(doc["paths"], roots)
	params := doc["parameters"].(obj)
	for name := range params {
		if !roots["#/parameters/"+name] {
			delete(params, name)
		}
	}
	refs(params, roots)
	defs := doc["definitions"].(obj)
	keep, err := closure(roots, defs, "#/definitions/")
	if err != nil {
		return err
	}
	for name := range defs {
		if !keep[name] {
			delete(defs, name)
		}
	}
	return nil
}

type servedDoc struct {
	key  string // /openapi/v3/{key}; "" for v2
	json []byte
}

// v3Documents are the group-version documents plus the discovery ones, sorted by key.
func v3Documents(mods map[string]module, s *served, gvDocs map[string]obj) ([]servedDoc, error) {
	docs := map[string]obj{}
	for key, doc := range gvDocs {
		docs[key] = doc
	}
	extra := []string{"api", "apis", "version"}
	for _, g := range s.groups {
		extra = append(extra, "apis/"+g[0])
	}
	for _, key := range extra {
		doc, err := readJSON(filepath.Join(specDir(mods), "v3", v3File(key)))
		if err != nil {
			return nil, err
		}
		path := "/" + key + "/"
		paths, err := servedPaths(doc["paths"].(obj), s, nil, map[string]bool{path: true})
		if err != nil {
			return nil, err
		}
		if _, ok := paths[path]; !ok || len(paths) != 1 {
			return nil, fmt.Errorf("v3 %s: expected the one path %s", key, path)
		}
		doc["paths"] = paths
		docs[key] = doc
	}
	var out []servedDoc
	for _, key := range sortedKeys(docs) {
		doc := docs[key]
		if err := pruneV3(doc); err != nil {
			return nil, fmt.Errorf("v3 %s: %v", key, err)
		}
		doc["info"].(obj)["version"] = infoVersion(s)
		data, err := compact(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, servedDoc{key: key, json: data})
	}
	return out, nil
}

// v3Index is kube-openapi's OpenAPIV3Discovery: each document's URL with its hash.
func v3Index(docs []servedDoc) ([]byte, error) {
	paths := obj{}
	for _, d := range docs {
		paths[d.key] = obj{"serverRelativeURL": "/openapi/v3/" + d.key + "?hash=" + etag(d.json)}
	}
	return compact(obj{"paths": paths})
}

func v2Document(mods map[string]module, s *served) ([]byte, []byte, error) {
	doc, err := readJSON(filepath.Join(specDir(mods), "swagger.json"))
	if err != nil {
		return nil, nil, err
	}
	extra := map[string]bool{"/api/": true, "/apis/": true, "/version/": true}
	var prefixes []string
	for _, g := range s.groups {
		extra["/apis/"+g[0]+"/"] = true
	}
	for _, gv := range s.groupVersions() {
		prefixes = append(prefixes, gvPrefix(gv[0], gv[1]))
	}
	paths, err := servedPaths(doc["paths"].(obj), s, prefixes, extra)
	if err != nil {
		return nil, nil, err
	}
	doc["paths"] = paths
	if err := pruneV2(doc); err != nil {
		return nil, nil, fmt.Errorf("v2: %v", err)
	}
	doc["info"].(obj)["version"] = infoVersion(s)
	data, err := compact(doc)
	if err != nil {
		return nil, nil, err
	}
	// What kube-openapi's handler serves for the protobuf media type: the JSON parsed into
	// gnostic's OpenAPI v2 message. Deterministic, so every run writes the same bytes.
	parsed, err := openapi_v2.ParseDocument(data)
	if err != nil {
		return nil, nil, fmt.Errorf("v2 protobuf: %v", err)
	}
	pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(parsed)
	if err != nil {
		return nil, nil, fmt.Errorf("v2 protobuf: %v", err)
	}
	return data, pb, nil
}

func v3FileName(key string) string {
	return "v3/" + strings.ReplaceAll(key, "/", "__") + ".json"
}

// openapiFiles writes the documents and documents.rs, which embeds them with their ETags.
func openapiFiles(mods map[string]module, s *served, gvDocs map[string]obj, files map[string][]byte) error {
	v3, err := v3Documents(mods, s, gvDocs)
	if err != nil {
		return err
	}
	index, err := v3Index(v3)
	if err != nil {
		return err
	}
	v2, v2pb, err := v2Document(mods, s)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Generated by tools/gen-kube-facts from %s (api/openapi-spec): kube-apiserver's\n", mods["k8s.io/kubernetes"].label)
	b.WriteString("// documents cut down to the served paths, verbs and the schemas they reach.\n")
	b.WriteString("// Do not edit by hand: regenerate.\n\n")
	b.WriteString("use super::Document;\n\n")
	doc := func(file string, data []byte) string {
		files[filepath.Join(openapiDir, file)] = data
		return fmt.Sprintf("Document { json: include_bytes!(%q), etag: %q }", file, etag(data))
	}
	fmt.Fprintf(&b, "/// `GET /openapi/v3`.\npub(super) static V3_INDEX: Document = %s;\n\n", doc("v3/index.json", index))
	b.WriteString("/// `GET /openapi/v3/{key}`, sorted by key.\npub(super) static V3: &[(&str, Document)] = &[\n")
	for _, d := range v3 {
		fmt.Fprintf(&b, "    (%q, %s),\n", d.key, doc(v3FileName(d.key), d.json))
	}
	b.WriteString("];\n\n")
	fmt.Fprintf(&b, "/// `GET /openapi/v2` as JSON.\npub(super) static V2: Document = %s;\n\n", doc("v2.json", v2))
	b.WriteString("/// `GET /openapi/v2` as protobuf (gnostic's `openapi.v2.Document`); its ETag is the JSON's.\n")
	b.WriteString("pub(super) static V2_PROTOBUF: &[u8] = include_bytes!(\"v2.pb\");\n")
	files[filepath.Join(openapiDir, "v2.pb")] = v2pb
	files[filepath.Join(openapiDir, "documents.rs")] = b.Bytes()
	total := len(index) + len(v2) + len(v2pb)
	for _, d := range v3 {
		total += len(d.json)
	}
	fmt.Fprintf(os.Stderr, "openapi: %d v3 documents, v2 %d bytes (protobuf %d), %d bytes in all\n", len(v3), len(v2), len(v2pb), total)
	return nil
}
