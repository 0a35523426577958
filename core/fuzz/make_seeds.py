#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target into seeds/<target>/ from real requests: the
protobuf fixtures of core's tests, and the JSON/YAML bodies, patches, selectors, CEL expressions
and preamble lines the unit tests use. `run.sh` does not need it: the committed corpora came from
these seeds, grown by fuzzing and minimised with `cargo fuzz cmin`."""
import hashlib, json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "src", "protobuf", "fixtures")
OUT = os.path.join(HERE, sys.argv[1] if len(sys.argv) > 1 else "seeds")
S, CALL = b"\xff", b"\xfe"

def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

def b(x):
    return x if isinstance(x, bytes) else (json.dumps(x).encode() if not isinstance(x, str) else x.encode())

# resource index of each fixture (order of nautilus_core::resource::RESOURCES)
FIXTURES = {"configmap": (5, "/api/v1/namespaces/default/configmaps"),
            "deployment": (10, "/apis/apps/v1/namespaces/default/deployments"),
            "namespace": (0, "/api/v1/namespaces"),
            "secret_docker": (6, "/api/v1/namespaces/default/secrets"),
            "secret_generic": (6, "/api/v1/namespaces/default/secrets"),
            "secret_tls": (6, "/api/v1/namespaces/default/secrets"),
            "service_clusterip": (3, "/api/v1/namespaces/default/services"),
            "service_externalname": (3, "/api/v1/namespaces/default/services"),
            "service_loadbalancer": (3, "/api/v1/namespaces/default/services"),
            "service_nodeport": (3, "/api/v1/namespaces/default/services"),
            "serviceaccount": (7, "/api/v1/namespaces/default/serviceaccounts")}
PB = "application/vnd.kubernetes.protobuf"

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-a", "labels": {"app": "web"}}, "data": {"k": "v"}}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}}
DEPLOY_YAML = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx:1.27
        ports:
        - containerPort: 80
"""
VAP = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
       "metadata": {"name": "replicas"}, "spec": {"failurePolicy": "Fail",
       "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
       "variables": [{"name": "r", "expression": "object.spec.replicas"}],
       "validations": [{"expression": "variables.r <= 5", "message": "too many"}]}}
CRONJOB = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
           "spec": {"schedule": "*/5 * * * *", "timeZone": "Europe/Paris", "jobTemplate": {"spec": {"template": {"spec": {
               "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}

def call(method, path, query="", ct="application/json", accept="application/json", body=b"", auth=0, flags=0):
    return bytes([method, auth, flags]) + S + b(path) + S + b(query) + S + b(ct) + S + b(accept) + S + b(body)

GET, POST, PUT, PATCH, DELETE, HEAD = 0, 1, 2, 3, 4, 5
NS = "/api/v1/namespaces/default"
api = [
    call(POST, NS + "/configmaps", body=CM),
    call(POST, NS + "/configmaps", "dryRun=All&fieldValidation=Strict", body={**CM, "bogus": 1}),
    call(POST, NS + "/pods", "fieldManager=kubectl", body=POD),
    call(POST, "/apis/apps/v1/namespaces/default/deployments", ct="application/yaml", body=DEPLOY_YAML),
    call(POST, "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies", body=VAP),
    call(POST, "/apis/batch/v1/namespaces/default/cronjobs", body=CRONJOB),
    call(PATCH, NS + "/configmaps/cm-a", ct="application/merge-patch+json", body={"data": {"k": None, "n": "1"}}),
    call(PATCH, NS + "/configmaps/cm-a", ct="application/json-patch+json",
         body=[{"op": "test", "path": "/data/k", "value": "v"}, {"op": "add", "path": "/data/x", "value": "y"}, {"op": "move", "from": "/data/x", "path": "/data/z"}]),
    call(PATCH, NS + "/pods/web", ct="application/strategic-merge-patch+json",
         body={"spec": {"containers": [{"name": "c", "image": "nginx:2"}], "$setElementOrder/containers": [{"name": "c"}]}}),
    call(PATCH, "/apis/apps/v1/namespaces/default/deployments/web", "fieldManager=kubectl&force=true", ct="application/apply-patch+yaml", body=DEPLOY_YAML),
    call(PATCH, "/apis/apps/v1/namespaces/default/deployments/web/scale", ct="application/merge-patch+json", body={"spec": {"replicas": 4}}),
    call(PUT, NS + "/configmaps/cm-b", body={**CM, "metadata": {"name": "cm-b", "resourceVersion": "1"}}),
    call(GET, NS + "/configmaps", "labelSelector=app%3Dweb,tier+in+(front,back),!gone&limit=1"),
    call(GET, NS + "/pods", "fieldSelector=metadata.name%3Dweb,status.phase!%3DRunning", accept="application/json;as=Table;v=v1;g=meta.k8s.io"),
    call(GET, NS + "/configmaps", "limit=1") + CALL + call(GET, NS + "/configmaps", "limit=1", flags=1),
    call(GET, NS + "/configmaps", "resourceVersion=0&resourceVersionMatch=NotOlderThan"),
    call(GET, NS + "/configmaps", "watch=true&resourceVersion=1&allowWatchBookmarks=true&timeoutSeconds=5"),
    call(GET, NS + "/configmaps/cm-a", accept=PB),
    call(GET, "/api/v1/nodes", accept="application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
    call(GET, "/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
    call(GET, "/openapi/v3/apis/apps/v1"),
    call(GET, "/version"), call(GET, "/healthz", auth=1), call(GET, "/api/v1/namespaces", auth=2),
    call(DELETE, NS + "/pods/web", "gracePeriodSeconds=0&propagationPolicy=Foreground", body={"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "x"}}),
    call(DELETE, NS + "/configmaps", "labelSelector=app"),
    call(POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
         body={"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}),
    call(POST, NS + "/pods/web/binding", body={"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"}, "target": {"kind": "Node", "name": "node-a"}}),
    call(PUT, "/api/v1/nodes/node-a/status", body={"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}, "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2025-06-15T12:00:00Z"}]}}),
]
for name, (idx, path) in FIXTURES.items():
    body = open(os.path.join(FIX, name + ".bin"), "rb").read()
    api.append(call(POST, path, ct=PB, accept=PB, body=body))
    put("body_decode", bytes([idx]) + body)
    put("body_decode", bytes([idx]) + open(os.path.join(FIX, name + ".json"), "rb").read())
for x in api:
    put("api_request", x)

for d in [DEPLOY_YAML.encode(), b"a: &x [1, 2]\nb: *x\nc: !!str 3\nd: 0x1f\ne: ~\n", b"---\n- yes\n- 1e3\n- '01'\n"]:
    put("body_decode", b"\x0a" + d)
put("body_decode", b"\x00" + b'{"a":1,"a":2,"b":{"c":[1,2,{"d":null}]}}')

pkg = "ab" * 32
seal = [bytes([0, 0, 0, 0, 60, 0]) + S + b"node-a" + S + S,
        bytes([1, 0, 0, 0, 60, 0]) + S + b"node-a" + S + S,
        bytes([0, 1, 0, 0, 60, 0]) + S + b"node-a" + S + b"not.a.token" + S,
        bytes([0, 0, 0, 200, 100, 0]) + S + b"node-b" + S + S,
        bytes([2, 2, 1]) + S + S + S + b(json.dumps({"checkpoint": 2, "events": [{"id": {"txDigest": "5vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi", "eventSeq": "0"},
            "packageId": "0x" + pkg, "transactionModule": "staking", "sender": "0x00", "type": "0x" + pkg + "::staking::StakeWithdrawn",
            "parsedJson": {"stake_id": "0x" + "65" * 32}, "timestampMs": "2"}]})),
        bytes([3, 2, 1]) + S + S + S,
        bytes([0, 1, 0]) + S + b"node-a" + S + b"x" + S + b'{"node_id":"node-a","seal_token":"x","timestamp":1750000000}']
for x in seal:
    put("seed_endpoints", x)

def patch(res, op, live, p, force=0):
    put("patch_apply", bytes([res, op, force]) + S + b(live) + S + b(p))
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}, {"name": "b", "image": "y"}]}}}}
patch(5, 0, CM, {"data": {"k": None}})
patch(5, 1, CM, [{"op": "replace", "path": "/data/k", "value": "w"}, {"op": "remove", "path": "/metadata/labels/app"}, {"op": "copy", "from": "/data", "path": "/metadata/annotations"}])
patch(10, 2, DEPLOY, {"spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "A", "$patch": "delete"}]}, {"name": "c", "image": "z"}], "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}}}})
patch(10, 2, DEPLOY, {"spec": {"$retainKeys": ["replicas"], "replicas": 2}})
patch(1, 2, POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}, "spec": {"containers": [{"name": "c", "$patch": "replace"}]}})
patch(10, 3, DEPLOY, DEPLOY_YAML)
patch(10, 3, DEPLOY, DEPLOY, 1)
patch(10, 4, DEPLOY, {**DEPLOY, "spec": {"replicas": 3}})
patch(5, 4, CM, {**CM, "metadata": {"name": "cm-a", "managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:k": {}}}}]}})

for sel in ["app=web", "x in (a,b),y notin (c),!z,w", "kubernetes.io/cluster-service=true", "x>1,y<5", "a!=b", "x in ()", "x==a==b",
            "metadata.name=web,metadata.namespace!=kube-system", "spec.nodeName=node-a,status.phase=Running", "a/b/c=d"]:
    for res in (1, 5):
        put("selectors", bytes([res]) + S + sel.encode() + S + b(POD if res == 1 else CM))
put("selectors", b"\x01" + S + S + b(json.dumps({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]})))

D = {"metadata": {"name": "web", "labels": {"app": "web", "tier-x": "1"}}, "spec": {"replicas": 3, "paused": False, "items": [1, 2, 3],
     "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
for e in ["object.spec.replicas > 1", "object.spec.replicas % 2 == 1", "has(object.spec.paused)", "size(object.spec.template.spec.containers)",
          "'app' in object.metadata.labels", "object.metadata.labels.tier__dash__x == '1'", "object.metadata.name.matches('^w[a-z]+$')",
          "object.spec.replicas > 1.5 ? 'big' : 'small'", "[1, 2, 3].sum() + int('4')", "1 == 1.0 && 2u == 2", "!(false || false)",
          "object.spec.template.spec.containers.all(c, c.image.startsWith('nginx'))",
          "object.spec.template.spec.containers.exists_one(c, c.name == 'c') && object.spec.items.map(x, x * 2).filter(x, x > 2).size() == 2",
          "variables.r <= 5 && string(variables.r) == '3'", "'a,b'.split(',').join('-') + b'x'.size().string()", "{'a': 1}.a + dyn(2)",
          "duration('1h') > duration('30m') && timestamp('2025-01-01T00:00:00Z') < timestamp('2026-01-01T00:00:00Z')",
          "object.spec.items.indexOf(7) == 7", "9223372036854775807 + 1", "1 / 0", "'x'.lowerAscii().trim().replace('x', 'yy').substring(1)"]:
    put("cel", e.encode() + S + b(D) + S + b([{"name": "r", "expression": "object.spec.replicas"}]))

for line in [b"NAUTILUS/1 client-cert-cn=alice groups=dev,system%3Amasters", b"NAUTILUS/1 client-cert-cn= groups=",
             b"NAUTILUS/1 client-cert-cn=system%3Anode%3Anode-a groups=system%3Anodes", b"NAUTILUS/1 client-cert-cn=a%20b groups=%25,%2C"]:
    put("preamble", line)

# The certificate requests of core's CSR tests (openssl: RSA PKCS#1 and PSS, ECDSA), as DER.
import base64, glob
for pem in sorted(glob.glob(os.path.join(HERE, "..", "src", "csr", "fixtures", "*.pem"))):
    with open(pem) as f:
        put("csr", base64.b64decode("".join(l for l in f.read().splitlines() if not l.startswith("-----"))))
