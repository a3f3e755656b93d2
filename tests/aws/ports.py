"""Ports for the daemons the AWS suites start, chosen as sluice-testkit's `free_port` chooses
(testkit/src/lib.rs says why): at random from up to 20,000 ports below the kernel's ephemeral
range, where the ports of bind(0) and of outbound connections by the tests running beside these
are not drawn, so nothing else takes the port before sluiced binds it (CI saw sluiced fail with
"Address already in use" on a bind(0) port). No dependencies: `with-sluiced.sh` runs it with
any python3.

    python3 tests/aws/ports.py N     prints N free ports on one line
"""
import random
import socket
import sys


def free_port():
    """A port nobody listens on now."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    span = min(20000, ephemeral_low - 1024)
    while True:
        port = ephemeral_low - 1 - random.randrange(span)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            # Python sets no SO_REUSEADDR: a port a connection lingers on in TIME_WAIT fails
            # this bind, as it would fail a listener's that sets SO_REUSEPORT alone.
            return port


def free_ports(count):
    """`count` different free ports."""
    ports = set()
    while len(ports) < count:
        ports.add(free_port())
    return list(ports)


if __name__ == "__main__":
    print(*free_ports(int(sys.argv[1])))
