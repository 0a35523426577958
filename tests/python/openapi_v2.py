#!/usr/bin/env python3
"""Reads /openapi/v2 with the official Python `kubernetes` client (its ApiClient, with the
kubeconfig `nautilus-proxy dev` wrote) and checks what tools that read the v2 document rely on.

Usage: openapi_v2.py KUBECONFIG
"""

import json
import sys

from kubernetes import client, config

config.load_kube_config(sys.argv[1])
api = client.ApiClient()
cfg = api.configuration
headers = {"Accept": "application/json",
           "authorization": cfg.auth_settings()["BearerToken"]["value"]}
r = api.call_api("GET", cfg.host + "/openapi/v2", header_params=headers)
r.read()
assert r.status == 200, r.status
assert r.getheader("Content-Type") == "application/json", r.getheader("Content-Type")
doc = json.loads(r.data)
assert doc["swagger"] == "2.0"
definitions = doc["definitions"]
pod = definitions["io.k8s.api.core.v1.Pod"]
assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
containers = definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
assert containers["x-kubernetes-patch-merge-key"] == "name", containers
assert containers["x-kubernetes-list-type"] == "map", containers
assert containers["items"]["$ref"] == "#/definitions/io.k8s.api.core.v1.Container"
probe = definitions["io.k8s.api.core.v1.Container"]["properties"]["livenessProbe"]
assert probe["$ref"] == "#/definitions/io.k8s.api.core.v1.Probe", probe
patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
assert any(p.get("name") == "fieldValidation" for p in patch["parameters"]), patch["parameters"]
assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
assert "/api/v1/namespaces/{namespace}/pods/{name}/exec" not in doc["paths"]
print("openapi v2: OK,", len(definitions), "definitions")
