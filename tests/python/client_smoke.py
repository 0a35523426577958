#!/usr/bin/env python3
"""Smoke test of Nautilus with the official Python `kubernetes` client.

Usage: client_smoke.py KUBECONFIG

Loads the kubeconfig written by `nautilus-proxy dev` unmodified, then drives the usual calls a
Python controller makes: list, create, read, patch (dict body), label-selected list, watch,
delete, and the error paths (404 after delete, 409 AlreadyExists on a duplicate). Exits non-zero
with a message on the first mismatch.
"""

import json
import sys
import threading
import time
import uuid

try:
    from kubernetes import client, config, watch
    from kubernetes.client import rest
    from kubernetes.client.exceptions import ApiException
except ImportError as exc:  # the Rust test turns this exit code into a clear failure
    print(f"the Python `kubernetes` module is not importable ({exc}): pip install kubernetes",
          file=sys.stderr)
    sys.exit(3)


class Mismatch(Exception):
    """A behaviour that differs from what kube-apiserver does."""


def check(cond, message):
    if not cond:
        raise Mismatch(message)


def step(name):
    print(f"-- {name}", flush=True)


# Records the Content-Type each request went out with: the client rewrites it inside
# RESTClientObject.request (json-patch+json becomes strategic-merge-patch+json for dict bodies),
# so it is read back from the headers dict after the call.
SENT = []
_original_request = rest.RESTClientObject.request


def _recording_request(self, method, url, headers=None, *args, **kwargs):
    headers = {} if headers is None else headers
    try:
        return _original_request(self, method, url, headers, *args, **kwargs)
    finally:
        SENT.append((method, url, headers.get("Content-Type")))


rest.RESTClientObject.request = _recording_request


def pod(name, labels=None):
    return client.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="app", image="registry.k8s.io/pause:3.10")]
        ),
    )


def expect_api_error(fn, status, reason=None):
    try:
        fn()
    except ApiException as exc:
        check(exc.status == status,
              f"expected HTTP {status}, got {exc.status}: {exc.body}")
        if reason is not None:
            body = json.loads(exc.body)
            check(body.get("kind") == "Status", f"error body is not a Status: {exc.body}")
            check(body.get("reason") == reason,
                  f"expected reason {reason}, got {body.get('reason')}: {exc.body}")
        return exc
    raise Mismatch(f"expected HTTP {status}, the call succeeded")


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    v1 = client.CoreV1Api()
    ns = "py-" + uuid.uuid4().hex[:8]

    step("list namespaces and pods")
    names = [n.metadata.name for n in v1.list_namespace().items]
    check("default" in names, f"namespace list lacks default: {names}")
    all_pods = v1.list_pod_for_all_namespaces()
    check(all_pods.metadata.resource_version, "pod list has no metadata.resourceVersion")

    step(f"create namespace {ns}")
    created_ns = v1.create_namespace(
        client.V1Namespace(api_version="v1", kind="Namespace",
                           metadata=client.V1ObjectMeta(name=ns)))
    check(created_ns.metadata.name == ns, f"namespace name {created_ns.metadata.name}")
    check(created_ns.status.phase == "Active", f"namespace phase {created_ns.status.phase}")

    step("create a pod and read it back")
    created = v1.create_namespaced_pod(ns, pod("web", {"app": "web"}))
    check(created.metadata.uid, "created pod has no uid")
    check(created.metadata.resource_version, "created pod has no resourceVersion")
    read = v1.read_namespaced_pod("web", ns)
    check(read.metadata.uid == created.metadata.uid, "read-back uid differs")
    check(read.spec.containers[0].image == "registry.k8s.io/pause:3.10",
          f"read-back image {read.spec.containers[0].image}")
    check(read.metadata.labels == {"app": "web"}, f"labels {read.metadata.labels}")

    step("patch labels with a dict body")
    SENT.clear()
    patched = v1.patch_namespaced_pod(
        "web", ns, {"metadata": {"labels": {"tier": "frontend", "app": "web"}}})
    patch_types = [ct for (m, _, ct) in SENT if m == "PATCH"]
    print(f"   patch Content-Type sent by the client: {patch_types}")
    check(patch_types == ["application/strategic-merge-patch+json"],
          f"unexpected patch content types {patch_types}")
    check(patched.metadata.labels == {"app": "web", "tier": "frontend"},
          f"patched labels {patched.metadata.labels}")
    check(int(patched.metadata.resource_version) > int(created.metadata.resource_version),
          "resourceVersion did not advance on patch")

    step("list with a label selector")
    v1.create_namespaced_pod(ns, pod("db", {"app": "db"}))
    selected = v1.list_namespaced_pod(ns, label_selector="tier=frontend")
    check([p.metadata.name for p in selected.items] == ["web"],
          f"tier=frontend selected {[p.metadata.name for p in selected.items]}")
    selected = v1.list_namespaced_pod(ns, label_selector="app in (web,db)")
    check(sorted(p.metadata.name for p in selected.items) == ["db", "web"],
          f"app in (web,db) selected {[p.metadata.name for p in selected.items]}")
    selected = v1.list_namespaced_pod(ns, label_selector="app!=web")
    check([p.metadata.name for p in selected.items] == ["db"],
          f"app!=web selected {[p.metadata.name for p in selected.items]}")

    step("watch while another pod is created, modified and deleted")
    start_rv = v1.list_namespaced_pod(ns).metadata.resource_version
    events = []
    ready = threading.Event()
    errors = []

    def watcher():
        w = watch.Watch()
        try:
            ready.set()
            for ev in w.stream(v1.list_namespaced_pod, ns, resource_version=start_rv,
                               field_selector="metadata.name=watched", timeout_seconds=20):
                events.append((ev["type"], ev["object"].metadata.name,
                               ev["object"].metadata.labels))
                if ev["type"] == "DELETED":
                    w.stop()
        except Exception as exc:  # reported by the main thread
            errors.append(repr(exc))

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(0.5)  # let the watch request reach the server before the writes
    v1.create_namespaced_pod(ns, pod("watched", {"app": "watched"}))
    v1.patch_namespaced_pod("watched", ns, {"metadata": {"labels": {"step": "two"}}})
    v1.delete_namespaced_pod("watched", ns, grace_period_seconds=0)
    thread.join(25)
    check(not thread.is_alive(), f"watch did not see DELETED in time; events so far {events}")
    check(not errors, f"watch failed: {errors}")
    # With no nodes, the scheduler marks the pod Unschedulable: a status-only MODIFIED (same
    # labels as the event before), as kube-scheduler would. Only the test's own writes count.
    own = [e for i, e in enumerate(events)
           if not (i > 0 and e[0] == "MODIFIED" and e[2] == events[i - 1][2])]
    types = [t for (t, _, _) in own]
    check(types == ["ADDED", "MODIFIED", "DELETED"], f"watch event sequence {events}")
    check(all(n == "watched" for (_, n, _) in events), f"watch names {events}")
    check(own[1][2].get("step") == "two", f"MODIFIED event labels {own[1][2]}")

    step("delete a pod, then reads are 404")
    v1.delete_namespaced_pod("web", ns, grace_period_seconds=0)
    deadline = time.time() + 10
    while True:
        try:
            v1.read_namespaced_pod("web", ns)
        except ApiException as exc:
            check(exc.status == 404, f"read after delete: HTTP {exc.status}: {exc.body}")
            break
        check(time.time() < deadline, "pod web still readable 10 s after delete")
        time.sleep(0.2)
    expect_api_error(lambda: v1.read_namespaced_pod("watched", ns), 404, "NotFound")

    step("duplicate create is 409 AlreadyExists")
    exc = expect_api_error(lambda: v1.create_namespaced_pod(ns, pod("db")), 409, "AlreadyExists")
    message = json.loads(exc.body).get("message")
    check(message == 'pods "db" already exists', f"409 message: {message!r}")

    step("cleanup")
    v1.delete_namespace(ns)
    print("client_smoke: OK", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: client_smoke.py KUBECONFIG", file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1])
    except Mismatch as exc:
        print(f"client_smoke: MISMATCH: {exc}", file=sys.stderr)
        sys.exit(1)
    except ApiException as exc:
        print(f"client_smoke: unexpected API error {exc.status} {exc.reason}: {exc.body}",
              file=sys.stderr)
        sys.exit(1)
