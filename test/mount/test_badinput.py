"""Refusals: every failure is one line on stderr, a non-zero exit, no
mount left behind and nothing new in the backing folder."""
import errno
import os
import random
import shutil
import subprocess
import time

import pytest

from scsmount import (BACKEND, SCSCTL, SCSFS, User, Vault, daemon_pids, fuse_mounts_under,
                      is_mounted, one_line, pid_alive, refused, sign_in, snapshot)


def scsfs(user, *args, env=None, passfile=True):
    return user.run([SCSFS, *args], env=env, passfile=passfile, timeout=90)


@pytest.fixture
def tmpfs(tmp_path):
    """Mount small tmpfs file systems; unmounted at the end."""
    made = []

    def make(name, size="2m", ro=False):
        d = tmp_path / name
        d.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], check=True)
        made.append(d)
        return d
    yield make
    for d in reversed(made):
        subprocess.run(["umount", str(d)], capture_output=True)
        if is_mounted(d):
            subprocess.run(["umount", "-l", str(d)], capture_output=True)


def pin_like(user, owner, remote):
    """Have `user` pin the group `owner` created, as `scsctl join` does
    after comparing the fingerprint out of band.  Without a join command,
    copy the owner's pinned group state (genesis hash + high-water mark)."""
    st = owner.ctl("status").stdout
    fpr = [l for l in st.splitlines() if l.startswith("group fingerprint: ")][0].split(": ", 1)[1]
    r = user.ctl("join", remote, "--fingerprint", fpr, check=False)
    if r.returncode == 0 or "not a member" in r.stderr:
        return r
    groups = owner.data_dir / "groups"
    assert groups.is_dir() and list(groups.iterdir()), f"no pinned group state in {groups}"
    shutil.copytree(groups, user.data_dir / "groups", dirs_exist_ok=True)
    return None


def test_non_member(fuse, vault, mallory, tmp_path):
    before = vault.backing.state()
    mnt = tmp_path / "mmnt"
    mnt.mkdir()
    pin_like(mallory, vault.user, vault.remote)
    r = scsfs(mallory, vault.remote, mnt)
    refused(r, mnt, "not a member")
    assert vault.backing.state() == before
    assert not fuse_mounts_under(tmp_path)


def test_not_pinned(fuse, vault, mallory, tmp_path):
    """A group this machine never pinned is refused (no trust on first use)."""
    mnt = tmp_path / "mmnt"
    mnt.mkdir()
    r = scsfs(mallory, vault.remote, mnt)
    refused(r, mnt, "pin", "join", "not a member")


def test_wrong_passphrase(fuse, vault, tmp_path):
    before = vault.backing.state()
    wrong = vault.user.write_passfile("not the passphrase", tmp_path / "wrong")
    r = scsfs(vault.user, vault.remote, vault.mnt, env={"SCSFS_PASSPHRASE_FILE": str(wrong)})
    refused(r, vault.mnt, "passphrase")
    r = scsfs(vault.user, "-o", f"passphrase_file={wrong}", vault.remote, vault.mnt, passfile=False)
    refused(r, vault.mnt, "passphrase")
    # a command of scsctl that needs the private keys
    r = vault.user.ctl("verify", env={"SCSFS_PASSPHRASE_FILE": str(wrong)}, check=False)
    refused(r, None, "passphrase")
    # an empty passphrase file
    empty = tmp_path / "empty"
    empty.write_text("")
    os.chmod(empty, 0o600)
    r = scsfs(vault.user, vault.remote, vault.mnt, env={"SCSFS_PASSPHRASE_FILE": str(empty)})
    refused(r, vault.mnt, "passphrase")
    assert vault.backing.state() == before


def test_missing_passphrase_file_and_no_terminal(fuse, vault, tmp_path):
    missing = tmp_path / "no-such-file"
    r = scsfs(vault.user, vault.remote, vault.mnt, env={"SCSFS_PASSPHRASE_FILE": str(missing)})
    line = refused(r, vault.mnt)
    assert "no-such-file" in line or "passphrase" in line.lower(), line
    # no file and no terminal: say how to give one
    r = scsfs(vault.user, vault.remote, vault.mnt, passfile=False)
    refused(r, vault.mnt, "SCSFS_PASSPHRASE_FILE", "--passphrase-file", "passphrase")


def test_missing_folder(fuse, alice, tmp_path):
    gone = Vault(alice, tmp_path / "does-not-exist", tmp_path / "mnt")
    if not gone.drive_folder:
        gone.cloud.rmdir()               # (a Vault makes its local: folder)
    r = scsfs(alice, gone.remote, gone.mnt)
    line = refused(r, gone.mnt)
    name = gone.drive_folder.lstrip("/") if gone.drive_folder else "does-not-exist"
    assert name in line, f"message should name the folder: {line!r}"
    assert not gone.backing.present()


def test_missing_mountpoint(fuse, vault, tmp_path):
    r = scsfs(vault.user, vault.remote, tmp_path / "no-mnt")
    line = refused(r)
    assert "no-mnt" in line, line


def test_no_identity(fuse, vault, tmp_path):
    nobody = User(tmp_path / "home-nobody", "nobody")
    if BACKEND == "gdrive":
        sign_in(nobody)                  # so that the identity is what is missing
    r = scsfs(nobody, vault.remote, vault.mnt)
    refused(r, vault.mnt, "scsctl id new", "identity")


def foreign_tree(v):
    """Files of someone's own in v's folder (on Drive: made by another client)."""
    v.make_folder()
    b = v.backing
    b.write("holiday.jpg", random.Random(1).randbytes(5000))
    b.mkdir("notes")
    b.write("notes/todo.txt", b"buy milk\n")
    if not v.drive_folder:               # (Drive has no symbolic links)
        os.symlink("notes/todo.txt", v.cloud / "link")


def test_init_refuses_non_empty_foreign_folder(fuse, alice, tmp_path):
    v = Vault(alice, tmp_path / "foreign", tmp_path / "mnt")
    foreign_tree(v)
    before = v.backing.state()           # (with every mtime)
    r = alice.ctl("init", v.remote, check=False)
    refused(r)
    assert v.backing.state() == before
    assert not v.backing.exists(".scsfs")


def test_init_twice_refused(fuse, vault):
    before = vault.backing.state()
    r = vault.user.ctl("init", vault.remote, check=False)
    refused(r)
    assert vault.backing.state() == before


@pytest.mark.parametrize("kind", ["empty", "foreign"])
def test_mount_refuses_non_group(fuse, alice, tmp_path, kind):
    v = Vault(alice, tmp_path / "notagroup", tmp_path / "mnt")
    if kind == "foreign":
        foreign_tree(v)
    else:
        v.make_folder()
    before = v.backing.state()
    r = scsfs(alice, v.remote, v.mnt)
    refused(r, v.mnt, "group", "scsctl init", "not an scsfs", "no scsfs")
    assert v.backing.state() == before


@pytest.mark.local_only    # a read-only local disk under the backing folder
def test_unwritable_folder(fuse, alice, tmp_path, tmpfs):
    cloud = tmpfs("ro", size="4m")
    v = Vault(alice, cloud, tmp_path / "mnt")
    v.init()
    v.mount()
    (v.mnt / "kept.txt").write_bytes(b"written while writable\n" * 100)
    (v.mnt / "dir").mkdir()
    v.unmount()
    subprocess.run(["mount", "-o", "remount,ro", str(cloud)], check=True)
    before = snapshot(cloud)
    # init on a read-only folder is refused in one line
    empty_ro = tmpfs("ro2", ro=True)
    r = alice.ctl("init", f"local:{empty_ro}", check=False)
    refused(r)
    assert os.listdir(empty_ro) == []
    # mounting either refuses in one line, or mounts with reads working
    # and writes failing cleanly
    r = scsfs(alice, v.remote, v.mnt)
    try:
        if r.returncode != 0:
            refused(r, v.mnt)
        else:
            v.pids = daemon_pids(v.mnt)
            assert (v.mnt / "kept.txt").read_bytes() == b"written while writable\n" * 100
            with pytest.raises(OSError) as ei:
                with open(v.mnt / "new.txt", "wb") as f:
                    f.write(b"x")
            assert ei.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM), repr(ei.value)
            with pytest.raises(OSError) as ei:
                with open(v.mnt / "kept.txt", "r+b") as f:
                    f.write(b"changed")
                    f.flush()
                    os.fsync(f.fileno())
            assert ei.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM), repr(ei.value)
            with pytest.raises(OSError):
                os.mkdir(v.mnt / "newdir")
            v.unmount()
    finally:
        v.cleanup()
    assert snapshot(cloud) == before
    assert not fuse_mounts_under(tmp_path)


@pytest.mark.local_only    # a full local disk (a full Drive: test_gdrive.py's quota tests)
def test_full_disk(fuse, alice, tmp_path, tmpfs):
    cloud = tmpfs("small", size="2m")
    v = Vault(alice, cloud, tmp_path / "mnt")
    v.init()
    v.mount()
    try:
        early = random.Random(3).randbytes(100000)
        (v.mnt / "early.bin").write_bytes(early)
        (v.mnt / "d").mkdir()
        (v.mnt / "d" / "small").write_bytes(b"small")
        names_before = sorted(str(p.relative_to(cloud)) for p in cloud.rglob("*"))
        # fill it up: the error must surface as ENOSPC on write, fsync or close
        err = None
        fd = os.open(v.mnt / "big.bin", os.O_WRONLY | os.O_CREAT, 0o644)
        block = random.Random(4).randbytes(65536)
        try:
            for _ in range(200):          # 12.5 MiB > 2 MiB
                os.write(fd, block)
            os.fsync(fd)
        except OSError as e:
            err = e
        try:
            os.close(fd)
        except OSError as e:
            err = err or e
        assert err is not None, "writing 12 MiB into a 2 MiB folder did not fail"
        assert err.errno == errno.ENOSPC, f"expected ENOSPC, got {err!r}"
        # an overwrite of an existing file that does not fit
        try:
            with open(v.mnt / "early.bin", "r+b") as f:
                f.seek(0, 2)
                for _ in range(200):
                    f.write(block)
            pytest.fail("growing a file past a full disk did not fail")
        except OSError as e:
            assert e.errno == errno.ENOSPC, repr(e)
        # the partial file can be removed, freeing the space
        os.unlink(v.mnt / "big.bin")
        os.truncate(v.mnt / "early.bin", len(early))
        v.remount()
        assert (v.mnt / "early.bin").read_bytes() == early
        assert (v.mnt / "d" / "small").read_bytes() == b"small"
        assert sorted(os.listdir(v.mnt)) == ["d", "early.bin"]
        v.unmount()
        names_after = sorted(str(p.relative_to(cloud)) for p in cloud.rglob("*"))
        assert names_after == names_before, "stray files left in the backing folder"
        r = alice.ctl("verify", check=False, timeout=120)
        assert r.returncode == 0, f"verify after a full disk: {r.stdout!r} {r.stderr!r}"
    finally:
        v.cleanup()


def test_bad_options(fuse, vault):
    r = scsfs(vault.user, "-o", "no_such_option_xyz", vault.remote, vault.mnt)
    refused(r, vault.mnt)
    r = scsfs(vault.user)
    refused(r)
    r = vault.user.run([SCSCTL, "no-such-subcommand"])
    refused(r)
    r = scsfs(vault.user, "gopher:/x", vault.mnt)
    refused(r, vault.mnt)


def test_mount_twice_refused(fuse, vault, tmp_path):
    """`scsfs` on a mountpoint it already serves says so instead of
    stacking a second daemon over the first."""
    vault.mount()
    try:
        r = scsfs(vault.user, vault.remote, vault.mnt)
        stacked = len(fuse_mounts_under(tmp_path))
        if stacked > 1:                    # undo the stacked mount first
            subprocess.run(["fusermount3", "-u", str(vault.mnt)], capture_output=True, timeout=30)
            for pid in set(daemon_pids(vault.mnt)) - set(vault.pids):
                deadline = time.monotonic() + 10
                while pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
        assert r.returncode != 0 and stacked == 1, \
            f"a second scsfs on a mounted mountpoint exited {r.returncode} ({stacked} mounts stacked)"
        one_line(r.stderr)
        (vault.mnt / "still").write_bytes(b"ok")
    finally:
        vault.unmount()


def test_mountpoint_not_a_directory(fuse, vault, tmp_path):
    f = tmp_path / "a-file"
    f.write_bytes(b"x")
    r = scsfs(vault.user, vault.remote, f)
    refused(r, f)
    assert f.read_bytes() == b"x"
