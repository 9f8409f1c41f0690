"""
The listening half of the scripted SMTP peers that integration tests put
on loopback addresses: bind, listen, and a thread per accepted
connection.  A subclass says what one session does (serve), or what
accepting does (accepted) when it must count or answer in line.
"""

import socket
import threading


class PeerServer(threading.Thread):
    """Listens on host:port (port 0: a free one; self.port says which).
    After start(), each connection goes to accepted(), which by default
    runs serve(conn) on a thread of its own.  stop() closes the listener,
    which ends the accept loop; self.stopping tells sessions to end."""

    def __init__(self, host="127.0.0.1", port=0, backlog=16):
        super().__init__(daemon=True)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.stopping = False

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted(c)

    def accepted(self, c):
        threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        raise NotImplementedError

    def stop(self):
        self.stopping = True
        self.sock.close()
