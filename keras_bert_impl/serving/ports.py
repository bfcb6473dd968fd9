"""Refuse a listening port that another process holds.

gRPC binds with SO_REUSEPORT by default, so a second server on a taken port would start
and share it with the first (requests landing on either at random). tensorflow_model_server
fails to start when it cannot bind ("Failed to BuildAndStart gRPC server",
model_servers/server.cc); kbi-serve checks both ports before loading any model, binds
gRPC with grpc.so_reuseport=0 and REST without SO_REUSEPORT, so a taken port ends the
start with one line naming it.
"""

import errno
import socket


def ensure_free(host, port, flag):
    """OSError naming `flag` when `host:port` cannot be bound (port 0 is always free)."""
    if not port:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"--host={host}: cannot resolve: {error}") from error
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # SO_REUSEADDR as servers set it: a port in TIME_WAIT is free, a listening one not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            reason = (
                "already in use" if error.errno == errno.EADDRINUSE else error.strerror
            )
            raise OSError(
                f"Failed to start server: {flag}={port}: cannot bind {host}:{port}: {reason}"
            ) from error
