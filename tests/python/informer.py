#!/usr/bin/env python3
"""An informer for the ConfigMaps of one namespace that runs across server crashes and restarts
(tests/tests/durable_crash.rs), the way client-go's reflector does it with the official client:
LIST, then WATCH from the list's resourceVersion; on a broken connection resume the watch from
the last resourceVersion seen; on 410 Expired LIST again and replace the cache.

Usage: informer.py KUBECONFIG NAMESPACE OUT

The kubeconfig is loaded again before every LIST and WATCH: dev rewrites it (CA, token) when it
starts again. After every change the cache is written to OUT (atomically), with the counters:
{"resourceVersion", "items": {name: [uid, resourceVersion]}, "lists", "resumes", "expired",
 "events", "backwards": [...]}. "backwards" lists every revision that went below one seen before
(a LIST's or an event's), which must never happen.
"""

import json
import os
import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

KUBECONFIG, NAMESPACE, OUT = sys.argv[1:4]

state = {
    "resourceVersion": None,
    "items": {},
    "lists": 0,
    "resumes": 0,
    "expired": 0,
    "events": 0,
    "backwards": [],
}
highest = 0


def api():
    configuration = client.Configuration()
    config.load_kube_config(config_file=KUBECONFIG, client_configuration=configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


def saw(revision, what):
    """Records `revision` and notes it when it is below the highest one seen so far."""
    global highest
    value = int(revision)
    if value < highest:
        state["backwards"].append(f"{what} at {value} after {highest}")
    highest = max(highest, value)


def dump():
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, OUT)


def relist(v1):
    answer = v1.list_namespaced_config_map(NAMESPACE)
    saw(answer.metadata.resource_version, "LIST")
    state["items"] = {
        i.metadata.name: [i.metadata.uid, i.metadata.resource_version] for i in answer.items
    }
    state["resourceVersion"] = answer.metadata.resource_version
    state["lists"] += 1
    dump()


def main():
    broken = False
    while True:
        try:
            v1 = api()
            if state["resourceVersion"] is None:
                relist(v1)
            elif broken:
                state["resumes"] += 1
                dump()
            broken = False
            w = watch.Watch()
            for event in w.stream(
                v1.list_namespaced_config_map,
                NAMESPACE,
                resource_version=state["resourceVersion"],
                allow_watch_bookmarks=True,
            ):
                kind = event["type"]
                raw = event["raw_object"]
                if kind == "ERROR":
                    if raw.get("code") == 410:
                        raise ApiException(status=410, reason="Expired")
                    raise RuntimeError(f"watch error event: {raw}")
                meta = raw["metadata"]
                saw(meta["resourceVersion"], f"{kind} {meta.get('name')}")
                state["resourceVersion"] = meta["resourceVersion"]
                if kind in ("ADDED", "MODIFIED"):
                    state["items"][meta["name"]] = [meta["uid"], meta["resourceVersion"]]
                elif kind == "DELETED":
                    state["items"].pop(meta["name"], None)
                state["events"] += 1
                dump()
            # The stream ended without an error: resume from where it stopped.
            broken = True
        except ApiException as e:
            if e.status == 410:
                state["expired"] += 1
                state["resourceVersion"] = None
            else:
                broken = True
                time.sleep(0.2)
        except Exception:  # noqa: BLE001 - a broken connection, a server that is restarting
            broken = True
            time.sleep(0.2)


if __name__ == "__main__":
    main()
