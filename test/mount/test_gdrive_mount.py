"""The same mount, on the gdrive: back end, against the Drive v3 emulator
(test/gdrive_emulator.py) on loopback: what is written comes back after a
remount with an empty cache, nothing readable reaches "Google", tampering
with a stored object is an EIO."""
import os
import random
import secrets
import shutil
import subprocess
import sys

import pytest

from scsmount import rnd, REPO, Shadow, Vault, assert_no_plaintext, marker

EMULATOR = REPO / "test" / "gdrive_emulator.py"




class GVault(Vault):
    """A Vault whose remote is a gdrive: folder."""

    def __init__(self, user, folder, mnt, env):
        super().__init__(user, mnt.parent / "unused-cloud", mnt)
        self.folder = folder
        self.gdrive_env = env

    @property
    def remote(self):
        return f"gdrive:{self.folder}"

    def mount(self, **kw):
        env = dict(self.gdrive_env)
        env.update(kw.pop("env", None) or {})
        return super().mount(env=env, **kw)

    def drop_cache(self):
        shutil.rmtree(self.user.home / ".cache", ignore_errors=True)
        (self.user.home / ".cache").mkdir()


@pytest.fixture(scope="module")
def drive(fuse, alice_template, tmp_path_factory):
    base = tmp_path_factory.mktemp("gdrive")
    root = base / "drive-root"
    root.mkdir()
    proc = subprocess.Popen([sys.executable if sys.executable else "/usr/bin/python3", str(EMULATOR),
                             "--port", "0", "--root", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), line
    env = {"SCSFS_GDRIVE_ENDPOINT": line.split()[-1]}
    user = alice_template.clone(base / "home-alice")
    r = user.ctl("auth", "gdrive", "--device", "--client-id", "test-client",
                 "--client-secret", "test-secret", env=env, timeout=120)
    assert "signed in" in r.stdout + r.stderr
    yield user, root, env, base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def gvault(drive, request):
    user, root, env, base = drive
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    v = GVault(user, f"/scsfs-{name}-{secrets.token_hex(3)}", base / f"mnt-{name}", env)
    v.user.ctl("init", v.remote, env=env, timeout=120)
    v.mount()
    yield v
    v.cleanup()


def test_roundtrip_through_an_empty_cache(gvault, tmp_path):
    v = gvault
    sh = Shadow(v.mnt, tmp_path / "plain")
    sh.do(lambda p: p.mkdir(), "docs")
    sh.do(lambda p: p.write_bytes(rnd(5 * 1024 * 1024 + 7, 1)), "docs/big.bin")
    sh.do(lambda p: p.write_bytes(b""), "empty")
    sh.do(lambda p: p.write_bytes(b"hello drive\n"), "hello.txt")
    sh.do(lambda p: p.write_bytes(b"long " * 10), "n" * 200)
    sh.do(lambda p: os.symlink("docs/big.bin", p), "link")

    def patch(p):
        with open(p, "r+b") as f:
            f.seek(32767)
            f.write(b"PATCH")
    sh.do(patch, "docs/big.bin")
    sh.do(lambda p: os.truncate(p, 100000), "docs/big.bin")
    sh.do(os.rename, "hello.txt", "docs/hello.txt")
    sh.compare()
    v.unmount()
    v.drop_cache()
    v.mount()
    sh.compare()
    v.unmount()
    r = v.user.ctl("verify", "--remote", v.remote, env=v.gdrive_env, check=False, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_nothing_readable_reaches_the_drive(gvault, drive):
    user, root, env, base = drive
    v = gvault
    tag = secrets.token_hex(5)
    names = [f"drivesecret{tag}", f"drivedir{tag}", f"inner{tag}.odt"]
    contents = [marker() for _ in range(3)]
    (v.mnt / names[1]).mkdir()
    (v.mnt / names[1] / names[2]).write_bytes(contents[0] + rnd(50000, 2) + contents[1])
    (v.mnt / names[0]).write_bytes(contents[2])
    v.unmount()
    assert_no_plaintext(root, names, contents)
    assert_no_plaintext(v.user.home, (), contents)
    v.drop_cache()
    v.mount()
    assert (v.mnt / names[0]).read_bytes() == contents[2]
    v.unmount()


def test_random_ops_then_fresh_cache(gvault, tmp_path):
    v = gvault
    sh = Shadow(v.mnt, tmp_path / "plain")
    rng = random.Random(77)
    from test_basic import _random_ops
    _random_ops(sh, rng, 150)
    sh.compare()
    v.unmount()
    v.drop_cache()
    v.mount()
    sh.compare()
    v.unmount()


def test_tampered_blob_is_eio(gvault, drive):
    user, root, env, base = drive
    v = gvault
    data = rnd(3 * 32768 + 12345, 3)
    (v.mnt / "victim.bin").write_bytes(data)
    (v.mnt / "fine.txt").write_bytes(b"fine\n")
    v.unmount()
    size = 256 + 4 * 28 + len(data)
    blobs = [p for p in root.rglob("*") if p.is_file() and p.stat().st_size == size]
    assert len(blobs) == 1, f"no single stored blob of {size} bytes"
    with open(blobs[0], "r+b") as f:
        f.seek(256 + 32796 + 100)
        b = f.read(1)
        f.seek(256 + 32796 + 100)
        f.write(bytes([b[0] ^ 1]))
    v.drop_cache()
    v.mount(foreground=True)
    with pytest.raises(OSError) as ei:
        (v.mnt / "victim.bin").read_bytes()
    assert ei.value.errno == 5
    assert (v.mnt / "fine.txt").read_bytes() == b"fine\n"
    assert any("victim.bin" in l for l in v.log().splitlines()), v.log()
    v.unmount()


def test_rekey_leaves_no_old_epoch_object_on_drive(gvault, drive, mallory_template, tmp_path):
    """After a removal and the re-key pass on gdrive:, Drive holds no object
    of the old epoch: each re-keyed file is a new Drive file and the old one
    (with any revisions Drive kept of it) is deleted for good — a DELETE,
    not a move to the trash."""
    import json
    import struct
    import urllib.request
    user, root, env, base = drive
    v = gvault
    for i in range(4):
        (v.mnt / f"f{i}.bin").write_bytes(rnd(40000 + i, i))
    (v.mnt / "sub").mkdir()
    (v.mnt / "sub" / "g.txt").write_bytes(b"in a subdirectory\n")
    v.unmount()
    ep = env["SCSFS_GDRIVE_ENDPOINT"]

    def objects():
        """{id: (epoch, meta)} of the file objects in this group's folder."""
        with urllib.request.urlopen(ep + "/__control/state", timeout=30) as r:
            state = json.load(r)
        files = {k: m for k, m in state["files"].items() if m}
        kids = {}
        for fid, m in files.items():
            for par in m.get("parents") or []:
                kids.setdefault(par, []).append(fid)
        node = state["root_id"]
        for part in v.folder.strip("/").split("/"):
            node = next(k for k in kids.get(node, []) if files[k]["name"] == part)
        mine, stack = set(), [node]
        while stack:
            for k in kids.get(stack.pop(), []):
                mine.add(k)
                stack.append(k)
        out = {}
        for fid in mine:
            m = files[fid]
            blob = root / "blobs" / fid
            if blob.is_file():
                head = blob.read_bytes()[:10]
                if head[:4] == b"SCSF":
                    out[fid] = (struct.unpack(">I", head[6:10])[0], m)
        return out
    before = objects()
    assert len(before) >= 5 and {e for e, _ in before.values()} == {1}
    m = mallory_template.clone(tmp_path / "home-mallory")
    idf = tmp_path / "mallory.id"
    idf.write_text(m.ctl("id", "export").stdout)
    v.user.ctl("member", "add", idf, env=env, timeout=120)
    v.user.ctl("member", "remove", "mallory", "--lazy", env=env, timeout=300)
    urllib.request.urlopen(urllib.request.Request(ep + "/__control/log", method="DELETE")).read()
    v.user.ctl("rekey", "run", env=env, timeout=600)
    after = objects()
    assert {e for e, _ in after.values()} == {2}, after
    assert not set(before) & set(after), "a re-keyed file kept its Drive id (its old revisions)"
    assert not any(m.get("trashed") for _, m in after.values())
    with urllib.request.urlopen(ep + "/__control/log", timeout=30) as r:
        log = json.load(r)["requests"]
    deleted = {e["path"].rsplit("/", 1)[-1] for e in log if e["method"] == "DELETE"}
    assert set(before) <= deleted, "old objects were not deleted (DELETE) on Drive"
    v.mount()
    for i in range(4):
        assert (v.mnt / f"f{i}.bin").read_bytes() == rnd(40000 + i, i)
    assert (v.mnt / "sub" / "g.txt").read_bytes() == b"in a subdirectory\n"
    v.unmount()
