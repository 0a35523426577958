#!/usr/bin/env python3
"""PodTemplates, ReplicationControllers and Jobs with the official Python `kubernetes` client.

Usage: workloads.py KUBECONFIG

Pages through 60 PodTemplates with limit/continue (the way the API-chunking conformance test
does), reads and writes a ReplicationController's scale subresource, and runs a Job to
completion, playing the kubelet through the pod status subresource. Exits non-zero with a
message on the first mismatch.
"""

import sys
import time

try:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
except ImportError as exc:
    print(f"the Python `kubernetes` module is not importable ({exc}): pip install kubernetes",
          file=sys.stderr)
    sys.exit(3)

NS = "default"


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


def container(name, image):
    return client.V1Container(name=name, image=image)


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    batch = client.BatchV1Api()

    step("create 60 pod templates")
    for i in range(60):
        core.create_namespaced_pod_template(NS, client.V1PodTemplate(
            metadata=client.V1ObjectMeta(name=f"template-{i:04d}"),
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(containers=[container("test", "test2")]))))

    step("page through them, 7 at a time, at one resourceVersion")
    seen, token, rv = [], None, None
    while True:
        page = core.list_namespaced_pod_template(NS, limit=7, _continue=token)
        check(len(page.items) <= 7, f"page of {len(page.items)}")
        rv = rv or page.metadata.resource_version
        check(page.metadata.resource_version == rv, "a page changed resourceVersion")
        seen += [t.metadata.name for t in page.items]
        token = page.metadata._continue
        if not token:
            check(page.metadata.remaining_item_count is None, "remainingItemCount on the last page")
            break
        check(page.metadata.remaining_item_count + len(seen) == 60,
              f"remainingItemCount {page.metadata.remaining_item_count} after {len(seen)}")
    check(seen == [f"template-{i:04d}" for i in range(60)], f"pages out of order: {seen[:10]}")

    step("a bad continue token is a 400")
    try:
        core.list_namespaced_pod_template(NS, limit=7, _continue="not-a-token")
        raise Mismatch("a garbage continue token was accepted")
    except ApiException as e:
        check(e.status == 400, f"garbage token: {e.status}")

    step("delete the collection by label")
    core.create_namespaced_pod_template(NS, client.V1PodTemplate(
        metadata=client.V1ObjectMeta(name="labelled", labels={"set": "x"}),
        template=client.V1PodTemplateSpec(spec=client.V1PodSpec(containers=[container("c", "i")]))))
    core.delete_collection_namespaced_pod_template(NS, label_selector="set=x")
    check(core.list_namespaced_pod_template(NS, label_selector="set=x").items == [],
          "deletecollection left templates")

    step("a replication controller and its scale subresource")
    core.create_namespaced_replication_controller(NS, client.V1ReplicationController(
        metadata=client.V1ObjectMeta(name="py-rc"),
        spec=client.V1ReplicationControllerSpec(
            replicas=1, selector={"app": "py"},
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "py"}),
                spec=client.V1PodSpec(containers=[container("c", "nginx")])))))
    wait("status.replicas 1",
         lambda: core.read_namespaced_replication_controller("py-rc", NS).status.replicas == 1)
    scale = core.read_namespaced_replication_controller_scale("py-rc", NS)
    check(scale.status.replicas == 1, f"scale status {scale.status}")
    check(scale.status.selector == "app=py", f"scale selector {scale.status.selector}")
    scale.spec.replicas = 2
    scale.metadata.resource_version = ""
    core.replace_namespaced_replication_controller_scale("py-rc", NS, scale)
    wait("status.replicas 2",
         lambda: core.read_namespaced_replication_controller("py-rc", NS).status.replicas == 2)
    pods = core.list_namespaced_pod(NS, label_selector="app=py").items
    check(len(pods) == 2, f"{len(pods)} pods")
    check(all(p.metadata.owner_references[0].kind == "ReplicationController" for p in pods),
          "pods not owned by the RC")

    step("an invalid RC is a 422 with kube's causes")
    try:
        core.create_namespaced_replication_controller(NS, {
            "metadata": {"name": "bad"},
            "spec": {"selector": {"app": "a"}, "template": {
                "metadata": {"labels": {"app": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
        raise Mismatch("an RC whose selector misses its template was created")
    except ApiException as e:
        check(e.status == 422, f"invalid RC: {e.status}")
        check("`selector` does not match template `labels`" in e.body, e.body)

    step("a job with two completions, one at a time")
    batch.create_namespaced_job(NS, client.V1Job(
        metadata=client.V1ObjectMeta(name="py-job"),
        spec=client.V1JobSpec(
            completions=2, parallelism=1,
            template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
                restart_policy="Never", containers=[container("c", "busybox")])))))
    for done in (1, 2):
        def running():
            return [p for p in core.list_namespaced_pod(NS, label_selector="job-name=py-job").items
                    if p.status.phase == "Pending" and p.metadata.deletion_timestamp is None]
        wait(f"pod {done}", lambda: len(running()) == 1)
        pod = running()[0]
        core.patch_namespaced_pod_status(pod.metadata.name, NS, {"status": {"phase": "Succeeded"}})
        wait(f"succeeded {done}",
             lambda: (batch.read_namespaced_job("py-job", NS).status.succeeded or 0) == done)
    job = batch.read_namespaced_job("py-job", NS)
    types = [c.type for c in job.status.conditions]
    check(types == ["SuccessCriteriaMet", "Complete"], f"conditions {types}")
    print("ok")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)
