"""`exec` over WebSocket with the official Python client, which offers v5.channel.k8s.io and
v4.channel.k8s.io (the enclave translates v5 to SPDY, as kube does), or only the protocols given
as a third argument (v4.channel.k8s.io alone is relayed to the kubelet unchanged).
Usage: exec_websocket.py KUBECONFIG POD [PROTOCOLS]."""

import sys

from kubernetes import client, config
from kubernetes.stream import stream, ws_client

if len(sys.argv) > 3:
    offer = ws_client.create_websocket

    def create_websocket(configuration, url, headers=None):
        headers = dict(headers or {})
        headers["sec-websocket-protocol"] = sys.argv[3]
        return offer(configuration, url, headers)

    ws_client.create_websocket = create_websocket

config.load_kube_config(sys.argv[1])
api = client.CoreV1Api()
out = stream(
    api.connect_get_namespaced_pod_exec,
    sys.argv[2],
    "default",
    command=["sh", "-c", "echo websocket $CONTAINER; echo err >&2"],
    stderr=True,
    stdin=False,
    stdout=True,
    tty=False,
    _preload_content=False,
)
out.run_forever(timeout=20)
print("stdout=" + out.read_stdout().strip())
print("stderr=" + out.read_stderr().strip())
print("code=" + str(out.returncode))
