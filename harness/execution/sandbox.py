"""The model process's sandbox: bubblewrap (`bwrap`), where the machine has it and allows namespaces.

The child runs in its own user, PID, mount, network, IPC and UTS namespaces, as an unprivileged user inside them
(no capability, CAP_SYS_PTRACE included, even when the harness runs as root), and sees a filesystem made of:

* read-only: the system's programs and libraries (/usr and its links), the Python installation and environment,
  the harness's own code (its task data hidden under an empty folder), the model folder;
* read-only: the job's inputs and job.json; writable: the job folder (outputs, home, caches) and a private /tmp;
* a /proc of its own PID namespace (no process of the organizer is visible in it), a minimal /dev.

Nothing else of the organizer's machine is there: not the organizer's home, tokens, other entries, the results
store or the task data. When the job's first process ends, the PID namespace ends and the kernel kills every
process left in it (a daemonised `setsid()` grandchild included). Where bubblewrap is missing or cannot make
namespaces, `sandbox()` says why and the records say "not enforced".
"""
from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import harness
import tasks

NOBODY = 65534  # the child's uid and gid inside its user namespace: no capabilities there
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The few files of /etc that programs read to start (the dynamic linker's cache, the time zone, SSL roots);
# never /etc as a whole (it holds the machine's accounts and any secrets kept there).
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/ssl/certs",
        "/etc/alternatives", "/etc/nsswitch.conf", "/etc/hosts", "/etc/resolv.conf")
# CPU topology (thread pools size themselves from it); nothing else of /sys.
_SYS = ("/sys/devices/system/cpu", "/sys/fs/cgroup")


@functools.lru_cache(maxsize=None)
def sandbox() -> Tuple[Optional[str], str]:
    """(the bwrap executable, or None; why not, when None)."""
    if not sys.platform.startswith("linux"):
        return None, f"bubblewrap needs Linux namespaces; this is {sys.platform}"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bubblewrap (`bwrap`, Debian package bubblewrap) is not installed"
    probe = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        result = subprocess.run(probe, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"bubblewrap could not run: {e}"
    if result.returncode != 0:
        why = result.stderr.decode("utf-8", "replace").strip() or f"exit code {result.returncode}"
        return None, f"bubblewrap cannot create namespaces here: {why}"
    return bwrap, ""


def _python_roots() -> List[str]:
    """The Python installation and environment, where the harness and its task kinds are imported from, and the
    organizer's PYTHONPATH folders (code the child imports, e.g. a backend module kept outside the package: the
    organizer keeps results and references out of them)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    roots |= {os.path.dirname(os.path.abspath(harness.__file__)), os.path.dirname(os.path.abspath(tasks.__file__))}
    roots |= {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    return sorted(r for r in roots if r and os.path.isdir(r))


def _task_data_dirs() -> List[str]:
    """Folders of the harness's packages that hold task data (references): hidden in the sandbox."""
    data = os.path.join(os.path.dirname(os.path.abspath(tasks.__file__)), "data")
    return [data] if os.path.isdir(data) else []


def _ro(paths: Sequence[str], option: str = "--ro-bind-try") -> List[str]:
    out: List[str] = []
    for path in paths:
        out += [option, path, path]
    return out


def model_paths(location: Optional[str]) -> List[str]:
    """The model folder and, for a hub cache snapshot (whose files link into ../../blobs), its repo folder."""
    if not location or not os.path.isdir(location):
        return []
    real = os.path.realpath(location)
    parts = Path(real).parts
    if len(parts) >= 3 and parts[-2] == "snapshots":
        return [str(Path(real).parents[1])]
    return [real] + ([location] if os.path.abspath(location) != real else [])


def command(bwrap: str, job_dir: Path, inputs: Sequence[Path], model_location: Optional[str],
            share_network: bool = False) -> List[str]:
    """The bwrap argv prefix for one job (the child's own argv follows it). `share_network`: a remote endpoint's
    job, which must reach its host (everything else stays sandboxed)."""
    job = str(job_dir)
    network = [] if share_network else ["--unshare-net"]
    argv = [bwrap, "--unshare-user", "--unshare-pid", *network, "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--uid", str(NOBODY), "--gid", str(NOBODY), "--die-with-parent",
            "--new-session", "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm",
            "--tmpfs", "/tmp"]
    argv += _ro([p for p in _SYSTEM if os.path.lexists(p)])
    argv += _ro(_ETC)
    argv += _ro(_SYS)
    argv += _ro(_python_roots())
    for data in _task_data_dirs():
        argv += ["--tmpfs", data]
    argv += _ro(model_paths(model_location))
    devices = sorted(glob.glob("/dev/nvidia*"))
    for device in devices:  # the GPU, where there is one
        argv += ["--dev-bind", device, device]
    if devices:  # the driver's libraries find the GPU's PCI device through /sys (read-only)
        argv += _ro(["/sys/bus/pci", "/sys/devices"])
    argv += ["--bind", job, job]
    argv += _ro([str(job_dir / "job.json")] + [str(p) for p in inputs], "--ro-bind")
    argv += ["--chdir", str(job_dir / "home"), "--"]
    return argv


# ---------------------------------------------------------------- a memory cap per job (a cgroup of its own)


def _mountinfo() -> List[Tuple[str, str, str]]:
    """(mount point, file system type, super options) of each mount."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split(" - ")
        if len(fields) == 2 and len(fields[0].split()) >= 5 and len(fields[1].split()) >= 3:
            fstype, _, options = fields[1].split()[:3]
            out.append((fields[0].split()[4], fstype, options))
    return out


def _own_cgroup(controller: str) -> Optional[str]:
    """This process's cgroup path in the hierarchy of `controller` ("" for cgroup v2's unified one)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers.split(",") == [controller] or (controller == "" and controllers == ""):
            return path
    return None


@functools.lru_cache(maxsize=None)
def memory_cgroups() -> Tuple[Optional[Tuple[Path, str]], str]:
    """((folder under which a job's cgroup is made, "v1" or "v2"), "") where this process may make cgroups with a
    memory limit, else (None, why not)."""
    if not sys.platform.startswith("linux"):
        return None, f"cgroups need Linux; this is {sys.platform}"
    for mount, fstype, options in _mountinfo():
        if fstype == "cgroup2":
            path = _own_cgroup("")
            base = Path(mount + (path or "/"))
            if path is not None and "memory" in _read(base / "cgroup.subtree_control").split() \
                    and _can_make(base):
                return (base, "v2"), ""
        elif fstype == "cgroup" and "memory" in options.split(","):
            path = _own_cgroup("memory")
            base = Path(mount + (path or "/"))
            if path is not None and _can_make(base):
                return (base, "v1"), ""
    return None, ("no writable cgroup with the memory controller: cgroup v2 without memory delegated to this "
                  "process's cgroup, and no writable cgroup v1 memory hierarchy")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _can_make(base: Path) -> bool:
    probe = base / f"harness-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


class MemoryCap:
    """A cgroup of the job's own with `limit` bytes of memory; the child joins it before it runs anything
    (`join`, as Popen's preexec_fn), everything it starts stays in it, and the kernel's OOM killer acts inside it."""

    def __init__(self, base: Path, version: str, limit: int, name: str):
        self.folder, self.version, self.limit = base / name, version, int(limit)
        self.folder.mkdir()
        try:
            if version == "v2":
                (self.folder / "memory.max").write_text(str(self.limit))
                if (self.folder / "memory.swap.max").exists():  # no swapping past the cap
                    (self.folder / "memory.swap.max").write_text("0")
            else:
                (self.folder / "memory.limit_in_bytes").write_text(str(self.limit))
        except OSError:
            self.remove()
            raise
        self._procs = str(self.folder / "cgroup.procs")

    def join(self) -> None:
        """In the forked child, before exec: only os calls (no locks of the parent's threads are taken)."""
        fd = os.open(self._procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")  # "0": the writing process itself
        finally:
            os.close(fd)

    def oom_killed(self) -> bool:
        """Whether the OOM killer ended a process of this cgroup."""
        if self.version == "v2":
            text = _read(self.folder / "memory.events")
        else:
            text = _read(self.folder / "memory.oom_control")
        return any(line.split()[:1] == ["oom_kill"] and line.split()[1] != "0" for line in text.splitlines())

    def remove(self) -> None:
        """Once its processes are gone (the kernel may take a moment to reap a dying PID namespace)."""
        for _ in range(100):
            try:
                self.folder.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


def physical_memory() -> Optional[int]:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
