"""A stand-in for systemd's notify socket: binds an AF_UNIX datagram socket at argv[1] and prints
each message as one JSON line. File descriptors passed along (systemd-notify's BARRIER=1 pipe) are
closed at once, which is how the real manager acknowledges the barrier."""
import array
import json
import os
import socket
import sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
print(json.dumps("LISTENING"), flush=True)
while True:
    data, ancdata, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
    print(json.dumps(data.decode("utf-8", "replace")), flush=True)
