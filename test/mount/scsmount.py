"""Helpers and fixtures for the pytest suites that mount scsfs for real
(conftest.py re-exports the fixtures; test files import helpers from here,
under a name no other test directory uses).

Programs come from $SCSFS_BUILD (default <repo>/build).  Users are simulated
by separate HOME directories (XDG_CONFIG_HOME / XDG_DATA_HOME /
XDG_CACHE_HOME under them) and SCSFS_PASSPHRASE_FILE pointing at a 0600 file.

FUSE is required: without /dev/fuse or fusermount3 the tests fail when
CI=true and are skipped otherwise (the check is in the `fuse` fixture).

SCSFS_TEST_BACKEND=gdrive runs the same suites over the gdrive: back end:
one Drive v3 emulator (test/gdrive_emulator.py) on loopback for the whole
session, every user signed in to it, and every Vault's remote a Drive
folder named after its cloud path.  Tests see and edit what the provider
holds through Vault.backing (LocalBacking or DriveBacking, the latter
through the emulator's control actions) and wait for the upload queue with
Vault.uploaded(); only tests about a local folder itself (its disk, its
paths) are marked `local_only` and deselected there.
"""
import errno
import hashlib
import os
import random
import re
import secrets
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

# A shell without job control starts background commands (`test/run` runs the
# local: and gdrive: suites side by side) with SIGINT ignored, and an ignored
# signal stays ignored across exec: the daemons would ignore the SIGINT that
# test_sync sends them (libfuse leaves an ignored signal alone).  A handled
# one is reset to the default at exec, so handle it here.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("SCSFS_BUILD", REPO / "build")).resolve()
SCSFS = BUILD / "src" / "scsfs" / "scsfs"
SCSCTL = BUILD / "src" / "scsctl" / "scsctl"
FUSERMOUNT = shutil.which("fusermount3") or "/usr/bin/fusermount3"

CHUNK = 32768
HEADER = 256
RECORD = CHUNK + 28

TEST_TIMEOUT = int(os.environ.get("SCSFS_TEST_TIMEOUT", "240"))
BACKEND = os.environ.get("SCSFS_TEST_BACKEND", "local")
assert BACKEND in ("local", "gdrive"), f"SCSFS_TEST_BACKEND={BACKEND}: local or gdrive"
EMULATOR = REPO / "test" / "gdrive_emulator.py"


def object_size(plain):
    """Size of the encrypted object holding `plain` bytes (scsfs-format.5)."""
    nrec = max(1, -(-plain // CHUNK))
    return HEADER + nrec * 28 + plain


# ---------------------------------------------------------------- mounts

def _unescape_mountinfo(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mount_entries():
    """(mountpoint, fstype, source) of every mount, without touching them
    (os.path.ismount would stat the mountpoint and could hang on a stuck
    daemon)."""
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            res.append((_unescape_mountinfo(parts[4]), parts[sep + 1],
                        _unescape_mountinfo(parts[sep + 2])))
    return res


def is_mounted(path):
    path = os.path.realpath(str(path))
    return any(mp == path for mp, _, _ in mount_entries())


def fuse_mounts_under(prefix):
    prefix = os.path.realpath(str(prefix))
    return [mp for mp, fs, _ in mount_entries()
            if fs.startswith("fuse") and (mp == prefix or mp.startswith(prefix + "/"))]


def wait_for_mount(path, timeout=30, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_mounted(path):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def daemon_pids(mnt):
    """pids of scsfs processes whose argv names this mountpoint."""
    mnt = str(mnt)
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"scsfs" and \
                any(a.decode(errors="replace").rstrip("/") == mnt.rstrip("/") for a in argv[1:]):
            pids.append(int(d))
    return pids


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


def fusermount_u(mnt, attempts=50):
    """fusermount3 -u with retries (EBUSY right after a close is normal),
    then a lazy unmount.  Returns True if the plain unmount worked."""
    for _ in range(attempts):
        if not is_mounted(mnt):
            return True
        r = subprocess.run([FUSERMOUNT, "-u", str(mnt)], capture_output=True, timeout=30)
        if r.returncode == 0:
            return True
        time.sleep(0.1)
    subprocess.run([FUSERMOUNT, "-uz", str(mnt)], capture_output=True, timeout=30)
    return False


# Every Vault that might have a mount, for the watchdog and the final check.
_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _emergency_abort():
    """Kill every daemon of ours and lazily unmount: a test blocked in a FUSE
    syscall then gets ENOTCONN and fails instead of hanging the suite."""
    with _LIVE_LOCK:
        vaults = list(_LIVE)
    for v in vaults:
        for pid in daemon_pids(v.mnt):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if v.proc is not None and v.proc.poll() is None:
            v.proc.kill()
        subprocess.run([FUSERMOUNT, "-uz", str(v.mnt)], capture_output=True, timeout=30)


@pytest.fixture(autouse=True)
def _watchdog(request):
    marker = request.node.get_closest_marker("timeout")
    limit = marker.args[0] if marker else TEST_TIMEOUT
    fired = []

    def fire():
        fired.append(True)
        _emergency_abort()
    t = threading.Timer(limit, fire)
    t.daemon = True
    t.start()
    yield
    t.cancel()
    if fired:
        pytest.fail(f"test took longer than {limit} s: daemons killed, mounts lazily unmounted")


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): watchdog limit for one test")
    config.addinivalue_line("markers", "local_only: is about the backing folder of a local: "
                            "remote itself (deselected under SCSFS_TEST_BACKEND=gdrive)")
    config.addinivalue_line("markers", "gdrive_only: is about the gdrive: back end itself "
                            "(deselected unless SCSFS_TEST_BACKEND=gdrive)")


def pytest_collection_modifyitems(config, items):
    other = "gdrive_only" if BACKEND == "local" else "local_only"
    keep = [i for i in items if i.get_closest_marker(other) is None]
    gone = [i for i in items if i.get_closest_marker(other) is not None]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = keep


# ---------------------------------------------------------------- Drive

class DriveEmulator:
    """test/gdrive_emulator.py on a free loopback port, storing under root."""

    def __init__(self, root, latency_ms=0):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        argv = ["/usr/bin/python3", str(EMULATOR), "--port", "0", "--root", str(self.root)]
        if latency_ms:
            argv += ["--latency-ms", str(latency_ms)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        self.endpoint = line.split()[-1]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_DRIVE = []


@pytest.fixture(scope="session", autouse=True)
def _session_drive(tmp_path_factory):
    """Under SCSFS_TEST_BACKEND=gdrive: the session's Drive emulator."""
    if BACKEND == "gdrive":
        _DRIVE.append(DriveEmulator(tmp_path_factory.mktemp("drive") / "root"))
        # The device sign-in of every user approves at the first poll (by
        # default the emulator answers "pending" twice and "slow_down" once,
        # which adds some 8 s per user; test_gdrive.py tests those).
        DriveBacking("/")._control(action="set", device_pending_polls=-1)
    yield
    while _DRIVE:
        _DRIVE.pop().stop()


def sign_in(user):
    """Sign user in to the session's Drive emulator (device flow)."""
    user.extra_env["SCSFS_GDRIVE_ENDPOINT"] = _DRIVE[0].endpoint
    r = user.ctl("auth", "gdrive", "--device", "--client-id", "test-client",
                 "--client-secret", "test-secret", timeout=120)
    assert "signed in" in r.stdout + r.stderr, (r.stdout, r.stderr)


# ---------------------------------------------------------------- users

def _clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SCSFS_", "XDG_", "GIT_")) or k == "SCSFS_BUILD"}
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    return env


class User:
    """One simulated person: a HOME with XDG dirs and a passphrase file."""

    def __init__(self, home, name, passphrase=None):
        self.home = Path(home)
        self.name = name
        self.passphrase = passphrase or f"correct horse {name} battery {secrets.token_hex(4)}"
        for d in (".config", ".local/share", ".cache"):
            (self.home / d).mkdir(parents=True, exist_ok=True)
        self.passfile = self.home / "passphrase"
        self.extra_env = {}        # e.g. the Drive emulator's endpoint
        if not self.passfile.exists():
            self.write_passfile(self.passphrase)
        else:
            self.passphrase = self.passfile.read_text().rstrip("\n")

    def write_passfile(self, text, path=None):
        path = Path(path or self.passfile)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.chmod(path, 0o600)
        return path

    @property
    def data_dir(self):
        return self.home / ".local/share/scsfs"

    @property
    def config_dir(self):
        return self.home / ".config/scsfs"

    def env(self, passfile=True, **extra):
        env = _clean_env()
        env.update(HOME=str(self.home),
                   XDG_CONFIG_HOME=str(self.home / ".config"),
                   XDG_DATA_HOME=str(self.home / ".local/share"),
                   XDG_CACHE_HOME=str(self.home / ".cache"))
        if passfile:
            env["SCSFS_PASSPHRASE_FILE"] = str(self.passfile)
        env.update(self.extra_env)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def run(self, argv, passfile=True, env=None, timeout=120, input=None):
        """Run a program as this user: no terminal (new session, stdin from
        /dev/null unless input is given), output captured."""
        e = self.env(passfile=passfile)
        if env:
            e.update(env)
        r = subprocess.run([str(a) for a in argv], env=e, capture_output=True, text=True,
                           timeout=timeout, start_new_session=True,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL)
        return r

    def ctl(self, *args, check=True, **kw):
        r = self.run([SCSCTL, *args], **kw)
        if check:
            assert r.returncode == 0, \
                f"scsctl {' '.join(map(str, args))} exited {r.returncode}: {r.stderr.strip()!r}"
        return r

    def clone(self, home):
        """A copy of this user (identity and all state) in another HOME."""
        shutil.copytree(self.home, home, symlinks=True)
        u = User(home, self.name)
        u.extra_env = dict(self.extra_env)
        return u


def one_line(msg):
    """A program's failure message: exactly one non-empty line."""
    lines = [l for l in msg.split("\n") if l != ""]
    assert len(lines) == 1, f"expected exactly one line on stderr, got {msg!r}"
    assert lines[0].strip(), f"empty message: {msg!r}"
    return lines[0]


def refused(r, mnt=None, *words):
    """Check a refusal: non-zero exit, one line on stderr naming one of
    the words (case-insensitive), no mount."""
    if mnt is not None and is_mounted(mnt):
        fusermount_u(mnt)
        pytest.fail(f"{mnt} was mounted although it should have been refused "
                    f"(exit {r.returncode}): {r.stderr!r}")
    assert r.returncode != 0, f"expected a refusal, exit 0: {r.stdout!r} {r.stderr!r}"
    line = one_line(r.stderr)
    if words:
        assert any(w.lower() in line.lower() for w in words), \
            f"message should mention one of {words}: {line!r}"
    if mnt is not None:
        assert not is_mounted(mnt), f"{mnt} is mounted after a refusal"
    return line


def _require_programs():
    for p in (SCSFS, SCSCTL):
        if not os.access(p, os.X_OK):
            pytest.fail(f"{p} not built: run `meson setup {BUILD} && ninja -C {BUILD}` "
                        f"or set SCSFS_BUILD")


@pytest.fixture(scope="session")
def fuse():
    """FUSE is needed: fail under CI, skip elsewhere."""
    missing = []
    if not os.path.exists("/dev/fuse"):
        missing.append("/dev/fuse")
    if not os.access(FUSERMOUNT, os.X_OK):
        missing.append("fusermount3")
    if missing:
        msg = f"FUSE not available ({', '.join(missing)} missing)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + ": required under CI")
        pytest.skip(msg)
    return True


@pytest.fixture(scope="session")
def programs():
    _require_programs()
    return SCSFS, SCSCTL


def make_user(home, name):
    _require_programs()
    u = User(home, name)
    u.ctl("id", "new", name)
    if BACKEND == "gdrive":
        sign_in(u)
    return u


@pytest.fixture(scope="session")
def alice_template(tmp_path_factory):
    return make_user(tmp_path_factory.mktemp("tmpl") / "alice", "alice")


@pytest.fixture(scope="session")
def mallory_template(tmp_path_factory):
    return make_user(tmp_path_factory.mktemp("tmpl") / "mallory", "mallory")


@pytest.fixture
def alice(alice_template, tmp_path):
    """A fresh copy of alice (her identity, no group yet)."""
    return alice_template.clone(tmp_path / "home-alice")


@pytest.fixture
def mallory(mallory_template, tmp_path):
    return mallory_template.clone(tmp_path / "home-mallory")


# ---------------------------------------------------------------- vaults

class Vault:
    """A group folder (local: back end) of one user and a mountpoint."""

    def __init__(self, user, cloud, mnt):
        self.user = user
        self.cloud = Path(cloud)
        self.mnt = Path(mnt)
        self.cloud.mkdir(parents=True, exist_ok=True)
        self.mnt.mkdir(parents=True, exist_ok=True)
        # Under SCSFS_TEST_BACKEND=gdrive the group lives in a Drive folder
        # named after the cloud path (so two Vaults of one cloud share it).
        self.drive_folder = None
        if BACKEND == "gdrive":
            h = hashlib.sha256(str(self.cloud.resolve()).encode()).hexdigest()[:16]
            self.drive_folder = f"/t-{h}"
        self.proc = None           # foreground daemon (Popen)
        self.pids = []             # daemonized scsfs pids
        self.log_path = None       # stderr of a foreground daemon
        self._log_fh = None
        self.nlog = 0
        self.fingerprint = None
        # Every mount's messages, debug ones too, with times and threads
        # (SCSFS_DEBUG_LOG): read when a wait for it fails (diagnose).
        self.debug_log = self.mnt.parent / f"{self.mnt.name}-debug.log"

    @property
    def remote(self):
        if self.drive_folder:
            return f"gdrive:{self.drive_folder}"
        return f"local:{self.cloud}"

    @property
    def backing(self):
        """What the provider stores for this group (LocalBacking or
        DriveBacking): for tests that look at or tamper with it."""
        if self.drive_folder:
            return DriveBacking(self.drive_folder)
        return LocalBacking(self.cloud)

    def uploaded(self, timeout=60):
        """Wait until this machine has sent the group everything it queued
        (gdrive: `scsctl status` says no upload is pending), so that a check
        of the backing store sees what was written; local: at once."""
        if not self.drive_folder:
            return self
        time.sleep(0.3)                  # the release the kernel sends after a close
        st = [""]

        def drained():
            st[0] = self.user.ctl("status", self.remote, check=False).stdout
            return "uploads: none pending" in st[0]
        try:
            eventually(drained, timeout, f"{self.user.name}'s upload queue drained",
                       interval=0.2)
        except pytest.fail.Exception as e:
            # what the status and the mount said, for the one who reads the failure
            raise pytest.fail.Exception(f"{e}\nscsctl status:\n{st[0]}\n"
                                        f"{self.diagnose()}") from None
        return self

    def diagnose(self, lines=60):
        """For a failure message: the mount's state (it logs it on SIGUSR1:
        requests on their way, the upload queue) and the end of its debug
        log."""
        end = "state (SIGUSR1): end"
        pids = [self.proc.pid] if self.proc is not None and self.proc.poll() is None \
            else [p for p in self.pids if pid_alive(p)]
        seen = self._debug_tail().count(end)
        for p in pids:
            try:
                os.kill(p, signal.SIGUSR1)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline and self._debug_tail().count(end) <= seen:
            time.sleep(0.1)
        tail = "\n".join(self._debug_tail().splitlines()[-lines:])
        return f"mount log (end):\n{self.log()[-2000:]}\ndebug log (end):\n{tail}"

    def _debug_tail(self):
        try:
            with open(self.debug_log, "rb") as f:
                f.seek(max(0, os.path.getsize(self.debug_log) - 200000))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def make_folder(self):
        """Make the (empty) folder of the remote, as a user would before
        `scsctl init` (local: it is already there)."""
        if self.drive_folder:
            DriveBacking(self.drive_folder)._folder_id(create=True)
        return self

    def init(self):
        r = self.user.ctl("init", self.remote)
        self.init_output = r.stdout + r.stderr
        return r

    def path(self, rel=""):
        return self.mnt / rel

    def mount(self, foreground=False, args=(), remote=True, env=None, passfile=True):
        """Mount (daemonized by default; foreground=True keeps the process as a
        child and captures its stderr in self.log_path)."""
        assert not is_mounted(self.mnt), f"{self.mnt} already mounted"
        argv = [SCSFS, *args]
        if remote:
            argv.append(self.remote)
        argv.append(self.mnt)
        e = self.user.env(passfile=passfile)
        e["SCSFS_DEBUG_LOG"] = str(self.debug_log)
        if env:
            e.update(env)
        with _LIVE_LOCK:
            _LIVE.add(self)
        if foreground:
            self.nlog += 1
            self.log_path = self.mnt.parent / f"{self.mnt.name}-scsfs-{self.nlog}.log"
            self._log_fh = open(self.log_path, "wb")
            self.proc = subprocess.Popen([str(a) for a in argv[:1]] + ["-f"] + [str(a) for a in argv[1:]],
                                         env=e, stdin=subprocess.DEVNULL, stdout=self._log_fh,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            if not wait_for_mount(self.mnt, proc=self.proc):
                rc = self.proc.poll()
                if rc is None:
                    self.proc.kill()
                    self.proc.wait()
                self.proc = None
                pytest.fail(f"scsfs -f did not mount {self.mnt} (exit {rc}): {self.log()!r}")
        else:
            out = self.mnt.parent / f"{self.mnt.name}-daemon.out"
            with open(out, "w+") as fh:
                r = subprocess.run([str(a) for a in argv], env=e, stdin=subprocess.DEVNULL,
                                   stdout=fh, stderr=fh, timeout=90, start_new_session=True)
                fh.seek(0)
                text = fh.read()
            assert r.returncode == 0, f"scsfs exited {r.returncode}: {text!r}"
            # scsfs returns once mounted: the mount must be there right away.
            assert wait_for_mount(self.mnt, timeout=5), \
                f"scsfs exited 0 but {self.mnt} is not mounted: {text!r}"
            self.pids = daemon_pids(self.mnt)
            assert self.pids, "no scsfs daemon process left running after it daemonized"
        return self

    def log(self):
        if self.log_path is None:
            return ""
        if self._log_fh:
            self._log_fh.flush()
        return Path(self.log_path).read_text(errors="replace")

    def unmount(self, check=True):
        """fusermount3 -u (retries, then lazy) and check the daemon exits."""
        clean = fusermount_u(self.mnt)
        problems = []
        if not clean:
            problems.append("needed a lazy unmount (fusermount3 -u kept failing)")
        if self.proc is not None:
            try:
                rc = self.proc.wait(timeout=20)
                if rc != 0:
                    problems.append(f"scsfs -f exited {rc} after unmount: {self.log()[-2000:]!r}")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("scsfs -f did not exit within 20 s of the unmount")
            self.proc = None
            self._log_fh.close()
            self._log_fh = None
        else:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and any(pid_alive(p) for p in self.pids):
                time.sleep(0.05)
            alive = [p for p in self.pids if pid_alive(p)]
            for p in alive:
                os.kill(p, signal.SIGKILL)
            if alive:
                problems.append(f"scsfs daemon {alive} did not exit within 20 s of the unmount")
            self.pids = []
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if check:
            assert not problems, "; ".join(problems)
        return problems

    def remount(self, **kw):
        self.unmount()
        return self.mount(**kw)

    def drop_caches(self):
        """Unmount and mount again so no kernel or daemon cache hides the
        backing folder's state."""
        fg = self.proc is not None
        self.unmount()
        self.mount(foreground=fg)

    def cleanup(self):
        if is_mounted(self.mnt) or self.proc is not None or self.pids:
            self.unmount(check=False)
        if self._log_fh:
            self._log_fh.close()


class Group:
    """One group folder of several people: alice (templates["alice"]) founds
    it; every person is a clone of a template with their own HOME and a
    Vault (mountpoint) of the same folder.  For membership tests."""

    def __init__(self, templates, tmp_path):
        self.tmp = tmp_path
        self.cloud = tmp_path / "cloud"
        self.users = {n: t.clone(tmp_path / f"home-{n}") for n, t in templates.items()}
        self.vaults = {n: Vault(u, self.cloud, tmp_path / f"mnt-{n}") for n, u in self.users.items()}
        self.vaults["alice"].init()
        st = self.users["alice"].ctl("status").stdout
        self.fpr = re.search(r"^group fingerprint: (.*)$", st, re.M).group(1)

    @property
    def backing(self):
        """The group folder as the provider holds it (see Vault.backing)."""
        return self.vaults["alice"].backing

    def idfile(self, name):
        p = self.tmp / f"{name}.id"
        if not p.exists():
            p.write_text(self.users[name].ctl("id", "export").stdout)
        return p

    def add(self, by, name, admin=False, check=True):
        args = ["member", "add", self.idfile(name)] + (["--admin"] if admin else [])
        return self.users[by].ctl(*args, check=check)

    def join(self, name):
        return self.users[name].ctl("join", self.vaults[name].remote, "--fingerprint", self.fpr)

    def pin(self, name):
        """name's pinned keyring state (the high-water mark), as text."""
        d = self.users[name].data_dir / "groups"
        (p,) = d.glob("*.json")            # (beside it: <group>.seen, seen.h)
        return p.read_text()

    def cleanup(self):
        for v in self.vaults.values():
            v.cleanup()


@pytest.fixture
def vault(fuse, alice, tmp_path):
    """alice's freshly initialised group folder, not mounted."""
    v = Vault(alice, tmp_path / "cloud", tmp_path / "mnt")
    v.init()
    yield v
    v.cleanup()


@pytest.fixture
def mounted(vault):
    """alice's group, mounted by the daemonizing `scsfs REMOTE MOUNTPOINT`."""
    vault.mount()
    yield vault
    problems = vault.unmount(check=False)
    assert not problems, "; ".join(problems)


@pytest.fixture
def mounted_fg(vault):
    """Like mounted, but `scsfs -f` as a child whose stderr is vault.log()."""
    vault.mount(foreground=True)
    yield vault
    problems = vault.unmount(check=False)
    assert not problems, "; ".join(problems)


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_mounts(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    yield
    left = fuse_mounts_under(base)
    for mp in left:
        subprocess.run([FUSERMOUNT, "-uz", mp], capture_output=True)
    assert not left, f"FUSE mounts left behind: {left}"


# ---------------------------------------------------------------- trees

def snapshot(root, content=True):
    """{relpath: (type, mode bits, size, sha256 or symlink target)} of a tree."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(dirnames) + sorted(filenames):
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", None, None, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", mode, None, None)
            elif stat.S_ISREG(st.st_mode):
                h = None
                if content:
                    h = hashlib.sha256(p.read_bytes()).hexdigest()
                out[rel] = ("f", mode, st.st_size, h)
            else:
                out[rel] = ("?", mode, None, None)
    return out


def assert_same_tree(a, b):
    sa, sb = snapshot(a), snapshot(b)
    only_a = sorted(set(sa) - set(sb))
    only_b = sorted(set(sb) - set(sa))
    diff = [(k, sa[k], sb[k]) for k in sorted(set(sa) & set(sb)) if sa[k] != sb[k]]
    assert not only_a and not only_b and not diff, \
        f"trees differ: only in {a}: {only_a[:10]}, only in {b}: {only_b[:10]}, " \
        f"different: {diff[:10]}"


class Shadow:
    """Apply the same operation to the mount and to a plain directory;
    outcomes (return value or errno) must match, and so must the trees."""

    def __init__(self, mnt, plain):
        self.roots = (Path(mnt), Path(plain))
        self.roots[1].mkdir(parents=True, exist_ok=True)
        self.history = []

    def do(self, fn, *rels):
        """fn(*paths) is called once per root with rels resolved in it."""
        results = []
        for root in self.roots:
            try:
                results.append(("ok", fn(*[root / r for r in rels])))
            except OSError as e:
                results.append(("err", errno.errorcode.get(e.errno, e.errno)))
        self.history.append(f"{getattr(fn, '__name__', fn)}{rels} -> {results[1]}")
        assert results[0] == results[1], \
            f"{getattr(fn, '__name__', fn)}{rels}: mount gave {results[0]}, plain dir gave " \
            f"{results[1]}; earlier ops: " + " | ".join(self.history[-12:-1])
        return results[0]

    def compare(self):
        assert_same_tree(*self.roots)


@pytest.fixture
def shadow(mounted, tmp_path):
    return Shadow(mounted.mnt, tmp_path / "shadow")


# ---------------------------------------------------------------- secrecy

def marker(n=24):
    """A random, printable content marker that cannot occur by chance."""
    return ("MK" + secrets.token_hex(n)).encode()


def assert_no_plaintext(cloud_dir, names=(), contents=()):
    """No plaintext name (nor a distinctive 8+ character piece of one) in any
    path or symlink target or file of the backing folder, and no content
    marker in any file's bytes."""
    cloud_dir = Path(cloud_dir)
    needles_names = set()
    for n in names:
        n = n.encode() if isinstance(n, str) else n
        if len(n) >= 8:
            for i in range(0, len(n) - 7):
                needles_names.add(n[i:i + 8])
        else:
            needles_names.add(n)
    contents = [c.encode() if isinstance(c, str) else c for c in contents]
    for c in contents:
        assert len(c) >= 16, "content markers must be 16+ bytes"
    nfiles = 0
    for dirpath, dirnames, filenames in os.walk(cloud_dir):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(cloud_dir)).encode()
            for nd in needles_names:
                assert nd not in rel, f"plaintext name piece {nd!r} visible in backing path {rel!r}"
            if p.is_symlink():
                t = os.readlink(p).encode()
                for nd in needles_names:
                    assert nd not in t, f"plaintext name piece {nd!r} in symlink target {t!r}"
                continue
            if p.is_file():
                nfiles += 1
                data = p.read_bytes()
                for c in contents:
                    assert c not in data, f"plaintext content marker found in {rel!r}"
                    assert c[:16] not in data, f"plaintext content piece found in {rel!r}"
                for nd in needles_names:
                    if len(nd) >= 8:
                        assert nd not in data, f"plaintext name piece {nd!r} inside {rel!r}"
    return nfiles


def backing_files(cloud, include_meta=False):
    """Regular files of the backing folder (relative paths), without .scsfs/."""
    cloud = Path(cloud)
    out = []
    for dirpath, dirnames, filenames in os.walk(cloud):
        rel_dir = Path(dirpath).relative_to(cloud)
        if not include_meta and rel_dir.parts[:1] == (".scsfs",):
            continue
        for n in filenames:
            p = Path(dirpath) / n
            if not p.is_symlink():
                out.append(p)
    return out


class _Backing:
    """What LocalBacking and DriveBacking share."""

    def find(self, plain_size):
        """The one object (not a re-key temporary) whose size says it holds
        plain_size bytes (find_object for either back end)."""
        want = object_size(plain_size)
        hits = [r for r, n in self._sizes() if ".tmp-" not in r and n == want]
        assert len(hits) == 1, \
            f"expected one object of {want} bytes (plaintext {plain_size}), found {hits}"
        return hits[0]

    def temps(self):
        """Re-key temporaries (".tmp-" in the name) anywhere but .scsfs/."""
        return [r for r in self.files(every=True) if ".tmp-" in r]


class LocalBacking(_Backing):
    """What a local: group stores, seen (and edited) as the provider: paths
    are '/'-separated and relative to the backing folder."""

    def __init__(self, cloud):
        self.root_dir = Path(cloud)      # everything the provider holds

    def files(self, every=False):
        """Objects without .scsfs/: regular files; every=True adds directories
        and symlinks."""
        cloud = self.root_dir
        out = [str(p.relative_to(cloud)) for p in backing_files(cloud)]
        if every:
            for dp, dns, fns in os.walk(cloud):
                for n in dns + fns:
                    p = Path(dp) / n
                    rel = p.relative_to(cloud)
                    if rel.parts[:1] != (".scsfs",) and (p.is_symlink() or p.is_dir()):
                        out.append(str(rel))
        return out

    def links(self):
        return [str(p.relative_to(self.root_dir)) for p in self.root_dir.rglob("*") if p.is_symlink()]

    def read(self, rel):
        return (self.root_dir / rel).read_bytes()

    def write(self, rel, data):
        (self.root_dir / rel).write_bytes(data)

    def remove(self, rel):
        (self.root_dir / rel).unlink()

    def rename(self, a, b):
        assert not os.path.lexists(self.root_dir / b), b
        os.rename(self.root_dir / a, self.root_dir / b)

    def listdir(self, rel=""):
        """Names directly in directory rel ('' is the folder itself, .scsfs too)."""
        return sorted(os.listdir(self.root_dir / rel))

    def exists(self, rel):
        return os.path.lexists(self.root_dir / rel)

    def is_dir(self, rel):
        return (self.root_dir / rel).is_dir() and not (self.root_dir / rel).is_symlink()

    def size(self, rel):
        return os.lstat(self.root_dir / rel).st_size

    def copy(self, a, b):
        """Another client copies object a to b (a file, or a directory with
        everything in it), as a sync client's conflict copy."""
        assert not os.path.lexists(self.root_dir / b), b
        if self.is_dir(a):
            shutil.copytree(self.root_dir / a, self.root_dir / b, symlinks=True)
        else:
            shutil.copy2(self.root_dir / a, self.root_dir / b, follow_symlinks=False)

    def rmtree(self, rel):
        shutil.rmtree(self.root_dir / rel)

    def copy_to(self, other, sub=""):
        """Copy directory sub (default: everything) into the same place of
        other, another (empty or partial) backing."""
        shutil.copytree(self.root_dir / sub, other.root_dir / sub, symlinks=True,
                        dirs_exist_ok=True)

    def _sizes(self):
        for r in self.files():
            try:
                yield r, self.size(r)
            except FileNotFoundError:      # a running mount may replace or drop objects
                pass

    def mkdir(self, rel):
        (self.root_dir / rel).mkdir()

    def present(self):
        """Whether the folder itself exists."""
        return self.root_dir.is_dir()

    def state(self):
        """Everything the provider holds, .scsfs/ too, with what any change
        would alter: to check that nothing was written."""
        out = snapshot(self.root_dir)
        for dp, dns, fns in os.walk(self.root_dir):
            for n in dns + fns:
                p = Path(dp) / n
                out[str(p.relative_to(self.root_dir))] += (os.lstat(p).st_mtime_ns,)
        return out

    def entries(self, meta=False):
        """{relative path: "file", "link" or "dir"} of everything the folder
        holds, in one listing; .scsfs/ only with meta=True."""
        out = {}
        for dp, dns, fns in os.walk(self.root_dir):
            for n in dns + fns:
                p = Path(dp) / n
                rel = str(p.relative_to(self.root_dir))
                if not meta and rel.split("/")[0] == ".scsfs":
                    continue
                out[rel] = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
        return out

    def objects(self, meta=False):
        """{relative path: (kind, bytes)} as entries(): a file's contents, a
        symlink's target, None for a directory."""
        out = {}
        for rel, kind in self.entries(meta).items():
            p = self.root_dir / rel
            try:
                out[rel] = (kind, os.readlink(p).encode() if kind == "link" else
                            p.read_bytes() if kind == "file" else None)
            except FileNotFoundError:      # a running mount may replace or drop objects
                pass
        return out

    def readlink(self, rel):
        return os.readlink(self.root_dir / rel)


class DriveBacking(_Backing):
    """The same for a gdrive: group in the session's emulator: reads its
    blobs, edits through its control API (server_write/move/delete)."""

    def __init__(self, folder):
        self.drive = _DRIVE[0]
        self.folder = folder
        self.root_dir = self.drive.root

    def _state(self):
        import json
        import urllib.request
        with urllib.request.urlopen(self.drive.endpoint + "/__control/state", timeout=30) as r:
            state = json.load(r)
        live = {k: m for k, m in state["files"].items()
                if m and not m.get("trashed") and not m.get("explicitlyTrashed")}
        kids = {}
        for fid, m in live.items():
            for par in m.get("parents") or []:
                kids.setdefault(par, []).append(fid)
        return state["root_id"], live, kids

    def _control(self, **action):
        import json
        import urllib.request
        req = urllib.request.Request(self.drive.endpoint + "/__control",
                                     data=json.dumps(action).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def _walk(self):
        """{relative path: (id, meta)} of everything under the folder."""
        node, live, kids = self._state()
        for part in self.folder.strip("/").split("/"):
            node = next(k for k in kids.get(node, []) if live[k]["name"] == part)
        out = {"": (node, None)}

        def walk(fid, rel):
            for k in kids.get(fid, []):
                m = live[k]
                r = f"{rel}{m['name']}"
                out[r] = (k, m)
                if m.get("mimeType") == "application/vnd.google-apps.folder":
                    walk(k, r + "/")
        walk(node, "")
        return out

    @staticmethod
    def _is_dir(m):
        return m is not None and m.get("mimeType") == "application/vnd.google-apps.folder"

    @staticmethod
    def _is_link(m):
        return "scsfs_link" in (m.get("appProperties") or {})

    def files(self, every=False):
        out = []
        for rel, (fid, m) in self._walk().items():
            if rel == "" or rel.split("/")[0] == ".scsfs":
                continue
            if every or not (self._is_dir(m) or self._is_link(m)):
                out.append(rel)
        return out

    def links(self):
        return [rel for rel, (fid, m) in self._walk().items()
                if rel and not self._is_dir(m) and self._is_link(m)]

    def _id(self, rel):
        return self._walk()[rel][0]

    def read(self, rel):
        return (self.root_dir / "blobs" / self._id(rel)).read_bytes()

    def write(self, rel, data):
        import base64
        tree = self._walk()
        b64 = base64.b64encode(data).decode()
        if rel in tree:
            self._control(action="server_write", id=tree[rel][0], content_b64=b64)
        else:
            parent, _, name = rel.rpartition("/")
            self._control(action="insert", name=name, parents=[tree[parent][0]], content_b64=b64)

    def remove(self, rel):
        self._control(action="server_delete", id=self._id(rel))

    def rename(self, a, b):
        tree = self._walk()
        assert b not in tree, b
        parent, _, name = b.rpartition("/")
        self._control(action="server_move", id=tree[a][0], name=name, parent=tree[parent][0])

    def listdir(self, rel=""):
        """Names directly in directory rel ('' is the folder itself, .scsfs too)."""
        pre = rel.strip("/") + "/" if rel.strip("/") else ""
        return sorted(r[len(pre):] for r in self._walk()
                      if r and r.startswith(pre) and "/" not in r[len(pre):])

    def exists(self, rel):
        return rel in self._walk()

    def is_dir(self, rel):
        return self._is_dir(self._walk()[rel][1]) if rel else True

    def size(self, rel):
        m = self._walk()[rel][1]
        if "size" in m:
            return int(m["size"])
        return len(self.read(rel))

    def _insert(self, m, name, parent):
        """A new object like meta m (content, appProperties) named name in
        parent (an id), made by another Drive client; its id."""
        import base64
        act = {"action": "insert", "name": name, "parents": [parent],
               "mimeType": m.get("mimeType", "application/octet-stream")}
        for k in ("appProperties", "properties"):
            if m.get(k):
                act[k] = m[k]
        if not self._is_dir(m):
            act["content_b64"] = base64.b64encode(
                (self.root_dir / "blobs" / m["id"]).read_bytes()).decode()
        return self._control(**act)["id"]

    def _copy_tree(self, tree, src, dst_parent, name, into=None):
        """Copy object src (a path in tree) as name under dst_parent; into
        (the id of an existing folder) takes a directory's children instead."""
        fid, m = tree[src]
        if src and not self._is_dir(m):
            return self._insert(m, name, dst_parent)
        new = into or self._insert(m, name, dst_parent)
        pre = src + "/" if src else ""
        for r in sorted(tree):
            if r and r.startswith(pre) and "/" not in r[len(pre):]:
                self._copy_tree(tree, r, new, r[len(pre):])
        return new

    def copy(self, a, b):
        """Another client copies object a to b (a file, or a folder with
        everything in it): what a sync client's conflict copy would be."""
        tree = self._walk()
        assert b not in tree, b
        parent, _, name = b.rpartition("/")
        self._copy_tree(tree, a, tree[parent][0], name)

    def rmtree(self, rel):
        self.remove(rel)                 # server_delete takes a folder's contents too

    def _folder_id(self, create=False):
        node, live, kids = self._state()
        for part in self.folder.strip("/").split("/"):
            hit = [k for k in kids.get(node, []) if live[k]["name"] == part]
            if hit:
                node = hit[0]
            elif create:
                node = self._control(action="insert", name=part, parents=[node],
                                     mimeType="application/vnd.google-apps.folder")["id"]
            else:
                raise FileNotFoundError(self.folder)
        return node

    def copy_to(self, other, sub=""):
        """Copy directory sub (default: everything) into the same place of
        other, another DriveBacking (its folder is made if missing)."""
        tree = self._walk()
        if not sub:
            self._copy_tree(tree, "", None, None, into=other._folder_id(create=True))
            return
        dst = other._walk()
        parent, _, name = sub.rpartition("/")
        assert sub not in dst, sub
        self._copy_tree(tree, sub, dst[parent][0], name)

    def _sizes(self):
        return [(r, int(m.get("size", -1))) for r, (fid, m) in self._walk().items()
                if r and r.split("/")[0] != ".scsfs" and not self._is_dir(m)
                and not self._is_link(m)]

    def mkdir(self, rel):
        tree = self._walk()
        assert rel not in tree, rel
        parent, _, name = rel.rpartition("/")
        self._control(action="insert", name=name, parents=[tree[parent][0]],
                      mimeType="application/vnd.google-apps.folder")

    def present(self):
        """Whether the folder itself exists."""
        try:
            self._folder_id()
            return True
        except FileNotFoundError:
            return False

    def state(self):
        """Everything the provider holds, .scsfs/ too, with what any change
        would alter: to check that nothing was written."""
        keep = ("mimeType", "size", "md5Checksum", "version", "modifiedTime", "headRevisionId",
                "appProperties")
        return {rel: (fid,) + tuple(str(m.get(k)) for k in keep)
                for rel, (fid, m) in self._walk().items() if rel}


    def entries(self, meta=False):
        """{relative path: "file", "link" or "dir"} of everything the folder
        holds, in one listing; .scsfs/ only with meta=True."""
        return {rel: kind for rel, (kind, _) in self._kinds(meta)}

    def _kinds(self, meta):
        for rel, (fid, m) in self._walk().items():
            if rel and (meta or rel.split("/")[0] != ".scsfs"):
                yield rel, ("dir" if self._is_dir(m) else "link" if self._is_link(m)
                            else "file", fid)

    def objects(self, meta=False):
        """{relative path: (kind, bytes)} as entries(): a file's contents, a
        symlink's target (the content of its link object), None for a
        directory."""
        out = {}
        for rel, (kind, fid) in self._kinds(meta):
            try:
                out[rel] = (kind, None if kind == "dir" else
                            (self.root_dir / "blobs" / fid).read_bytes())
            except FileNotFoundError:
                pass
        return out

    def readlink(self, rel):
        return self.read(rel).decode()


def backing_objects(v, every=False):
    """Relative paths ('/'-separated) of the objects v's group stores, without
    .scsfs/, on either back end (see Vault.backing)."""
    return v.backing.files(every)


def flip_byte(backing, rel, off):
    """The provider flips one bit of byte off of object rel."""
    data = bytearray(backing.read(rel))
    data[off] ^= 0x01
    backing.write(rel, bytes(data))


def find_in_backing(backing, plain_size):
    """The one object of backing whose size says it holds plain_size bytes."""
    want = object_size(plain_size)
    hits = [r for r in backing.files() if len(backing.read(r)) == want]
    assert len(hits) == 1, f"expected one object of {want} bytes (plaintext {plain_size}), found {hits}"
    return hits[0]


def find_object(cloud, plain_size):
    """The one backing object whose size says it holds plain_size bytes
    (tests give files distinctive sizes to find them without the keys)."""
    want = object_size(plain_size)

    def size(p):          # a running mount (its re-key pass) may replace or drop objects
        try:
            return p.stat().st_size
        except FileNotFoundError:
            return -1
    hits = [p for p in backing_files(cloud) if ".tmp-" not in p.name and size(p) == want]
    assert len(hits) == 1, f"expected one object of {want} bytes (plaintext {plain_size}), found {hits}"
    return hits[0]


def tree_listing(root):
    """Every path (files, dirs, symlinks) under root, with type and size."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = os.lstat(p)
            out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), st.st_size if stat.S_ISREG(st.st_mode) else 0)
    return out


@pytest.fixture(scope="module")
def shared(fuse, alice_template, tmp_path_factory):
    """One mounted group per test module (mounting costs a passphrase
    derivation); tests work in their own subdirectory through `here`."""
    base = tmp_path_factory.mktemp("shared")
    user = alice_template.clone(base / "home-alice")
    v = Vault(user, base / "cloud", base / "mnt")
    v.init()
    v.mount()
    yield v
    problems = v.unmount(check=False)
    v.cleanup()
    assert not problems, "; ".join(problems)


@pytest.fixture
def here(shared, request):
    """A fresh directory for this test inside the shared mount."""
    if not is_mounted(shared.mnt):      # a failed test may have left it down
        shared.mount()
    d = shared.mnt / request.node.name.replace("/", "_")[:100]
    d.mkdir()
    return d


def rnd(n, seed):
    """n reproducible pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


def eventually(fn, timeout=10.0, what="condition", interval=0.1):
    """Poll fn() until it is true (OSError counts as not yet); fail the test
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if fn():
                return
        except OSError as e:
            last = e
        time.sleep(interval)
    pytest.fail(f"{what} not seen within {timeout} s (last error: {last!r})")
