package main

// core/src/schema/types.rs: the object types of the served kinds, from the 1.32 OpenAPI v3
// definitions. One table answers both the strict-field check (which fields exist) and the
// patch code (how lists and maps merge: x-kubernetes-list-type/-list-map-keys/-map-type for
// server-side apply, x-kubernetes-patch-strategy/-patch-merge-key for strategic merge patch).

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
)

// schemaDefs is the union of the served documents' component schemas (identical where they
// overlap).
func schemaDefs(docs map[string]obj) (obj, error) {
	defs := obj{}
	for _, key := range sortedKeys(docs) {
		for name, def := range docs[key]["components"].(obj)["schemas"].(obj) {
			if prev, ok := defs[name]; ok {
				a, _ := compact(prev)
				b, _ := compact(def)
				if !bytes.Equal(a, b) {
					return nil, fmt.Errorf("schema %s differs between group versions", name)
				}
			}
			defs[name] = def
		}
	}
	return defs, nil
}

// kindDef finds the definition tagged with exactly this group-version-kind.
func kindDef(defs obj, r resource) (string, error) {
	var found []string
	for _, name := range sortedKeys(defs) {
		gvks, _ := defs[name].(obj)["x-kubernetes-group-version-kind"].([]any)
		if len(gvks) != 1 {
			continue
		}
		g := gvks[0].(obj)
		if g["group"] == r.group && g["version"] == r.version && g["kind"] == r.kind {
			found = append(found, name)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("%d definitions for %s %s/%s", len(found), r.kind, r.group, r.version)
	}
	return found[0], nil
}

// rustIdent names a definition's static: the kind in SCREAMING_SNAKE, prefixed with its
// group (none for core/v1), and its version when that is not v1, so that kinds of different
// groups or versions cannot collide.
func rustIdent(def string) (string, error) {
	parts := strings.Split(def, ".")
	short := parts[len(parts)-1]
	var prefix string
	switch {
	case strings.HasPrefix(def, "io.k8s.api.core.v1."):
	case strings.HasPrefix(def, "io.k8s.api.") && len(parts) == 6 && parts[4] != "v1":
		prefix = strings.ToUpper(parts[3]) + "_" + strings.ToUpper(parts[4]) + "_"
	case strings.HasPrefix(def, "io.k8s.api.") && len(parts) == 6:
		prefix = strings.ToUpper(parts[3]) + "_"
	case strings.HasPrefix(def, "io.k8s.apimachinery.pkg.apis.meta.v1."):
		prefix = "META_"
	case strings.HasPrefix(def, "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."):
		prefix = "APIEXTENSIONS_"
	default:
		return "", fmt.Errorf("no identifier rule for %s", def)
	}
	return prefix + protoIdent("."+short), nil
}

// refName is the definition a property points at (`$ref`, or a lone `allOf` entry).
func refName(ps obj) string {
	ref, _ := ps["$ref"].(string)
	if all, ok := ps["allOf"].([]any); ok && len(all) == 1 {
		ref, _ = all[0].(obj)["$ref"].(string)
	}
	return strings.TrimPrefix(ref, "#/components/schemas/")
}

type schemaGen struct {
	defs    obj
	idents  map[string]string // definition -> static name, for every emitted type
	order   []string
	keyDefs map[string][]string // list-map key -> its string defaults across lists ("" = none)
}

// hasProperties tells the object types (emitted) from the definitions that are scalars or
// free-form in JSON (Time, Quantity, IntOrString, FieldsV1): those are `Any`.
func (g *schemaGen) hasProperties(def string) bool {
	_, ok := g.defs[def].(obj)["properties"]
	return ok
}

func (g *schemaGen) visit(def string) error {
	if _, ok := g.idents[def]; ok || !g.hasProperties(def) {
		return nil
	}
	id, err := rustIdent(def)
	if err != nil {
		return err
	}
	for other, taken := range g.idents {
		if taken == id {
			return fmt.Errorf("%s and %s both map to %s", other, def, id)
		}
	}
	g.idents[def] = id
	g.order = append(g.order, def)
	props := g.defs[def].(obj)["properties"].(obj)
	for _, name := range sortedKeys(props) {
		ps := props[name].(obj)
		if ref := refName(ps); ref != "" {
			if err := g.visit(ref); err != nil {
				return err
			}
		}
		for _, inner := range []string{"items", "additionalProperties"} {
			if child, ok := ps[inner].(obj); ok {
				if ref := refName(child); ref != "" {
					if err := g.visit(ref); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func atomicMapType(s obj) (set, atomic bool, err error) {
	switch v := s["x-kubernetes-map-type"]; v {
	case nil:
		return false, false, nil
	case "atomic":
		return true, true, nil
	case "granular":
		return true, false, nil
	default:
		return false, false, fmt.Errorf("unknown map type %v", v)
	}
}

// scalar is the Rust `Scalar` of a JSON scalar schema (the Go type kube decodes it into), or
// "" when the schema is not one of those (free-form: Any).
func scalar(s obj) string {
	switch s["type"] {
	case "string":
		if s["format"] == "byte" {
			return "Scalar::Bytes"
		}
		return "Scalar::Str"
	case "boolean":
		return "Scalar::Bool"
	case "integer":
		if s["format"] == "int32" {
			return "Scalar::Int32"
		}
		return "Scalar::Int64"
	case "number":
		return "Scalar::Float"
	}
	return ""
}

// item is the Rust `Item` for a list item or map value schema.
func (g *schemaGen) item(s obj, where string) (string, error) {
	if ref := refName(s); ref != "" {
		if g.hasProperties(ref) {
			return "Item::Of(&" + g.idents[ref] + ")", nil
		}
		return "Item::Any", nil
	}
	switch s["type"] {
	case "array":
		// A list of scalars as a map value (a user's `extra`): free-form to core.
		if items, ok := s["items"].(obj); ok && refName(items) == "" && items["type"] != "array" && items["type"] != "object" {
			return "Item::Any", nil
		}
		return "", fmt.Errorf("%s: nested %v is not supported by core's schema", where, s["type"])
	case "object":
		return "", fmt.Errorf("%s: nested %v is not supported by core's schema", where, s["type"])
	}
	if k := scalar(s); k != "" {
		return "Item::Scalar(" + k + ")", nil
	}
	return "Item::Any", nil
}

// listKinds are the server-side apply kind (structured-merge-diff's reading of the schema, as
// kube-openapi's schemaconv does it) and the strategic merge kind of one array property.
func listKinds(ps obj, scalarItems bool, where string) (ssa, smp string, err error) {
	strategy, _ := ps["x-kubernetes-patch-strategy"].(string)
	mergeKey, _ := ps["x-kubernetes-patch-merge-key"].(string)
	switch strategy {
	case "merge", "merge,retainKeys":
		switch {
		case mergeKey != "":
			smp = fmt.Sprintf("MergeKind::ByKey(%q)", mergeKey)
		case scalarItems:
			smp = "MergeKind::Set"
		default:
			return "", "", fmt.Errorf("%s: merge strategy without a merge key on a list of objects", where)
		}
	case "", "retainKeys":
		smp = "MergeKind::Replace"
	default:
		return "", "", fmt.Errorf("%s: unknown patch strategy %q", where, strategy)
	}
	keysOf := func(keys []string) string {
		quoted := make([]string, len(keys))
		for i, k := range keys {
			quoted[i] = fmt.Sprintf("%q", k)
		}
		return "ListKind::Map { keys: &[" + strings.Join(quoted, ", ") + "] }"
	}
	switch lt := ps["x-kubernetes-list-type"]; lt {
	case "atomic":
		ssa = "ListKind::Atomic"
	case "set":
		ssa = "ListKind::Set"
	case "map":
		raw, _ := ps["x-kubernetes-list-map-keys"].([]any)
		if len(raw) == 0 {
			return "", "", fmt.Errorf("%s: list type map without keys", where)
		}
		keys := make([]string, len(raw))
		for i, k := range raw {
			keys[i] = k.(string)
		}
		ssa = keysOf(keys)
	case nil:
		// No list type: schemaconv falls back to the patch strategy.
		switch {
		case strings.HasPrefix(strategy, "merge") && mergeKey != "":
			ssa = keysOf([]string{mergeKey})
		case strings.HasPrefix(strategy, "merge"):
			ssa = "ListKind::Set"
		default:
			ssa = "ListKind::Atomic"
		}
	default:
		return "", "", fmt.Errorf("%s: unknown list type %v", where, lt)
	}
	return ssa, smp, nil
}

// field is the Rust `Field` of one property.
func (g *schemaGen) field(def, name string, ps obj) (string, error) {
	where := def + "." + name
	fn := "f"
	propSet, propAtomic, err := atomicMapType(ps)
	if err != nil {
		return "", fmt.Errorf("%s: %v", where, err)
	}
	var shape string
	if ref := refName(ps); ref != "" {
		if !g.hasProperties(ref) {
			shape = "Any"
		} else {
			shape = "Object(&" + g.idents[ref] + ")"
			_, defAtomic, err := atomicMapType(g.defs[ref].(obj))
			if err != nil {
				return "", fmt.Errorf("%s: %v", ref, err)
			}
			if propAtomic || !propSet && defAtomic {
				fn = "atomic"
			}
		}
	} else {
		switch ps["type"] {
		case "array":
			items, ok := ps["items"].(obj)
			if !ok {
				return "", fmt.Errorf("%s: array without items", where)
			}
			item, err := g.item(items, where)
			if err != nil {
				return "", err
			}
			ssa, smp, err := listKinds(ps, item == "Item::Any" || strings.HasPrefix(item, "Item::Scalar"), where)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(ssa, "ListKind::Map") {
				g.noteKeyDefaults(ps, items)
			}
			shape = fmt.Sprintf("List(%s, %s, %s)", item, ssa, smp)
		case "object":
			if _, ok := ps["properties"]; ok {
				return "", fmt.Errorf("%s: inline object schemas are not supported", where)
			}
			if ap, ok := ps["additionalProperties"].(obj); ok {
				item, err := g.item(ap, where)
				if err != nil {
					return "", err
				}
				shape = "Map(" + item + ")"
				if propAtomic {
					fn = "atomic"
				}
			} else {
				shape = "Any"
			}
		default:
			if k := scalar(ps); k != "" {
				shape = "Scalar(" + k + ")"
			} else {
				shape = "Any"
			}
		}
	}
	return fmt.Sprintf("%s(%q, %s)", fn, name, shape), nil
}

// noteKeyDefaults records the `default` of each key field of an associative list: apply keys
// an item that omits a key by its default (structured-merge-diff's getAssociativeKeyDefault).
func (g *schemaGen) noteKeyDefaults(ps, items obj) {
	ref := refName(items)
	props, _ := g.defs[ref].(obj)["properties"].(obj)
	for _, k := range ps["x-kubernetes-list-map-keys"].([]any) {
		key := k.(string)
		kp, _ := props[key].(obj)
		def, isString := kp["default"].(string)
		if !isString {
			def = "\x00" // none, or not a string
		}
		g.keyDefs[key] = append(g.keyDefs[key], def)
	}
}

func schemaTypes(mods map[string]module, s *served, docs map[string]obj) ([]byte, error) {
	defs, err := schemaDefs(docs)
	if err != nil {
		return nil, err
	}
	g := &schemaGen{defs: defs, idents: map[string]string{}, keyDefs: map[string][]string{}}
	all := s.all()
	roots := make([]string, len(all))
	for i, r := range all {
		if roots[i], err = kindDef(defs, r); err != nil {
			return nil, err
		}
		if err := g.visit(roots[i]); err != nil {
			return nil, err
		}
	}
	sort.Slice(g.order, func(i, j int) bool { return g.idents[g.order[i]] < g.idents[g.order[j]] })

	var body bytes.Buffer
	fields := 0
	for _, def := range g.order {
		d := defs[def].(obj)
		fmt.Fprintf(&body, "\npub(super) static %s: Type = Type {\n", g.idents[def])
		fmt.Fprintf(&body, "    name: %q,\n    fields: &[\n", def)
		props := d["properties"].(obj)
		for _, name := range sortedKeys(props) {
			line, err := g.field(def, name, props[name].(obj))
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&body, "        %s,\n", line)
			fields++
		}
		body.WriteString("    ],\n};\n")
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "// Generated by tools/gen-kube-facts from %s (api/openapi-spec/v3):\n", mods["k8s.io/kubernetes"].label)
	b.WriteString("// the served kinds and every object type they hold. Do not edit by hand: regenerate.\n\n")
	b.WriteString("use super::Shape::*;\n")
	b.WriteString("use super::{Item, ListKind, MergeKind, Scalar, Type, atomic, f};\n")
	b.WriteString("use crate::resource::{ResourceId, View};\n\n")
	b.WriteString("/// The type of a served kind's objects.\n")
	b.WriteString("pub(super) fn root(resource: ResourceId) -> &'static Type {\n    match resource {\n")
	for i, r := range s.resources {
		fmt.Fprintf(&b, "        ResourceId::%s => &%s,\n", r.id, g.idents[roots[i]])
	}
	b.WriteString("        ResourceId::Custom(_) => &CUSTOM_RESOURCE,\n")
	b.WriteString("    }\n}\n\n")
	b.WriteString("/// The type of a view's objects (a served kind in another group-version).\n")
	b.WriteString("pub(super) fn view_root(view: View) -> &'static Type {\n    match view {\n")
	for i, r := range s.views {
		fmt.Fprintf(&b, "        View::%s => &%s,\n", r.view, g.idents[roots[len(s.resources)+i]])
	}
	b.WriteString("    }\n}\n\n")
	objectMeta, ok := g.idents["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
	if !ok {
		return nil, fmt.Errorf("no ObjectMeta among the served types")
	}
	b.WriteString("/// A custom resource as these tables see it: typed metadata, the rest free-form (its\n")
	b.WriteString("/// schema is its CustomResourceDefinition's, in `crate::crd`).\n")
	fmt.Fprintf(&b, "pub(super) static CUSTOM_RESOURCE: Type = Type {\n    name: \"custom resource\",\n    fields: &[\n        f(\"apiVersion\", Any),\n        f(\"kind\", Any),\n        f(\"metadata\", Object(&%s)),\n    ],\n};\n\n", objectMeta)
	b.WriteString("/// String defaults of associative-list key fields (the same for that key in every list).\n")
	b.WriteString("pub(super) static KEY_DEFAULTS: &[(&str, &str)] = &[\n")
	for _, key := range sortedKeys(g.keyDefs) {
		vals := g.keyDefs[key]
		same := true
		for _, v := range vals {
			same = same && v == vals[0]
		}
		if same && vals[0] != "\x00" {
			fmt.Fprintf(&b, "    (%q, %q),\n", key, vals[0])
		}
	}
	b.WriteString("];\n")
	b.Write(body.Bytes())
	fmt.Fprintf(os.Stderr, "schema/types.rs: %d types, %d fields\n", len(g.order), fields)
	return b.Bytes(), nil
}
