#!/usr/bin/env python3
"""Server-side apply and JSON patch `test` with the official Python `kubernetes` client.

Usage: server_side_apply.py KUBECONFIG

Applies a ConfigMap as two field managers the way the client's documentation does it
(`patch_namespaced_config_map` with `_content_type="application/apply-patch+yaml"`,
`field_manager`, `force`), and adds a finalizer with the test-then-add JSON patch operator
libraries send. Asserts what kube-apiserver answers; exits non-zero on the first mismatch.
"""

import datetime
import json
import sys
import uuid

try:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
except ImportError as exc:
    print(f"the Python `kubernetes` module is not importable ({exc}): pip install kubernetes",
          file=sys.stderr)
    sys.exit(3)

APPLY = "application/apply-patch+yaml"


class Mismatch(Exception):
    """A behaviour that differs from what kube-apiserver does."""


def check(cond, message):
    if not cond:
        raise Mismatch(message)


def step(name):
    print(f"-- {name}", flush=True)


def configmap(name, ns, data=None):
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}}
    if data is not None:
        body["data"] = data
    return body


def owners(obj):
    return sorted((e.manager, e.operation, json.dumps(e.fields_v1, sort_keys=True))
                  for e in obj.metadata.managed_fields or [])


def owner(manager, operation, fields):
    return (manager, operation, json.dumps(fields, sort_keys=True))


def expect_error(fn, status):
    try:
        fn()
    except ApiException as exc:
        check(exc.status == status, f"expected HTTP {status}, got {exc.status}: {exc.body}")
        return json.loads(exc.body)
    raise Mismatch(f"expected HTTP {status}, the call succeeded")


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    v1 = client.CoreV1Api()
    ns = "default"
    name = "py-ssa-" + uuid.uuid4().hex[:8]

    def apply(data, manager, **kwargs):
        return v1.patch_namespaced_config_map(name, ns, configmap(name, ns, data),
                                              field_manager=manager, _content_type=APPLY,
                                              **kwargs)

    step("apply creates; the applier's entry owns exactly its fields")
    created = apply({"a": "1", "b": "1"}, "py-owner")
    check(created.data == {"a": "1", "b": "1"}, f"data {created.data}")
    check(owners(created) == [owner("py-owner", "Apply", {"f:data": {"f:a": {}, "f:b": {}}})],
          f"managed fields {owners(created)}")
    entry = created.metadata.managed_fields[0]
    check(entry.api_version == "v1" and entry.fields_type == "FieldsV1",
          f"entry {entry}")
    check(isinstance(entry.time, datetime.datetime), f"time {entry.time!r}")

    step("another manager changing an owned field is a 409 naming the owner")
    status = expect_error(lambda: apply({"a": "2"}, "py-other"), 409)
    check(status.get("reason") == "Conflict", f"reason {status.get('reason')}")
    check(status.get("message") ==
          'Apply failed with 1 conflict: conflict with "py-owner": .data.a',
          f"message {status.get('message')!r}")
    check(status.get("details", {}).get("causes") ==
          [{"reason": "FieldManagerConflict", "message": 'conflict with "py-owner"',
            "field": ".data.a"}],
          f"causes {status.get('details')}")

    step("force moves the field")
    forced = apply({"a": "2"}, "py-other", force=True)
    check(forced.data == {"a": "2", "b": "1"}, f"data {forced.data}")
    check(owners(forced) == [owner("py-other", "Apply", {"f:data": {"f:a": {}}}),
                             owner("py-owner", "Apply", {"f:data": {"f:b": {}}})],
          f"managed fields {owners(forced)}")

    step("a field its only applier stops applying is removed")
    pruned = apply(None, "py-owner")
    check(pruned.data == {"a": "2"}, f"data {pruned.data}")
    check(owners(pruned) == [owner("py-other", "Apply", {"f:data": {"f:a": {}}})],
          f"managed fields {owners(pruned)}")

    step("apply without a field manager is 422")
    status = expect_error(
        lambda: v1.patch_namespaced_config_map(name, ns, configmap(name, ns, {"a": "3"}),
                                               _content_type=APPLY), 422)
    check(status.get("message") == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
          'Required value: is required for apply patch', f"message {status.get('message')!r}")

    step("test-then-add JSON patch adds finalizers only when absent")
    add_first = [{"op": "test", "path": "/metadata/finalizers", "value": None},
                 {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/x"]}]
    patched = v1.patch_namespaced_config_map(name, ns, add_first)
    check(patched.metadata.finalizers == ["example.com/x"],
          f"finalizers {patched.metadata.finalizers}")
    expect_error(lambda: v1.patch_namespaced_config_map(name, ns, add_first), 422)
    v1.patch_namespaced_config_map(name, ns, [{"op": "remove", "path": "/metadata/finalizers"}])

    step("cleanup")
    v1.delete_namespaced_config_map(name, ns)
    print("server_side_apply: OK", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: server_side_apply.py KUBECONFIG", file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1])
    except Mismatch as exc:
        print(f"server_side_apply: MISMATCH: {exc}", file=sys.stderr)
        sys.exit(1)
    except ApiException as exc:
        print(f"server_side_apply: unexpected API error {exc.status} {exc.reason}: {exc.body}",
              file=sys.stderr)
        sys.exit(1)
