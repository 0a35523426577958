package main

// core/src/protobuf/tables.rs: the protobuf message descriptors `protobuf.rs` decodes with.
//
// Facts come from two upstream files per package: `generated.proto` (field numbers, proto
// types) and the Go types (JSON names, `omitempty`/`omitzero`, `,inline`, pointer-ness),
// joined on (message, field number). The roots are the bodies the served operations accept.
// A proto type with no matching `Kind` in protobuf.rs (e.g. `double`, `Duration`) makes the
// generated file fail to compile, so new upstream shapes cannot slip in unhandled.

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Roots beyond the served request bodies: what core writes as protobuf answers (metadata-only
// reads and their watch events, an error event's Status) and the access reviews kubectl posts
// as protobuf, which are no stored resource of the OpenAPI documents.
var protoExtraRoots = []string{
	"io.k8s.apimachinery.pkg.apis.meta.v1.PartialObjectMetadataList",
	"io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
	"io.k8s.apimachinery.pkg.apis.meta.v1.Status",
	"io.k8s.api.authorization.v1.SelfSubjectAccessReview",
	"io.k8s.api.authorization.v1.SelfSubjectRulesReview",
	"io.k8s.api.authentication.v1.SelfSubjectReview",
	"io.k8s.api.authentication.v1.TokenReview",
}

// Messages with a JSON form of their own (custom MarshalJSON upstream).
var specialProto = map[string]string{
	"k8s.io.apimachinery.pkg.apis.meta.v1.Time":       "Time",
	"k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime":  "MicroTime",
	"k8s.io.apimachinery.pkg.apis.meta.v1.Duration":   "Duration",
	"k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1":   "RawJson",
	"k8s.io.apimachinery.pkg.runtime.RawExtension":    "RawJson",
	"k8s.io.apimachinery.pkg.api.resource.Quantity":   "Quantity",
	"k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
	// `type ExtraValue []string`: a message of one repeated string, shown as the bare list.
	"k8s.io.api.authentication.v1.ExtraValue": "StrList",
	"k8s.io.api.authorization.v1.ExtraValue":  "StrList",
	"k8s.io.api.certificates.v1.ExtraValue":   "StrList",
	// CRD schemas: `JSON{raw=1}` is embedded JSON; the `JSONSchemaPropsOr*` unions (no JSON
	// tags upstream, custom MarshalJSON) show as their schema when set, else as the other arm.
	apiextensionsProto + ".JSON":                         "RawJson",
	apiextensionsProto + ".JSONSchemaPropsOrArray":       "SchemaOrArray(&" + jsonSchemaProps + ")",
	apiextensionsProto + ".JSONSchemaPropsOrBool":        "SchemaOrBool(&" + jsonSchemaProps + ")",
	apiextensionsProto + ".JSONSchemaPropsOrStringArray": "SchemaOrStrings(&" + jsonSchemaProps + ")",
}

// The proto package of CustomResourceDefinitions and the table of their schema message.
const (
	apiextensionsProto = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1"
	jsonSchemaProps    = "APIEXTENSIONS_JSON_SCHEMA_PROPS"
)

var protoScalars = map[string]string{"string": "Str", "bytes": "Bytes", "bool": "Bool",
	"int32": "I32", "int64": "I64", "double": "F64", "float": "F32"}

// Identifier prefixes of the packages' messages (core/v1's have none).
var protoPrefix = map[string]string{
	"k8s.io.api.apps.v1": "APPS_", "k8s.io.api.coordination.v1": "COORD_",
	"k8s.io.api.autoscaling.v1": "AUTOSCALING_", "k8s.io.apimachinery.pkg.apis.meta.v1": "META_",
	"k8s.io.api.authentication.v1": "AUTHN_", "k8s.io.api.authorization.v1": "AUTHZ_",
	"k8s.io.api.rbac.v1": "RBAC_", apiextensionsProto: "APIEXTENSIONS_",
	"k8s.io.api.storage.v1": "STORAGE_", "k8s.io.api.discovery.v1": "DISCOVERY_",
	"k8s.io.api.events.v1": "EVENTS_", "k8s.io.api.autoscaling.v2": "AUTOSCALING_V2_",
}

type protoField struct {
	num     int
	rep, mp bool
	typ     string
}

type goField struct {
	json                                 string
	omitempty, omitzero, inline, pointer bool
}

var (
	protoMessage = regexp.MustCompile(`^message (\w+) \{`)
	protoFieldRe = regexp.MustCompile(`^\s*(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;`)
	protoMapRe   = regexp.MustCompile(`^\s*map<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;`)
	protoOther   = regexp.MustCompile(`^\s*(optional|repeated|map|oneof|message|enum)\b`)
)

func resolveProto(pkg, typ string) string {
	if _, ok := protoScalars[typ]; ok {
		return typ
	}
	if strings.Contains(typ, ".") {
		return strings.TrimLeft(typ, ".")
	}
	return pkg + "." + typ
}

func parseProto(pkg, dir string) (map[string][]protoField, error) {
	f, err := os.Open(filepath.Join(dir, "generated.proto"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	msgs := map[string][]protoField{}
	cur := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := protoMessage.FindStringSubmatch(line); m != nil {
			cur = pkg + "." + m[1]
			msgs[cur] = []protoField{}
			continue
		}
		if strings.HasPrefix(line, "}") {
			cur = ""
			continue
		}
		if cur == "" {
			continue
		}
		if m := protoFieldRe.FindStringSubmatch(line); m != nil {
			num, _ := strconv.Atoi(m[4])
			msgs[cur] = append(msgs[cur], protoField{num: num, rep: m[1] == "repeated", typ: resolveProto(pkg, m[2])})
			continue
		}
		if m := protoMapRe.FindStringSubmatch(line); m != nil {
			if m[1] != "string" {
				return nil, fmt.Errorf("%s: map key %s in %q", pkg, m[1], line)
			}
			num, _ := strconv.Atoi(m[4])
			msgs[cur] = append(msgs[cur], protoField{num: num, mp: true, typ: resolveProto(pkg, m[2])})
			continue
		}
		if protoOther.MatchString(line) {
			return nil, fmt.Errorf("%s: unparsed proto line %q", pkg, line)
		}
	}
	return msgs, sc.Err()
}

// parseGoTags reads the struct fields of a package that carry protobuf tags:
// (struct, field number) -> JSON facts.
func parseGoTags(dir string) (map[string]map[int]goField, error) {
	fset := token.NewFileSet()
	out := map[string]map[int]goField{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.TYPE {
				continue
			}
			for _, spec := range gen.Specs {
				ts := spec.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					if fld.Tag == nil {
						continue
					}
					raw, err := strconv.Unquote(fld.Tag.Value)
					if err != nil {
						return nil, err
					}
					tag := reflect.StructTag(raw)
					pb, okPB := tag.Lookup("protobuf")
					js, okJS := tag.Lookup("json")
					pbParts := strings.Split(pb, ",")
					if !okPB || !okJS || len(pbParts) < 3 {
						continue
					}
					num, err := strconv.Atoi(pbParts[1])
					if err != nil {
						continue
					}
					parts := strings.Split(js, ",")
					has := func(opt string) bool {
						for _, p := range parts[1:] {
							if p == opt {
								return true
							}
						}
						return false
					}
					_, pointer := fld.Type.(*ast.StarExpr)
					if out[ts.Name.Name] == nil {
						out[ts.Name.Name] = map[int]goField{}
					}
					out[ts.Name.Name][num] = goField{
						json: parts[0], omitempty: has("omitempty"), omitzero: has("omitzero"),
						// An embedded struct without a JSON name is inlined by encoding/json.
						inline:  has("inline") || (len(fld.Names) == 0 && parts[0] == ""),
						pointer: pointer,
					}
				}
			}
		}
	}
	return out, nil
}

// protoPackageDir maps a proto package to its folder in the pinned modules.
func protoPackageDir(mods map[string]module, pkg string) (string, error) {
	if rest, ok := strings.CutPrefix(pkg, "k8s.io.api."); ok {
		return filepath.Join(mods["k8s.io/api"].dir, strings.ReplaceAll(rest, ".", "/")), nil
	}
	if rest, ok := strings.CutPrefix(pkg, "k8s.io.apimachinery."); ok {
		return filepath.Join(mods["k8s.io/apimachinery"].dir, strings.ReplaceAll(rest, ".", "/")), nil
	}
	if rest, ok := strings.CutPrefix(pkg, "k8s.io.apiextensions_apiserver."); ok {
		return filepath.Join(mods["k8s.io/apiextensions-apiserver"].dir, strings.ReplaceAll(rest, ".", "/")), nil
	}
	return "", fmt.Errorf("no module for proto package %s", pkg)
}

func protoIdent(full string) string {
	i := strings.LastIndex(full, ".")
	pkg, short := full[:i], full[i+1:]
	r := []rune(short)
	var b strings.Builder
	for i, c := range r {
		if i > 0 {
			prev := r[i-1]
			lowerToUpper := (unicode.IsLower(prev) || unicode.IsDigit(prev)) && unicode.IsUpper(c)
			acronymEnd := unicode.IsUpper(prev) && unicode.IsUpper(c) && i+1 < len(r) && unicode.IsLower(r[i+1])
			if lowerToUpper || acronymEnd {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToUpper(c))
	}
	return protoPrefix[pkg] + b.String()
}

func protoKind(typ string) string {
	if k, ok := protoScalars[typ]; ok {
		return k
	}
	if k, ok := specialProto[typ]; ok {
		return k
	}
	return "Message(&" + protoIdent(typ) + ")"
}

// protoTables writes tables.rs for the closure of `roots` (OpenAPI definition names).
func protoTables(mods map[string]module, roots []string) ([]byte, error) {
	protos := map[string][]protoField{}
	gos := map[string]map[int]goField{}
	loaded := map[string]bool{}
	load := func(pkg string) error {
		if loaded[pkg] {
			return nil
		}
		loaded[pkg] = true
		dir, err := protoPackageDir(mods, pkg)
		if err != nil {
			return err
		}
		msgs, err := parseProto(pkg, dir)
		if err != nil {
			return err
		}
		for k, v := range msgs {
			protos[k] = v
		}
		tags, err := parseGoTags(dir)
		if err != nil {
			return err
		}
		for st, byNum := range tags {
			gos[pkg+"."+st] = byNum
		}
		return nil
	}
	var todo []string
	for _, r := range roots {
		name, ok := strings.CutPrefix(r, "io.k8s.")
		if !ok {
			return nil, fmt.Errorf("root %s is not a Kubernetes type", r)
		}
		// OpenAPI names the module (`apiextensions-apiserver`), proto its Go package path.
		name = strings.Replace(name, "apiextensions-apiserver.", "apiextensions_apiserver.", 1)
		todo = append(todo, "k8s.io."+name)
	}
	var order []string
	seen := map[string]bool{}
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		_, special := specialProto[name]
		_, scalar := protoScalars[name]
		if seen[name] || special || scalar {
			continue
		}
		seen[name] = true
		if err := load(name[:strings.LastIndex(name, ".")]); err != nil {
			return nil, err
		}
		fields, ok := protos[name]
		if !ok {
			return nil, fmt.Errorf("no proto message %s", name)
		}
		order = append(order, name)
		for _, f := range fields {
			todo = append(todo, f.typ)
		}
	}
	sort.Slice(order, func(i, j int) bool { return protoIdent(order[i]) < protoIdent(order[j]) })

	var b bytes.Buffer
	used := map[string]bool{"Msg": true, "f": true}
	total := 0
	for _, name := range order {
		fields := append([]protoField(nil), protos[name]...)
		sort.SliceStable(fields, func(i, j int) bool { return fields[i].num < fields[j].num })
		total += len(fields)
		fmt.Fprintf(&b, "pub(super) static %s: Msg = Msg {\n", protoIdent(name))
		fmt.Fprintf(&b, "    name: \"%s\",\n", name[strings.LastIndex(name, ".")+1:])
		b.WriteString("    fields: &[\n")
		for _, f := range fields {
			g, ok := gos[name][f.num]
			if !ok {
				return nil, fmt.Errorf("no Go tag for %s field %d", name, f.num)
			}
			var flags []string
			for _, fl := range []struct {
				on   bool
				name string
			}{{f.rep, "REP"}, {f.mp, "MAP"}, {g.pointer, "PTR"}, {g.omitempty, "OMITEMPTY"},
				{g.omitzero, "OMITZERO"}, {g.inline, "INLINE"}} {
				if fl.on {
					flags = append(flags, fl.name)
					used[fl.name] = true
				}
			}
			jname := g.json
			if g.inline {
				_, special := specialProto[f.typ]
				_, scalar := protoScalars[f.typ]
				if special || scalar {
					return nil, fmt.Errorf("%s field %d: inlined %s", name, f.num, f.typ)
				}
				jname = ""
			}
			fl := "0"
			if len(flags) > 0 {
				fl = strings.Join(flags, " | ")
			}
			fmt.Fprintf(&b, "        f(%d, \"%s\", %s, %s),\n", f.num, jname, protoKind(f.typ), fl)
		}
		b.WriteString("    ],\n};\n")
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "// Generated by tools/gen-kube-facts from %s,\n", mods["k8s.io/api"].label)
	fmt.Fprintf(&head, "// %s\n", mods["k8s.io/apimachinery"].label)
	fmt.Fprintf(&head, "// and %s (generated.proto + types.go).\n", mods["k8s.io/apiextensions-apiserver"].label)
	head.WriteString("// Do not edit by hand: regenerate.\n\n")
	head.WriteString("use super::Kind::*;\n")
	fmt.Fprintf(&head, "use super::{%s};\n\n", strings.Join(sortedKeys(used), ", "))
	fmt.Fprintf(os.Stderr, "tables.rs: %d messages, %d fields\n", len(order), total)
	return append(head.Bytes(), b.Bytes()...), nil
}
