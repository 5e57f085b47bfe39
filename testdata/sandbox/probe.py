#!/usr/bin/python3
"""Escape attempts run as a build step by tests/e2e/test_sandbox_attacks.sh.

  probe.py HOST_PID HOST_DIR [ATTACK[=TARGET]...]

Each attack is one function below that returns a short description of what
it got through to, or raises OSError with the kernel's answer. One line per
attack on stdout:

  probe: NAME: refused ERRNO_NAME (strerror)
  probe: NAME: ALLOWED what it got

The probe always exits 0: the test judges the lines. Standard library only
(the hostile base has Debian's python3); system call numbers are x86_64's.
"""

import ctypes
import errno
import os
import socket
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR_KEYCTL, NR_BPF, NR_PROCESS_VM_READV = 250, 321, 310
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
PTRACE_ATTACH, PTRACE_DETACH = 16, 17


def check(ret):
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret


def dev_read():
    """char 1:8 from the hostile layer: the host's urandom"""
    with open("/opt/hostile/rnd", "rb") as f:
        return "read %d bytes" % len(f.read(16))


def dev_write():
    """block 7:0 from the hostile layer: the host's first loop disk"""
    fd = os.open("/opt/hostile/loop0", os.O_RDWR)
    os.close(fd)
    return "opened read-write"


def dev_mknod():
    """a device node made by the step itself"""
    path = "/tmp/probe-null"
    os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3))
    # no O_CREAT: single-id mode's no-op mknod must not pass for a file
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, b"x")
    os.close(fd)
    return "made and wrote char 1:3"


def af_packet():
    """a packet socket: every frame on the host's interfaces"""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.close()
    return "opened AF_PACKET"


def raw_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.close()
    return "opened SOCK_RAW"


def keyctl():
    """the user keyring (KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING)"""
    return "keyring id %d" % check(libc.syscall(NR_KEYCTL, 0, -4, 0))


def bpf():
    """BPF_MAP_CREATE of a one-entry array map"""
    attr = struct.pack("IIII", 2, 4, 4, 1) + bytes(112)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = check(libc.syscall(NR_BPF, 0, buf, len(attr)))
    os.close(fd)
    return "created a map"


def unshare_user():
    check(libc.unshare(CLONE_NEWUSER))
    return "new user namespace"


def mount_tmpfs():
    check(libc.mount(b"none", b"/mnt", b"tmpfs", 0, None))
    return "mounted tmpfs on /mnt"


def ptrace_host(pid):
    """a process the test started on the host"""
    check(libc.ptrace(PTRACE_ATTACH, pid, None, None))
    libc.ptrace(PTRACE_DETACH, pid, None, None)
    return "attached to host pid %d" % pid


def ptrace_init():
    """the sandbox's pid 1, which kiln runs"""
    check(libc.ptrace(PTRACE_ATTACH, 1, None, None))
    libc.ptrace(PTRACE_DETACH, 1, None, None)
    return "attached to pid 1"


def proc_root_write(host_dir):
    """a file outside the rootfs, through /proc/1/root"""
    path = "/proc/1/root" + host_dir + "/pwned"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"pwned\n")
    os.close(fd)
    return "wrote " + path


def loopback_service(target):
    """a host loopback service the spec does not name (HOST:PORT)"""
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10):
        return "connected to " + target


def abstract_socket(name):
    """an abstract unix socket the test opened on the host"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect("\0" + name)
        return "connected, read %r" % s.recv(64)


def icmp_echo():
    """what still works: ping over an ICMP datagram socket, no CAP_NET_RAW"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP) as s:
        s.settimeout(10)
        s.sendto(bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"kiln", ("127.0.0.1", 0))
        reply = s.recvfrom(64)[0]
        if reply[0] != 0:
            raise OSError(errno.EPROTO, "ICMP type %d, not an echo reply" % reply[0])
        return "echo reply from 127.0.0.1"


def main():
    host_pid, host_dir = int(sys.argv[1]), sys.argv[2]
    # NAME=ARG hands an attack its target
    args = dict(a.split("=", 1) for a in sys.argv[3:] if "=" in a)
    attacks = {
        "dev_read": dev_read,
        "dev_write": dev_write,
        "dev_mknod": dev_mknod,
        "af_packet": af_packet,
        "raw_socket": raw_socket,
        "keyctl": keyctl,
        "bpf": bpf,
        "unshare_user": unshare_user,
        "mount": mount_tmpfs,
        "ptrace_host": lambda: ptrace_host(host_pid),
        "ptrace_init": ptrace_init,
        "proc_root_write": lambda: proc_root_write(host_dir),
        "loopback_service": lambda: loopback_service(args["loopback_service"]),
        "abstract_socket": lambda: abstract_socket(args["abstract_socket"]),
        "icmp_echo": icmp_echo,
    }
    for name in [a.split("=", 1)[0] for a in sys.argv[3:]] or attacks:
        try:
            got = attacks[name]()
        except OSError as e:
            print("probe: %s: refused %s (%s)" % (name, errno.errorcode.get(e.errno, e.errno),
                                                  e.strerror), flush=True)
        else:
            print("probe: %s: ALLOWED %s" % (name, got), flush=True)


if __name__ == "__main__":
    main()
