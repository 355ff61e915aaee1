"""A serve client written outside the project's C#: speaks the wire protocol (docs/serve-protocol.md) from Python,
with its own memory (ctypes) for ioctl arguments. Used by ServeLifetimeTests.

usage: wire_client.py SOCKET map-and-exit | fork-child
"""
import ctypes, os, socket, struct, sys

REQ_MAGIC, VERSION = 0x514C4656, 1
HELLO, OPEN, IOCTL = 1, 2, 16
SET_CONTAINER, SET_IOMMU, MAP_DMA, GET_API_VERSION = 0x3B68, 0x3B66, 0x3B71, 0x3B64
seq = 0


def inode(s):
    return int(os.readlink(f"/proc/self/fd/{s.fileno()}")[8:-1])


def call(s, op, payload):
    global seq
    seq += 1
    s.sendall(struct.pack("<IHHIiQ", REQ_MAGIC, VERSION, op, len(payload), os.getpid(), seq) + payload)
    head = b""
    while len(head) < 24:
        chunk = s.recv(24 - len(head))
        if not chunk:
            raise SystemExit("server closed the connection")
        head += chunk
    magic, version, rop, length, flags, result = struct.unpack("<IHHIIq", head)
    body = b""
    while len(body) < length:
        body += s.recv(length - len(body))
    return result


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def open_file(path, name):
    s = connect(path)
    r = call(s, OPEN, struct.pack("<IIQ", 2, 0, inode(s)) + name.encode() + b"\0")
    assert r == 0, f"OPEN {name}: {r}"
    return s


def main():
    path, mode = sys.argv[1], sys.argv[2]
    session = connect(path)
    assert call(session, HELLO, struct.pack("<IIQ", 1, 0, inode(session))) == 0
    container = open_file(path, "/dev/vfio/vfio")
    group = open_file(path, "/dev/vfio/7")
    fd = ctypes.c_int(container.fileno())
    assert call(group, IOCTL, struct.pack("<IIQ", SET_CONTAINER, 0, ctypes.addressof(fd))) == 0
    assert call(container, IOCTL, struct.pack("<IIQ", SET_IOMMU, 0, 3)) == 0
    if mode == "map-and-exit":
        size = 1 << 20
        buf = ctypes.create_string_buffer(size + 4096)
        vaddr = (ctypes.addressof(buf) + 4095) & ~4095
        arg = ctypes.create_string_buffer(struct.pack("<IIQQQ", 32, 3, vaddr, 0x100000, size))
        r = call(container, IOCTL, struct.pack("<IIQ", MAP_DMA, 0, ctypes.addressof(arg)))
        print(f"map {r}", flush=True)
        sys.stdin.readline()  # the test looks at the model, then lets us exit
        os._exit(0)
    if mode == "fork-child":
        pid = os.fork()
        if pid == 0:
            # The child calls on the inherited container connection with its own pid: the server adopts it.
            r = call(container, IOCTL, struct.pack("<IIQ", GET_API_VERSION, 0, 0))
            print(f"child {os.getpid()} api {r}", flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print(f"parent {os.getpid()}", flush=True)
        sys.stdin.readline()
        os._exit(0)


main()
