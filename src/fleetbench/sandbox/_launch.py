"""Sandbox launcher: ``python -I -S _launch.py CONFIG_JSON`` (stdlib only, never imported).

It runs in a fresh session started by the parent and builds the boundary before the
untrusted program starts, so nothing runs in the parent between fork and exec:

1. new namespaces: network (no interface but a down loopback), mount, pid, IPC, UTS; as a
   non-root user a user namespace first (identity-mapped, so the program keeps no
   capabilities after exec). Each one that cannot be created is reported as a warning.
2. in the mount namespace (propagation private, so nothing leaks to the host): an empty
   tmpfs over each hidden directory (home directories, /tmp, /run and other places where
   secrets and the sockets of local services live) and over directories the sandbox user
   cannot traverse, with only the interpreter bound back in; a size-capped tmpfs as the
   work directory; then every mount read-only and nosuid except the work directory.
3. fork: the child is pid 1 of the new pid namespace (a fresh ``/proc``); it forks the
   program, which sets rlimits, drops to the sandbox uid/gid (root only), sets
   no_new_privs and the parent-death signal (after setuid, which clears it), and execs.
4. pid 1 reaps everything and, when the program exits, reports its status as one JSON line
   on the status pipe and exits; the kernel then kills whatever is left in the namespace.

Events on the status pipe: ``{"event": "setup", "warnings": [...], "isolation": [...]}`` and
``{"event": "exit", "returncode": int | None, "signal": int | None, "cpu_s": float, ...}``.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import traceback
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
_KEEP_FLAGS = {"nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
               "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}  # fmt: skip

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]  # fmt: skip
_libc.unshare.argtypes = [ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]  # fmt: skip


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:  # fmt: skip
    enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {target}")


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError:
        pass


def _emit(fd: int, event: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(event) + "\n").encode())


def _unshare(root: bool, warnings: list[str]) -> set[str]:
    """Create the namespaces that are permitted; return the names of those created."""
    wanted = {"net": CLONE_NEWNET, "mount": CLONE_NEWNS, "pid": CLONE_NEWPID,
              "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS}  # fmt: skip
    done: set[str] = set()
    if not root:
        uid, gid = os.getuid(), os.getgid()
        if _libc.unshare(CLONE_NEWUSER) != 0:
            warnings.append("no user namespace (unprivileged user namespaces disabled?): "
                            "network, mounts and pids are not isolated")  # fmt: skip
            return done
        done.add("user")
        try:  # identity map: the program's uid is not 0 inside, so exec drops capabilities
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                               ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
                with open(f"/proc/self/{name}", "w") as handle:
                    handle.write(text)
        except OSError as exc:
            warnings.append(f"user namespace id mapping failed: {exc}")
    if _libc.unshare(sum(wanted.values())) == 0:
        return done | set(wanted)
    for name, flag in wanted.items():
        if _libc.unshare(flag) == 0:
            done.add(name)
        else:
            warnings.append(f"no {name} namespace: {os.strerror(ctypes.get_errno())}")
    return done


def _mountinfo() -> list[tuple[str, set[str]]]:
    """(mount point, per-mount options) in mount order, octal escapes decoded."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape").encode("latin-1").decode()
            out.append((point, set(fields[5].split(","))))
    return out


def _hidden_ancestor(path: str) -> str | None:
    """The shallowest directory on ``path`` that other users cannot traverse, if any."""
    current = "/"
    for part in path.strip("/").split("/"):
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _masks(cfg: dict[str, Any]) -> list[str]:
    """Directories to replace by an empty tmpfs: the configured ones (secrets, sockets of
    local services), plus, for the sandbox uid, any it could not traverse to the interpreter."""
    found = {os.path.realpath(p) for p in cfg["hidden_paths"] if os.path.isdir(p)}
    if cfg["uid"] is not None:
        found |= {a for p in cfg["keep_paths"] if (a := _hidden_ancestor(p))}
    found.discard("/")
    ordered = sorted(found, key=len)
    return [m for i, m in enumerate(ordered) if not any(_under(m, o) for o in ordered[:i])]


def _setup_mounts(cfg: dict[str, Any], warnings: list[str]) -> None:
    workdir: str = cfg["workdir"]
    source = None
    if cfg["program"] is not None:
        with open(os.path.join(workdir, cfg["program"]), "rb") as handle:
            source = handle.read()
    # A kept work directory (a repository task's workspace) is bound back in after the
    # masks, so it stays writable and its files outlive the sandbox.
    bind = os.open(workdir, os.O_PATH | os.O_DIRECTORY) if cfg["bind_workdir"] else None
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    masks = _masks(cfg)
    keep = [p for p in cfg["keep_paths"] if any(_under(p, m) for m in masks)]
    fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in keep}
    for mask in masks:
        _mount("tmpfs", mask, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
    for path, fd in fds.items():  # the interpreter comes back, read-only like the rest
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)
    os.makedirs(workdir, mode=0o700, exist_ok=True)  # gone if its parent was masked
    if bind is not None:
        _mount(f"/proc/self/fd/{bind}", workdir, None, MS_BIND)
        os.close(bind)
    else:
        owner = "" if cfg["uid"] is None else f",uid={cfg['uid']},gid={cfg['gid']}"
        _mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={cfg['workdir_bytes']},nr_inodes=4096,mode=0700{owner}")  # fmt: skip
    if source is not None:
        program = os.path.join(workdir, cfg["program"])
        with open(program, "wb") as handle:
            handle.write(source)
        if cfg["uid"] is not None:
            os.chown(program, cfg["uid"], cfg["gid"])
    failed = []
    for point, opts in _mountinfo():
        hidden = any(_under(point, m) and point != m for m in masks)
        if point == workdir or (hidden and not any(_under(point, k) for k in keep)):
            continue  # the work directory stays writable; covered mounts are unreachable
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        flags |= sum(flag for name, flag in _KEEP_FLAGS.items() if name in opts)
        try:
            _mount(None, point, None, flags)
        except OSError:
            failed.append(point)
    if failed:
        warnings.append(f"could not make read-only: {', '.join(failed[:5])}")


def _exec_program(cfg: dict[str, Any]) -> None:
    os.chdir(cfg["workdir"])
    _write("/proc/self/oom_score_adj", "1000")  # first victim of any memory shortage
    for res, soft, hard in cfg["rlimits"]:
        resource.setrlimit(res, (soft, hard))
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(cfg["uid"])
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid: a credential change clears it
    os.umask(0o077)
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])


def _init(cfg: dict[str, Any], spaces: set[str], status: int) -> None:
    """pid 1 of the sandbox: start the program, reap everything, report, exit."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if "pid" in spaces and "mount" in spaces:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    elif "pid" not in spaces:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans come back to us to be killed
    child = os.fork()
    if child == 0:
        try:
            _exec_program(cfg)
        except BaseException as exc:
            _emit(status, {"event": "exec_error", "message": str(exc)})
        os._exit(127)
    while True:
        pid, wstatus = os.wait()
        if pid == child:
            break
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    _emit(status, {
        "event": "exit",
        "returncode": os.waitstatus_to_exitcode(wstatus) if os.WIFEXITED(wstatus) else None,
        "signal": os.WTERMSIG(wstatus) if os.WIFSIGNALED(wstatus) else None,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_kb": usage.ru_maxrss,
    })  # fmt: skip
    if "pid" not in spaces:  # no namespace to tear down: kill the leftovers ourselves
        if cfg["uid"] is not None:
            killer = os.fork()
            if killer == 0:
                os.setuid(cfg["uid"])
                os.kill(-1, signal.SIGKILL)  # every process of the (dedicated) sandbox uid
                os._exit(0)
            os.waitpid(killer, 0)
        os.killpg(0, signal.SIGKILL)
    os._exit(0)


def main() -> None:
    cfg: dict[str, Any] = json.loads(sys.argv[1])
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != cfg["parent_pid"]:
        os._exit(125)  # the parent died before we could arm the death signal
    status: int = cfg["status_fd"]
    os.set_inheritable(status, False)  # pid 1 keeps it across fork; the program never sees it
    warnings: list[str] = []
    root = os.geteuid() == 0
    for procs in cfg["cgroup_procs"]:  # join before anything forks, so nothing escapes it
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
    if root:  # the program, not its keepers, is what the OOM killer should pick
        _write("/proc/self/oom_score_adj", "-1000")
    spaces = _unshare(root, warnings) if cfg["namespaces"] else set()
    if not cfg["namespaces"]:
        warnings.append("namespaces disabled by configuration")
    if "uts" in spaces:
        _libc.sethostname(b"sandbox", 7)  # do not leak the host's name
    if "mount" in spaces:
        try:
            _setup_mounts(cfg, warnings)
        except OSError as exc:
            spaces.discard("mount")
            warnings.append(f"filesystem not isolated: {exc}")
    if "pid" in spaces and "mount" not in spaces:
        warnings.append("no fresh /proc: host processes are visible (not signalable)")
    if cfg["uid"] is None and "mount" not in spaces:
        warnings.append("not root and no mount namespace: the program can write "
                        "wherever the current user can")  # fmt: skip
    if "net" not in spaces:
        warnings.append("network not isolated")
    _emit(status, {"event": "setup", "warnings": warnings, "isolation": sorted(spaces)})
    if cfg["strict"] and warnings:
        os._exit(125)
    pid = os.fork()
    if pid == 0:
        try:
            _init(cfg, spaces, status)
        except BaseException:
            traceback.print_exc()
        os._exit(125)
    os.waitpid(pid, 0)
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        traceback.print_exc()
        os._exit(125)
