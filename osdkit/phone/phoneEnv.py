"""Build (once) the emulated-phone environment that phoneCheck.py runs .pte files in.

    python phoneEnv.py [--cache DIR]        # default ~/.cache/osd-phone-check, or $OSD_PHONE_CHECK_CACHE

What it holds: Debian's arm64 CPython 3.11 and the C libraries it needs (fetched with `apt-get download`,
unpacked with `dpkg -x`, never installed), the app runtime's version of ExecuTorch (1.0.1) with torch
2.9.1 (the runtime links libtorch), numpy and typing-extensions, as PyPI's manylinux aarch64 wheels
(installed with `pip --target` from this side), and one root folder per emulated CPU whose
/proc/cpuinfo reads like that phone's. About 0.6 GB, built in about a minute. System-wide it needs
only Debian's qemu-user-static package and the arm64 architecture entry; run as root, it adds both
(one `apt-get update`).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from osdkit.export.exportCore import ExportError

CACHE_VARIABLE = "OSD_PHONE_CHECK_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "osd-phone-check"
QEMU = "qemu-aarch64-static"
GUEST_PYTHON = "usr/bin/python3.11"
DEBIAN_PACKAGES = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6",
                   "libstdc++6", "libgcc-s1", "libgomp1", "zlib1g", "libffi8", "libexpat1", "libbz2-1.0",
                   "liblzma5", "libssl3", "libuuid1")
# The app's runtime version (executorch-android 1.0.1) as a PyPI wheel, the torch it was built with
# (the runtime links libtorch), and what `import torch` needs to run it; the cpuinfo fix in
# phoneGuest.py is written for exactly these two first pins.
WHEELS = ("executorch==1.0.1", "torch==2.9.1", "numpy==2.4.6", "typing-extensions==4.16.0")
WHEEL_PLATFORM = ("--platform", "manylinux_2_28_aarch64", "--python-version", "3.11",
                  "--only-binary=:all:", "--no-deps")
# /proc/cpuinfo as such phones show it (arm64 kernels). The runtime's cpuinfo takes the ISA from
# AT_HWCAP (set by QEMU's -cpu model) and the core type (MIDR: implementer, part, ...) from this text.
CPUINFO = {
    "cortex-a53": ("fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid", "0x0", "0xd03", "4"),
    "cortex-a76": ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
                   "lrcpc dcpop asimddp", "0x4", "0xd0b", "1"),
}
N_CORES_LISTED = 8


def cache_dir(path=None):
    """The cache folder: `path`, else $OSD_PHONE_CHECK_CACHE, else ~/.cache/osd-phone-check."""
    return Path(path or os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE).expanduser()


def env_dir(cache=None):
    """Where the environment for the pinned runtime and torch lives (other pins: rebuilt in place)."""
    return cache_dir(cache) / ("env-" + "-".join(w.split("==")[1] for w in WHEELS[:2]))


def manifest(cache=None):
    """The finished environment's manifest, or None when it is not built."""
    path = env_dir(cache) / "manifest.json"
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if found.get("wheels") == list(WHEELS) else None


def missing_reason(cache=None):
    """Why the phone check cannot run here (one line), or None when it can."""
    if not shutil.which(QEMU):
        return f"{QEMU} not found (apt-get install qemu-user-static)"
    if manifest(cache) is None:
        return f"no phone environment in {env_dir(cache)} (python phoneEnv.py builds it, ~0.6 GB)"
    return None


def cpuinfo_text(cpu):
    features, variant, part, revision = CPUINFO[cpu]
    block = (f"BogoMIPS\t: 38.40\nFeatures\t: {features}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
             f"CPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {revision}\n\n")
    return "".join(f"processor\t: {i}\n{block}" for i in range(N_CORES_LISTED))


def guest_command(cpu, cache=None):
    """argv that starts the phone's python3.11 on emulated `cpu` (add the script and its arguments)."""
    root = env_dir(cache) / "cpus" / cpu
    return [QEMU, "-cpu", cpu, "-L", str(root), str(root / GUEST_PYTHON), "-I", "-S"]


def _run(step, argv, **kwargs):
    """Run a build command; ExportError with its last output line when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        lines = [ln for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {result.returncode}"
        raise ExportError(f"phone environment: {step} failed: {last}")
    return result.stdout


def ensure_system(log=print):
    """Debian's qemu-user-static and the arm64 architecture entry: added as root (one apt-get update),
    else ExportError saying what to run. Nothing else is installed system-wide."""
    arm64 = "arm64" in _run("dpkg architectures", ["dpkg", "--print-foreign-architectures"]).split()
    qemu = shutil.which(QEMU) is not None
    if arm64 and qemu:
        return
    if os.geteuid() != 0:
        raise ExportError("phone environment needs, once, as root: dpkg --add-architecture arm64 && "
                          "apt-get update && apt-get install qemu-user-static")
    if not arm64:
        log("phone environment: adding Debian's arm64 architecture (dpkg --add-architecture arm64)")
        _run("dpkg --add-architecture arm64", ["dpkg", "--add-architecture", "arm64"])
    log("phone environment: apt-get update" + ("" if qemu else " and install qemu-user-static"))
    _run("apt-get update", ["apt-get", "update", "-q"])
    if not qemu:
        _run("apt-get install qemu-user-static", ["apt-get", "install", "-y", "-q", "qemu-user-static"],
             env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def _download_debs(debs):
    """`apt-get download` the arm64 packages (no install); refresh stale package lists once as root."""
    names = [f"{p}:arm64" for p in DEBIAN_PACKAGES]
    try:
        _run("apt-get download", ["apt-get", "download", *names], cwd=debs)
    except ExportError:
        if os.geteuid() != 0:
            raise
        _run("apt-get update", ["apt-get", "update", "-q"])  # lists older than the mirror
        _run("apt-get download", ["apt-get", "download", *names], cwd=debs)


def folder_bytes(folder):
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(folder) for f in files)


def _build_into(tmp, start, log):
    """The build steps, into the empty folder `tmp`; return the manifest (also written there)."""
    debs, root, wheels = tmp / "debs", tmp / "root", tmp / "wheels"
    for folder in (debs, root, wheels):
        folder.mkdir()
    log(f"phone environment: [1/5] downloading {len(DEBIAN_PACKAGES)} Debian arm64 packages")
    _download_debs(debs)
    log("phone environment: [2/5] unpacking them (dpkg -x, nothing installed)")
    versions = {}
    for deb in sorted(debs.glob("*.deb")):
        _run(f"dpkg -x {deb.name}", ["dpkg", "-x", str(deb), str(root)])
        versions[deb.name.split("_")[0]] = deb.name.split("_")[1]
    log(f"phone environment: [3/5] downloading {len(WHEELS)} aarch64 wheels (~115 MB)")
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    _run("pip download", [*pip, "download", "-d", str(wheels), *WHEEL_PLATFORM, *WHEELS])
    log("phone environment: [4/5] installing them with pip --target (~0.5 GB)")
    _run("pip install", [*pip, "install", "--target", str(tmp / "site"), *WHEEL_PLATFORM,
                         *sorted(map(str, wheels.glob("*.whl")))])
    if sys.version_info[:2] == (3, 11):  # the guest's bytecode too: saves minutes of emulated compiling
        _run("compileall", [sys.executable, "-m", "compileall", "-q", "-j0", str(tmp / "site")])
    for cpu in CPUINFO:  # one root per CPU: links to the shared files, and that CPU's /proc/cpuinfo
        cpu_root = tmp / "cpus" / cpu
        (cpu_root / "proc").mkdir(parents=True)
        (cpu_root / "proc" / "cpuinfo").write_text(cpuinfo_text(cpu))
        for entry in root.iterdir():
            (cpu_root / entry.name).symlink_to(Path("..", "..", "root", entry.name))
    shutil.rmtree(debs)
    shutil.rmtree(wheels)
    log("phone environment: [5/5] starting python3.11 on an emulated cortex-a53")
    probe = "import sys, platform; print(platform.machine(), sys.version.split()[0])"
    machine = _run("emulated python", [QEMU, "-cpu", "cortex-a53", "-L", str(root),
                                       str(root / GUEST_PYTHON), "-I", "-S", "-c", probe]).split()
    if machine[:1] != ["aarch64"]:
        raise ExportError(f"phone environment: emulated python reports {machine}, expected aarch64")
    built = {"wheels": list(WHEELS), "debian": versions, "python": machine[1],
             "qemu": _run("qemu version", [QEMU, "--version"]).splitlines()[0],
             "build_seconds": round(time.perf_counter() - start, 1), "size_bytes": folder_bytes(tmp)}
    (tmp / "manifest.json").write_text(json.dumps(built, indent=2) + "\n")
    return built


def build(cache=None, log=print):
    """Build the environment into the cache (reused when already there); return its manifest."""
    found = manifest(cache)
    if found and shutil.which(QEMU):
        log(f"phone environment: ready in {env_dir(cache)}")
        return found
    ensure_system(log)
    if found:
        return found
    start, target = time.perf_counter(), env_dir(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        built = _build_into(tmp, start, log)
        shutil.rmtree(target, ignore_errors=True)  # an unfinished one (no manifest) from before
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"phone environment: built in {built['build_seconds']:.0f} s, "
        f"{built['size_bytes'] / 2**30:.2f} GiB in {target}")
    return built
