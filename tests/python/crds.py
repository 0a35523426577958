#!/usr/bin/env python3
"""CustomResourceDefinitions with the official Python `kubernetes` client.

Usage: crds.py KUBECONFIG

Creates a cluster-scoped and a namespaced CRD with ApiextensionsV1Api, waits for them to be
Established, then drives their custom resources with CustomObjectsApi: create (defaulted),
get, list with a label selector, merge patches, the status and scale subresources,
a watch that sees ADDED/MODIFIED/DELETED, a schema violation's 422 with its causes, and
deletion of the CRD taking its objects along. Exits non-zero with a message on the first
mismatch.
"""

import json
import sys
import threading
import time

try:
    from kubernetes import client, config, watch
    from kubernetes.client.exceptions import ApiException
except ImportError as exc:
    print(f"the Python `kubernetes` module is not importable ({exc}): pip install kubernetes",
          file=sys.stderr)
    sys.exit(3)

NS = "default"
GROUP = "py.example.com"


class Mismatch(Exception):
    """A behaviour that differs from what kube-apiserver does."""


def check(cond, message):
    if not cond:
        raise Mismatch(message)


def step(name):
    print(f"-- {name}", flush=True)


def wait(what, cond, limit=15.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise Mismatch(f"timed out waiting for {what}")


def crd(plural, kind, scope):
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer", "minimum": 0, "default": 2},
                    "color": {"type": "string", "enum": ["red", "green", "blue"]},
                    "tags": {"type": "array", "items": {"type": "string"},
                             "x-kubernetes-list-type": "set"},
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer"},
                    "phase": {"type": "string"},
                },
            },
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [{
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": schema},
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.size",
                              "statusReplicasPath": ".status.size"},
                },
            }],
        },
    }


def established(ext, name):
    got = ext.read_custom_resource_definition(name)
    return any(c.type == "Established" and c.status == "True"
               for c in (got.status.conditions or []))


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    ext = client.ApiextensionsV1Api()
    objs = client.CustomObjectsApi()

    step("create a namespaced and a cluster-scoped CRD")
    ext.create_custom_resource_definition(crd("widgets", "Widget", "Namespaced"))
    ext.create_custom_resource_definition(crd("gadgets", "Gadget", "Cluster"))
    for name in (f"widgets.{GROUP}", f"gadgets.{GROUP}"):
        wait(f"{name} Established", lambda n=name: established(ext, n))
    listed = [c.metadata.name for c in ext.list_custom_resource_definition().items]
    check(f"widgets.{GROUP}" in listed, f"CRD list: {listed}")

    step("watch widgets while they change")
    events = []
    w = watch.Watch()

    def watch_widgets():
        for ev in w.stream(objs.list_namespaced_custom_object, GROUP, "v1", NS, "widgets",
                           timeout_seconds=20):
            events.append((ev["type"], ev["object"]["metadata"]["name"]))
            if ev["type"] == "DELETED":
                w.stop()

    watcher = threading.Thread(target=watch_widgets, daemon=True)
    watcher.start()
    time.sleep(0.5)

    step("create, default and read custom objects")
    made = objs.create_namespaced_custom_object(GROUP, "v1", NS, "widgets", {
        "apiVersion": f"{GROUP}/v1", "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"team": "a"}},
        "spec": {"color": "red"},
    })
    check(made["spec"]["size"] == 2, f"default not applied: {made['spec']}")
    check(made["metadata"]["generation"] == 1, f"generation {made['metadata']}")
    objs.create_namespaced_custom_object(GROUP, "v1", NS, "widgets", {
        "apiVersion": f"{GROUP}/v1", "kind": "Widget",
        "metadata": {"name": "w2", "labels": {"team": "b"}},
        "spec": {"color": "blue", "size": 5},
    })
    got = objs.get_namespaced_custom_object(GROUP, "v1", NS, "widgets", "w1")
    check(got["metadata"]["uid"] == made["metadata"]["uid"], "get returned another object")
    page = objs.list_namespaced_custom_object(GROUP, "v1", NS, "widgets", label_selector="team=b")
    check([i["metadata"]["name"] for i in page["items"]] == ["w2"], f"selected {page['items']}")
    check(page["kind"] == "WidgetList", f"list kind {page['kind']}")
    every = objs.list_cluster_custom_object(GROUP, "v1", "widgets")
    check(len(every["items"]) == 2, f"cluster-wide list {len(every['items'])}")

    step("cluster-scoped objects")
    objs.create_cluster_custom_object(GROUP, "v1", "gadgets", {
        "apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": "g1"},
        "spec": {"tags": ["x", "y"]},
    })
    g1 = objs.get_cluster_custom_object(GROUP, "v1", "gadgets", "g1")
    check("namespace" not in g1["metadata"], f"namespace on a cluster object: {g1['metadata']}")

    step("a schema violation is a 422 naming each field")
    try:
        objs.create_namespaced_custom_object(GROUP, "v1", NS, "widgets", {
            "apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "bad"},
            "spec": {"color": "pink", "size": -1},
        })
        raise Mismatch("an invalid widget was accepted")
    except ApiException as e:
        check(e.status == 422, f"invalid widget: {e.status} {e.body}")
        message = json.loads(e.body)["message"]
        check('spec.color: Unsupported value: "pink"' in message, message)
        check("spec.size: Invalid value: -1" in message, message)
    try:
        objs.create_cluster_custom_object(GROUP, "v1", "gadgets", {
            "apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": "dup"},
            "spec": {"tags": ["x", "x"]},
        })
        raise Mismatch("a set with duplicates was accepted")
    except ApiException as e:
        check(e.status == 422, f"duplicate set item: {e.status} {e.body}")
        message = json.loads(e.body)["message"]
        check('spec.tags[1]: Duplicate value: "x"' in message, message)

    step("merge patches; generation follows spec")
    patched = objs.patch_namespaced_custom_object(GROUP, "v1", NS, "widgets", "w1",
                                                  {"spec": {"color": "green"}})
    check(patched["spec"]["color"] == "green", f"merge patch {patched['spec']}")
    check(patched["metadata"]["generation"] == 2, f"generation {patched['metadata']}")
    objs.patch_namespaced_custom_object(GROUP, "v1", NS, "widgets", "w1", {"spec": {"size": 4}})
    check(objs.get_namespaced_custom_object(GROUP, "v1", NS, "widgets", "w1")["spec"]["size"] == 4,
          "second merge patch not applied")

    step("status subresource")
    status = objs.patch_namespaced_custom_object_status(
        GROUP, "v1", NS, "widgets", "w1", {"status": {"phase": "Ready", "size": 4}})
    check(status["status"]["phase"] == "Ready", f"status {status.get('status')}")
    # Two spec changes made generation 3; a status write leaves it.
    check(status["metadata"]["generation"] == 3, f"generation {status['metadata']}")
    before = 3
    objs.patch_namespaced_custom_object_status(
        GROUP, "v1", NS, "widgets", "w1", {"status": {"phase": "Done"}})
    after = objs.get_namespaced_custom_object(GROUP, "v1", NS, "widgets", "w1")
    check(after["metadata"]["generation"] == before, "a status write bumped generation")
    got = objs.get_namespaced_custom_object_status(GROUP, "v1", NS, "widgets", "w1")
    check(got["status"]["phase"] == "Done", f"status read {got.get('status')}")

    step("scale subresource")
    scale = objs.get_namespaced_custom_object_scale(GROUP, "v1", NS, "widgets", "w1")
    check(scale["kind"] == "Scale" and scale["spec"]["replicas"] == 4, f"scale {scale}")
    check(scale["status"]["replicas"] == 4, f"scale status {scale}")
    objs.patch_namespaced_custom_object_scale(GROUP, "v1", NS, "widgets", "w1",
                                              {"spec": {"replicas": 7}})
    check(objs.get_namespaced_custom_object(GROUP, "v1", NS, "widgets", "w1")["spec"]["size"] == 7,
          "scale did not write spec.size")

    step("delete an object; the watch saw it all")
    objs.delete_namespaced_custom_object(GROUP, "v1", NS, "widgets", "w2")
    watcher.join(timeout=15)
    check(("ADDED", "w1") in events and ("ADDED", "w2") in events, f"events {events}")
    check(("MODIFIED", "w1") in events, f"events {events}")
    check(("DELETED", "w2") in events, f"events {events}")

    step("deleting the CRD deletes its objects")
    ext.delete_custom_resource_definition(f"widgets.{GROUP}")
    wait("the widgets CRD gone", lambda: f"widgets.{GROUP}" not in
         [c.metadata.name for c in ext.list_custom_resource_definition().items])
    try:
        objs.get_namespaced_custom_object(GROUP, "v1", NS, "widgets", "w1")
        raise Mismatch("a widget outlived its CRD")
    except ApiException as e:
        check(e.status == 404, f"widget after CRD delete: {e.status}")
    ext.create_custom_resource_definition(crd("widgets", "Widget", "Namespaced"))
    wait("widgets Established again", lambda: established(ext, f"widgets.{GROUP}"))
    again = objs.list_namespaced_custom_object(GROUP, "v1", NS, "widgets")
    check(again["items"] == [], f"objects survived their CRD: {again['items']}")
    check(objs.get_cluster_custom_object(GROUP, "v1", "gadgets", "g1")["metadata"]["name"] == "g1",
          "the other CRD's objects went too")
    print("ok")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Mismatch as exc:
        print(f"MISMATCH: {exc}", file=sys.stderr)
        sys.exit(1)
