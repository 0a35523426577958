#!/usr/bin/env python3
"""Writes tables.rs: the protobuf message descriptors `protobuf.rs` decodes with.

Facts come from two upstream files per package: `generated.proto` (field numbers, proto types)
and `types.go` (JSON names, `omitempty`/`omitzero`, `,inline`, pointer-ness), joined on
(message, field number). Usage:

    gen_tables.py API_DIR APIMACHINERY_DIR API_COMMIT APIMACHINERY_COMMIT > tables.rs

A proto type with no matching `Kind` in protobuf.rs (e.g. `double`, `Duration`) makes the
generated file fail to compile, so new upstream shapes cannot slip in unhandled.
"""
import re
import sys

API, MACH = sys.argv[1], sys.argv[2]

PACKAGES = {
    "k8s.io.api.core.v1": (f"{API}/core/v1", ["types.go"]),
    "k8s.io.api.apps.v1": (f"{API}/apps/v1", ["types.go"]),
    "k8s.io.api.coordination.v1": (f"{API}/coordination/v1", ["types.go"]),
    "k8s.io.api.autoscaling.v1": (f"{API}/autoscaling/v1", ["types.go"]),
    "k8s.io.apimachinery.pkg.apis.meta.v1": (f"{MACH}/pkg/apis/meta/v1", ["types.go"]),
}

# Messages with a JSON form of their own (custom MarshalJSON upstream).
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
}
SCALARS = {"string": "Str", "bytes": "Bytes", "bool": "Bool", "int32": "I32", "int64": "I64",
           "double": "F64", "float": "F32"}

ROOTS = [
    "k8s.io.api.core.v1.Namespace", "k8s.io.api.core.v1.Pod", "k8s.io.api.core.v1.Node",
    "k8s.io.api.core.v1.Service", "k8s.io.api.core.v1.Endpoints",
    "k8s.io.api.core.v1.ConfigMap", "k8s.io.api.core.v1.Secret",
    "k8s.io.api.core.v1.ServiceAccount", "k8s.io.api.core.v1.Event",
    "k8s.io.api.core.v1.Binding", "k8s.io.api.coordination.v1.Lease",
    "k8s.io.api.apps.v1.Deployment", "k8s.io.api.apps.v1.ReplicaSet",
    "k8s.io.api.autoscaling.v1.Scale", "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
]

FIELD = re.compile(r"^\s*(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;")
MAPF = re.compile(r"^\s*map<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;")


def parse_proto(pkg, path):
    msgs, cur = {}, None
    for line in open(f"{path}/generated.proto"):
        m = re.match(r"^message (\w+) \{", line)
        if m:
            cur = f"{pkg}.{m.group(1)}"
            msgs[cur] = []
            continue
        if line.startswith("}"):
            cur = None
            continue
        if cur is None:
            continue
        m = FIELD.match(line)
        if m:
            label, typ, name, num = m.groups()
            msgs[cur].append(dict(num=int(num), name=name, rep=label == "repeated",
                                  typ=resolve(pkg, typ), map=None))
            continue
        m = MAPF.match(line)
        if m:
            k, v, name, num = m.groups()
            assert k == "string", line
            msgs[cur].append(dict(num=int(num), name=name, rep=False, typ=resolve(pkg, v),
                                  map=True))
            continue
        assert not re.match(r"^\s*(optional|repeated|map|oneof|message|enum)\b", line), line
    return msgs


def resolve(pkg, typ):
    if typ in SCALARS:
        return typ
    return typ.lstrip(".") if "." in typ else f"{pkg}.{typ}"


TAG = re.compile(r'json:"([^"]*)"')
PTAG = re.compile(r'protobuf:"\w+,(\d+),')


def parse_go(path, files):
    """(struct, field number) -> (json name, omitempty, omitzero, inline, pointer)."""
    out, cur = {}, None
    for f in files:
        for line in open(f"{path}/{f}"):
            m = re.match(r"^type (\w+) struct \{", line)
            if m:
                cur = m.group(1)
                continue
            if line.startswith("}"):
                cur = None
                continue
            if cur is None or "`" not in line:
                continue
            code, tags = line.split("`", 1)
            pm, jm = PTAG.search(tags), TAG.search(tags)
            if not pm or not jm:
                continue
            parts = jm.group(1).split(",")
            words = code.split()
            gotype = words[1] if len(words) > 1 else words[0]
            out[(cur, int(pm.group(1)))] = dict(
                json=parts[0], omitempty="omitempty" in parts[1:],
                omitzero="omitzero" in parts[1:],
                # An embedded struct without a JSON name is inlined by encoding/json.
                inline="inline" in parts[1:] or (len(words) == 1 and parts[0] == ""),
                pointer=gotype.startswith("*"))
    return out


protos, gos = {}, {}
for pkg, (path, files) in PACKAGES.items():
    protos.update(parse_proto(pkg, path))
    for (struct, num), v in parse_go(path, files).items():
        gos[(f"{pkg}.{struct}", num)] = v

# Closure of the root messages.
order, seen, todo = [], set(), list(ROOTS)
while todo:
    name = todo.pop(0)
    if name in seen or name in SPECIAL or name in SCALARS:
        continue
    seen.add(name)
    order.append(name)
    for fld in protos[name]:
        todo.append(fld["typ"])

def ident(full):
    pkg, short = full.rsplit(".", 1)
    prefix = {"k8s.io.api.apps.v1": "APPS_", "k8s.io.api.coordination.v1": "COORD_",
              "k8s.io.api.autoscaling.v1": "AUTOSCALING_",
              "k8s.io.apimachinery.pkg.apis.meta.v1": "META_"}.get(pkg, "")
    return prefix + re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", short).upper()


def kind(typ):
    if typ in SCALARS:
        return SCALARS[typ]
    if typ in SPECIAL:
        return SPECIAL[typ]
    return f"Message(&{ident(typ)})"


api_commit, mach_commit = sys.argv[3], sys.argv[4]
print("// Generated by gen_tables.py from kubernetes/api@" + api_commit)
print("// and kubernetes/apimachinery@" + mach_commit + " (generated.proto + types.go).")
print("// Do not edit by hand: regenerate.")
print()
print("use super::Kind::*;")
print("use super::{INLINE, MAP, Msg, OMITEMPTY, OMITZERO, PTR, REP, f};")
print()
for name in sorted(order, key=ident):
    fields = protos[name]
    print(f"pub(super) static {ident(name)}: Msg = Msg {{")
    print(f"    name: \"{name.rsplit('.', 1)[1]}\",")
    print("    fields: &[")
    for fld in sorted(fields, key=lambda x: x["num"]):
        g = gos.get((name, fld["num"]))
        if g is None:
            sys.exit(f"no Go tag for {name} field {fld['num']}")
        flags = []
        if fld["rep"]:
            flags.append("REP")
        if fld["map"]:
            flags.append("MAP")
        if g["pointer"]:
            flags.append("PTR")
        if g["omitempty"]:
            flags.append("OMITEMPTY")
        if g["omitzero"]:
            flags.append("OMITZERO")
        if g["inline"]:
            flags.append("INLINE")
            assert fld["typ"] not in SPECIAL and fld["typ"] not in SCALARS
        jname = g["json"] if not g["inline"] else ""
        fl = " | ".join(flags) if flags else "0"
        print(f"        f({fld['num']}, \"{jname}\", {kind(fld['typ'])}, {fl}),")
    print("    ],")
    print("};")
print(f"// {len(order)} messages, {sum(len(protos[n]) for n in order)} fields", file=sys.stderr)
