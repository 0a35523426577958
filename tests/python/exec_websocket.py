"""`exec` over WebSocket (v4.channel.k8s.io) with the official Python client: the enclave relays
the upgrade to the kubelet unchanged. Usage: exec_websocket.py KUBECONFIG POD."""

import sys

from kubernetes import client, config
from kubernetes.stream import stream

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
