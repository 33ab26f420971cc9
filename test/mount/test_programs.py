"""Ordinary programs working on a scsfs mount."""
import os
import random
import shutil
import sqlite3
import subprocess

import pytest

from scsmount import assert_same_tree


def run(argv, cwd=None, env=None, timeout=180):
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, argv))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def make_tree(root, seed=7):
    """A tree with files of many sizes, modes, empty dirs, symlinks."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for d in ("a", "a/b", "a/b/c", "empty", "x y"):
        (root / d).mkdir(exist_ok=True)
    sizes = [0, 1, 100, 4095, 4096, 32767, 32768, 32769, 65536, 200000, 1048577]
    for i, s in enumerate(sizes):
        d = rng.choice(["", "a", "a/b", "a/b/c", "x y"])
        p = root / d / f"file{i}.dat"
        p.write_bytes(rng.randbytes(s))
        os.chmod(p, rng.choice([0o644, 0o600, 0o755, 0o444]))
        os.utime(p, ns=(1_600_000_000_000_000_000 + i, 1_600_000_000_000_000_000 + i * 1000))
    (root / "script.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "script.sh", 0o755)
    os.symlink("a/b/c", root / "to_c")
    os.symlink("../file0.dat", root / "a" / "up")
    os.symlink("/does/not/exist", root / "dangling")
    os.chmod(root / "a" / "b", 0o750)
    return root


def test_editor_style_save(here):
    p = here / "doc.txt"
    p.write_text("version 1\n")
    for v in range(2, 6):
        tmp = here / f".doc.txt.swp{v}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, f"version {v}\n".encode() * 5000)
            os.fsync(fd)
        finally:
            os.close(fd)
        keep = os.open(p, os.O_RDONLY)      # a reader of the old version
        try:
            old = os.pread(keep, 100, 0)
            os.rename(tmp, p)
            assert os.pread(keep, 100, 0) == old
        finally:
            os.close(keep)
        dfd = os.open(here, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        assert p.read_text() == f"version {v}\n" * 5000
    assert sorted(os.listdir(here)) == ["doc.txt"]


def test_cp_a_and_diff(here, tmp_path):
    src = make_tree(tmp_path / "src")
    run(["cp", "-a", str(src), str(here / "copy")])
    run(["diff", "-r", "--no-dereference", str(src), str(here / "copy")])
    assert_same_tree(src, here / "copy")
    # times survive cp -a
    s = os.stat(src / "script.sh")
    c = os.stat(here / "copy" / "script.sh")
    assert s.st_mtime_ns == c.st_mtime_ns
    doc = "/usr/share/doc/bash"
    if os.path.isdir(doc):
        run(["cp", "-a", doc, str(here / "bashdoc")])
        run(["diff", "-r", "--no-dereference", doc, str(here / "bashdoc")])


def test_tar_roundtrip(here, tmp_path):
    src = make_tree(tmp_path / "src", seed=8)
    tarball = tmp_path / "t.tar"
    run(["tar", "-C", str(src), "-cf", str(tarball), "."])
    (here / "x").mkdir()
    run(["tar", "-C", str(here / "x"), "-xpf", str(tarball)])
    assert_same_tree(src, here / "x")
    # and tar from the mount back out
    run(["tar", "-C", str(here / "x"), "-cf", str(here / "again.tar"), "."])
    out = tmp_path / "out"
    out.mkdir()
    run(["tar", "-C", str(out), "-xpf", str(here / "again.tar")])
    assert_same_tree(src, out)


def test_rsync_twice(here, tmp_path):
    if not shutil.which("rsync"):
        pytest.fail("rsync is not installed (contrib/install-deps --test installs it)")
    src = make_tree(tmp_path / "src", seed=9)
    run(["rsync", "-a", str(src) + "/", str(here / "r") + "/"])
    assert_same_tree(src, here / "r")
    r = run(["rsync", "-a", "--checksum", "--itemize-changes", str(src) + "/", str(here / "r") + "/"])
    assert r.stdout.strip() == "", f"second rsync transferred something:\n{r.stdout}"
    # a changed file is picked up
    (src / "a" / "file_new").write_bytes(b"n" * 40000)
    r = run(["rsync", "-a", "--checksum", "--itemize-changes", str(src) + "/", str(here / "r") + "/"])
    assert "file_new" in r.stdout
    assert_same_tree(src, here / "r")


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_sqlite(shared, here, journal):
    db = here / "test.db"
    con = sqlite3.connect(db)
    try:
        mode = con.execute(f"PRAGMA journal_mode={journal}").fetchone()[0]
        assert mode == journal
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)")
        rng = random.Random(11)
        for batch in range(20):
            with con:
                con.executemany("INSERT INTO t (v, b) VALUES (?, ?)",
                                [(f"row {batch}-{i}", rng.randbytes(rng.randrange(0, 600)))
                                 for i in range(100)])
        with con:
            con.execute("DELETE FROM t WHERE id % 7 = 0")
            con.execute("UPDATE t SET v = v || ' updated' WHERE id % 5 = 0")
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = con.execute("SELECT count(*) FROM t").fetchone()[0]
        assert count == 2000 - 2000 // 7
        # a rolled back transaction leaves nothing
        con.execute("BEGIN")
        con.execute("DELETE FROM t")
        con.rollback()
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == count
    finally:
        con.close()
    shared.remount()
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == count
        assert con.execute("SELECT v FROM t WHERE id = 5").fetchone()[0] == "row 0-4 updated"
    finally:
        con.close()


def test_git(shared, here, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), GIT_AUTHOR_NAME="Alice", GIT_AUTHOR_EMAIL="a@example.org",
               GIT_COMMITTER_NAME="Alice", GIT_COMMITTER_EMAIL="a@example.org",
               GIT_CONFIG_NOSYSTEM="1")
    repo = here / "repo"
    run(["git", "init", "-q", "-b", "main", str(repo)], env=env)
    make_tree(repo / "content", seed=12)
    run(["git", "add", "-A"], cwd=repo, env=env)
    run(["git", "commit", "-q", "-m", "first"], cwd=repo, env=env)
    run(["git", "fsck", "--full", "--strict"], cwd=repo, env=env)
    (repo / "content" / "script.sh").write_text("#!/bin/sh\necho changed\n")
    (repo / "new.txt").write_text("new\n" * 1000)
    run(["git", "add", "-A"], cwd=repo, env=env)
    run(["git", "commit", "-q", "-m", "second"], cwd=repo, env=env)
    run(["git", "gc", "-q"], cwd=repo, env=env)
    run(["git", "fsck", "--full", "--strict"], cwd=repo, env=env)
    log = run(["git", "log", "--format=%s"], cwd=repo, env=env).stdout.split()
    assert log == ["second", "first"]
    shared.remount()
    run(["git", "fsck", "--full", "--strict"], cwd=repo, env=env)
    st = run(["git", "status", "--porcelain"], cwd=repo, env=env).stdout
    assert st == "", f"work tree changed across a remount:\n{st}"
    # clone out of the mount and compare
    out = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(out)], env=env)
    assert (out / "new.txt").read_text() == "new\n" * 1000
