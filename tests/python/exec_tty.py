"""`kubectl exec -it` on a terminal: runs kubectl on a pseudo-terminal of 100x40, waits for the
command's "ready", resizes the terminal to 120x50 (the kernel signals kubectl, which sends the
new size on the resize channel), types a line and reads to the end. Prints the output (carriage
returns removed) and kubectl's exit code.

Usage: exec_tty.py KUBECONFIG POD COMMAND"""

import fcntl
import os
import signal
import pty
import select
import struct
import sys
import termios
import time


def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


kubeconfig, pod, command = sys.argv[1], sys.argv[2], sys.argv[3]
pid, master = pty.fork()
if pid == 0:
    # The terminal's size before kubectl reads it.
    set_size(0, 100, 40)
    os.execvp(
        "kubectl",
        ["kubectl", "--kubeconfig", kubeconfig, "exec", "-it", pod, "--", "sh", "-c", command],
    )

output = b""
resized = typed = False
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    ready, _, _ = select.select([master], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: kubectl exited and the terminal closed
            break
        if not chunk:
            break
        output += chunk
    if not resized and b"ready" in output:
        set_size(master, 120, 50)
        resized = True
        resized_at = time.monotonic()
    elif resized and not typed and time.monotonic() - resized_at > 1:
        os.write(master, b"hello\n")
        typed = True
else:
    os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
print("output=" + output.decode(errors="replace").replace("\r", "").strip().replace("\n", "|"))
print("code=" + str(os.waitstatus_to_exitcode(status)))
