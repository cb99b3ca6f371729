#!/usr/bin/env python3
"""Post-copy migrate a TCG guest between two local QEMUs and print QEMU's own
post-copy counters (and, with --pctrace, pctrace's view of the destination).

Installs nothing: it checks for qemu-system-x86_64, a Debian kernel
(linux-image-amd64, or a vmlinuz given with --kernel), busybox-static, cpio
and gcc, and names the missing package.  See docs/results/2026-12-04-qemu-validation.md.
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, glob

HERE = os.path.dirname(os.path.abspath(__file__))


def need(path_or_cmd, pkg):
    ok = os.path.exists(path_or_cmd) if "/" in path_or_cmd else shutil.which(path_or_cmd)
    if not ok:
        sys.exit(f"run.py: {path_or_cmd} missing: apt-get install --no-install-recommends {pkg}")


def find_kernel(arg):
    if arg:
        if not os.path.isfile(arg):
            sys.exit(f"run.py: --kernel {arg}: no such file")
        return arg
    k = sorted(glob.glob("/boot/vmlinuz-*"))
    if not k:
        sys.exit("run.py: no /boot/vmlinuz-*: apt-get install --no-install-recommends linux-image-amd64 "
                 "(or extract one with dpkg-deb -x and pass --kernel)")
    return k[-1]


def build_initramfs(work, mib):
    root = os.path.join(work, "root")
    for d in ("bin", "dev", "proc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
    subprocess.run(["gcc", "-O2", "-static", "-o", os.path.join(root, "touch"),
                    os.path.join(HERE, "touch.c")], check=True)
    with open(os.path.join(root, "init"), "w") as f:
        f.write("#!/bin/busybox sh\n"
                "/bin/busybox mount -t proc proc /proc\n"
                "/bin/busybox mount -t devtmpfs dev /dev\n"
                "exec >/dev/ttyS0 2>&1\n"
                f"exec /touch {mib}\n")
    os.chmod(os.path.join(root, "init"), 0o755)
    img = os.path.join(work, "initrd.cpio")
    files = subprocess.run("find . | sort", shell=True, cwd=root, check=True,
                           capture_output=True).stdout
    with open(img, "wb") as out:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=files,
                       stdout=out, check=True)
    return img


class QMP:
    def __init__(self, path, timeout=60):
        t = time.time()
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                if time.time() - t > timeout:
                    raise
                time.sleep(0.1)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error']}")
            return r["return"]


def qemu(kernel, initrd, mem, name, work, extra):
    qmp = os.path.join(work, name + ".qmp")
    args = ["nice", "-n", "10", "qemu-system-x86_64", "-accel", "tcg", "-m", str(mem),
            "-smp", "1", "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 quiet panic=-1", "-display", "none",
            "-serial", "file:" + os.path.join(work, name + ".log"), "-monitor", "none",
            "-qmp", f"unix:{qmp},server=on,wait=off", "-no-reboot",
            "-name", name + ",debug-threads=on"] + extra
    p = subprocess.Popen(args)
    return p, qmp


def wait_log(path, text, timeout):
    t = time.time()
    while time.time() - t < timeout:
        if os.path.exists(path) and open(path, errors="replace").read().count(text):
            return time.time() - t
        time.sleep(0.2)
    sys.exit(f"run.py: '{text}' not in {path} after {timeout}s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel")
    ap.add_argument("--mem", type=int, default=1200, help="guest MiB")
    ap.add_argument("--touch-mib", type=int, default=1000)
    ap.add_argument("--preempt", action="store_true")
    ap.add_argument("--port", type=int, default=4445)
    ap.add_argument("--precopy-s", type=float, default=0.5, help="precopy time before postcopy")
    ap.add_argument("--pctrace", help="path to pctrace; trace the destination")
    ap.add_argument("--resolve", action="store_true",
                    help="pass -r to pctrace: split fault->running at the resolving ioctl")
    ap.add_argument("--out", required=True, help="directory for logs and JSON")
    a = ap.parse_args()
    need("qemu-system-x86_64", "qemu-system-x86")
    need("/bin/busybox", "busybox-static")
    ld = subprocess.run(["ldd", "/bin/busybox"], capture_output=True, text=True)
    if "not a dynamic executable" not in ld.stdout + ld.stderr:
        sys.exit("run.py: /bin/busybox is dynamic: apt-get install --no-install-recommends busybox-static")
    need("cpio", "cpio")
    need("gcc", "gcc libc6-dev")
    kernel = find_kernel(a.kernel)
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="qemu-postcopy-")
    initrd = build_initramfs(work, a.touch_mib)
    src, sq = qemu(kernel, initrd, a.mem, "src", work, [])
    dst, dq = qemu(kernel, initrd, a.mem, "dst", work, ["-incoming", "defer"])
    tr = None
    try:
        boot = wait_log(os.path.join(work, "src.log"), "TOUCH filled", 300)
        wait_log(os.path.join(work, "src.log"), "TOUCH ", 30)
        time.sleep(2.5)  # a couple of progress lines before migrating
        s, d = QMP(sq), QMP(dq)
        caps = [{"capability": "postcopy-ram", "state": True}]
        if a.preempt:
            caps.append({"capability": "postcopy-preempt", "state": True})
        s.cmd("migrate-set-capabilities", capabilities=caps)
        d.cmd("migrate-set-capabilities",
              capabilities=caps + [{"capability": "postcopy-blocktime", "state": True}])
        s.cmd("migrate-set-parameters", **{"max-bandwidth": 10 << 30,
                                           "max-postcopy-bandwidth": 0})
        d.cmd("migrate-incoming", uri=f"tcp:127.0.0.1:{a.port}")
        if a.pctrace:
            tr = subprocess.Popen(["nice", "-n", "10", a.pctrace, "-p", str(dst.pid),  # nice execs qemu: same pid
                                   "-i", "0", "--json", os.path.join(a.out, "pctrace.json")]
                                  + (["-r"] if a.resolve else []),
                                  stdout=open(os.path.join(a.out, "pctrace.txt"), "w"),
                                  stderr=subprocess.STDOUT)
            time.sleep(3)  # BPF load and attach
        t0 = time.time()
        s.cmd("migrate", uri=f"tcp:127.0.0.1:{a.port}")
        time.sleep(a.precopy_s)
        s.cmd("migrate-start-postcopy")
        t_pc = time.time()
        while True:
            info = s.cmd("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.05)
        t_end = time.time()
        time.sleep(1)
        dinfo = d.cmd("query-migrate")
        # destination guest keeps running: let it print a few lines
        time.sleep(3)
        res = {"source": info, "destination": dinfo, "boot_to_filled_s": boot,
               "migrate_to_complete_s": t_end - t0, "postcopy_to_complete_s": t_end - t_pc,
               "preempt": a.preempt, "touch_mib": a.touch_mib, "mem_mib": a.mem,
               "precopy_s": a.precopy_s}
        if tr:
            tr.send_signal(signal.SIGINT)
            tr.wait(timeout=60)
            tr = None
        for n in ("src", "dst"):
            shutil.copy(os.path.join(work, n + ".log"), os.path.join(a.out, n + ".log"))
        with open(os.path.join(a.out, "qemu.json"), "w") as f:
            json.dump(res, f, indent=1)
        ram = info.get("ram", {})
        print(json.dumps({"status": info.get("status"),
                          "postcopy-requests": ram.get("postcopy-requests"),
                          "postcopy-blocktime_ms": dinfo.get("postcopy-blocktime"),
                          "postcopy-vcpu-blocktime_ms": dinfo.get("postcopy-vcpu-blocktime"),
                          "total-time_ms": info.get("total-time"),
                          "downtime_ms": info.get("downtime"),
                          "postcopy_to_complete_s": round(t_end - t_pc, 3)}))
    finally:
        if tr:
            tr.send_signal(signal.SIGINT)
            tr.wait(timeout=60)
        for p in (src, dst):
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
