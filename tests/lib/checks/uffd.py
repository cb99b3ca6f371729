"""What this kernel's userfaultfd offers, for the integration tests to decide what to exercise."""
import ctypes
import fcntl
import os
import struct


def features():
    """Not a check: print the feature bits UFFDIO_API reports on a fresh userfaultfd (syscall, else
    /dev/userfaultfd; 0 when neither opens)."""
    # UFFDIO_API on a fresh userfaultfd: which features does this kernel offer?
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(323, os.O_CLOEXEC | 1)   # SYS_userfaultfd, UFFD_USER_MODE_ONLY
    if fd < 0:
        try:
            dev = os.open("/dev/userfaultfd", os.O_RDWR)
            fd = fcntl.ioctl(dev, 0xAA00, os.O_CLOEXEC)
        except OSError:
            print(0); raise SystemExit
    buf = bytearray(struct.pack("QQQ", 0xAA, 0, 0))
    fcntl.ioctl(fd, 0xc018aa3f, buf)
    print(struct.unpack("QQQ", bytes(buf))[1])
