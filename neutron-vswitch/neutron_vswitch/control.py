"""vswitchd's control socket: one JSON object per line each way.

    -> {"v":1,"cmd":"router-set","args":{"router":{...}}}
    <- {"ok":true,"result":{...}}  or  {"ok":false,"error":"..."}
"""

import json
import socket

PROTOCOL_VERSION = 1


class ControlError(Exception):
    """vswitchd refused a request (its message names the item), or could
    not be reached."""


class Control(object):
    def __init__(self, path, timeout=10.0):
        self.path = path
        self.timeout = timeout

    def request(self, cmd, **args):
        """Sends one request on a connection of its own; its result."""
        line = json.dumps({"v": PROTOCOL_VERSION, "cmd": cmd, "args": args})
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(self.path)
                s.sendall(line.encode() + b"\n")
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
        except OSError as e:
            raise ControlError("vswitchd at %s: %s" % (self.path, e))
        try:
            answer = json.loads(reply)
        except ValueError:
            raise ControlError("vswitchd at %s: unreadable reply %r"
                               % (self.path, reply[:200]))
        if not answer.get("ok"):
            raise ControlError("vswitchd: %s: %s"
                               % (cmd, answer.get("error", "refused")))
        return answer.get("result")

    def router_set(self, router):
        return self.request("router-set", router=router)

    def router_del(self, name):
        return self.request("router-del", name=name, if_exists=True)

    def router_list(self):
        return self.request("router-list")
