"""The golden encrypted folder (test/golden/folder/) must stay readable by
every later version: copy it, mount it with the identity stored beside it
and compare the plaintext tree with the manifest exactly.

Regenerating it is a format break; it is done only on purpose with
    SCSFS_BUILD=... /usr/bin/python3 test/mount/test_golden.py --make
(see test/golden/README)."""
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from scsmount import REPO, User, Vault, is_mounted, snapshot  # noqa: E402

GOLDEN = REPO / "test" / "golden" / "folder"

# The plaintext tree of the golden folder: deterministic content.
LONG_NAME = "a-long-file-name-" + "x" * 200 + "-that-needs-a-side-object.txt"   # 246 bytes


def golden_files():
    big = bytes((i * 7 + (i >> 15)) & 0xff for i in range(100_000))    # > 64 KiB: 4 records
    return {
        "hello.txt": b"hello, golden world\n",
        "empty": b"",
        "exactly-one-chunk.bin": bytes(range(256)) * 128,               # 32768 bytes
        "big.bin": big,
        "docs/readme.md": b"# scsfs golden folder\n\nDo not regenerate casually.\n",
        "docs/nested/deeper/note.txt": "unicode: h\u00e9llo w\u00f6rld \u2713\n".encode(),
        "spaces and \u00fcnicode \u65e5\u672c.txt": b"name with spaces\n",
        LONG_NAME: b"long name content\n",
    }


GOLDEN_DIRS = ["docs", "docs/nested", "docs/nested/deeper", "empty-dir"]
GOLDEN_LINKS = {"link-to-hello": "hello.txt", "docs/up": "../big.bin", "dangling": "/nowhere/at/all"}


def group_fpr(user):
    st = user.ctl("status").stdout
    lines = [l for l in st.splitlines() if l.startswith("group fingerprint: ")]
    assert len(lines) == 1, st
    return lines[0].split(": ", 1)[1]


def manifest_of(root):
    out = {}
    for rel, (typ, mode, size, h) in snapshot(root).items():
        if typ == "f":
            out[rel] = {"type": "file", "size": size, "sha256": h}
        elif typ == "d":
            out[rel] = {"type": "dir"}
        elif typ == "l":
            out[rel] = {"type": "symlink", "target": h}
        else:
            out[rel] = {"type": "other"}
    return out


def install_golden(tmp):
    """Copy the golden folder into tmp with the modes git does not keep."""
    dst = tmp / "golden"
    shutil.copytree(GOLDEN, dst, symlinks=True)
    home = dst / "home"
    for p in [home, *home.rglob("*")]:
        if p.is_dir():
            os.chmod(p, 0o700)
        elif p.is_file():
            os.chmod(p, 0o600)
    os.chmod(home / "passphrase", 0o600)
    # the default remote (for scsctl) is this copy: config.h's format
    (home / ".config" / "scsfs").mkdir(parents=True, exist_ok=True)
    (home / ".config" / "scsfs" / "config").write_text(f"default_remote = local:{dst / 'cloud'}\n")
    return dst


def test_golden_folder(fuse, tmp_path):
    assert GOLDEN.is_dir(), f"{GOLDEN} is missing"
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    g = install_golden(tmp_path)
    user = User(g / "home", "golden")
    v = Vault(user, g / "cloud", tmp_path / "mnt")
    before = snapshot(g / "cloud")
    try:
        v.mount()
        got = manifest_of(v.mnt)
        assert got == manifest["tree"], \
            f"golden tree differs: missing {sorted(set(manifest['tree']) - set(got))}, " \
            f"extra {sorted(set(got) - set(manifest['tree']))}, " \
            f"changed {[k for k in got if k in manifest['tree'] and got[k] != manifest['tree'][k]]}"
        # and the exact bytes, from this file's own definition
        for rel, data in golden_files().items():
            assert (v.mnt / rel).read_bytes() == data, rel
        for rel, target in GOLDEN_LINKS.items():
            assert os.readlink(v.mnt / rel) == target
        # random access into the middle of the multi-record file
        with open(v.mnt / "big.bin", "rb") as f:
            f.seek(65530)
            assert f.read(20) == golden_files()["big.bin"][65530:65550]
        v.unmount()
    finally:
        v.cleanup()
    # reading changed nothing in the folder
    assert snapshot(g / "cloud") == before
    assert group_fpr(user) == manifest["group_fingerprint"]
    r = user.ctl("verify", check=False)
    assert r.returncode == 0, f"scsctl verify on the golden folder: {r.stdout!r} {r.stderr!r}"


def test_golden_manifest_matches_definition():
    """The manifest in the repository is exactly what golden_files()
    defines (so neither can drift)."""
    manifest = json.loads((GOLDEN / "manifest.json").read_text())["tree"]
    files = {k: v for k, v in manifest.items() if v["type"] == "file"}
    exp = {rel: {"type": "file", "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
           for rel, d in golden_files().items()}
    assert files == exp
    assert {k for k, v in manifest.items() if v["type"] == "dir"} == set(GOLDEN_DIRS)
    assert {k: v["target"] for k, v in manifest.items() if v["type"] == "symlink"} == GOLDEN_LINKS


def make_golden(out):
    """Create the golden folder with the programs in $SCSFS_BUILD."""
    import tempfile
    out = Path(out)
    assert not out.exists() or not any(out.iterdir()), f"{out} exists and is not empty"
    work = Path(tempfile.mkdtemp(prefix="golden-"))
    try:
        home = out / "home"
        user = User(home, "golden", passphrase="golden test identity - not a secret")
        user.ctl("id", "new", "golden")
        v = Vault(user, out / "cloud", work / "mnt")
        v.init()
        v.mount()
        try:
            for d in GOLDEN_DIRS:
                (v.mnt / d).mkdir(parents=True, exist_ok=True)
            for rel, data in golden_files().items():
                (v.mnt / rel).write_bytes(data)
            for rel, t in GOLDEN_LINKS.items():
                os.symlink(t, v.mnt / rel)
            tree = manifest_of(v.mnt)
        finally:
            v.unmount()
        assert not is_mounted(v.mnt)
        fpr = group_fpr(user)
        # the config names this machine's path: the test passes REMOTE
        # explicitly, so it is not kept
        shutil.rmtree(home / ".config", ignore_errors=True)
        shutil.rmtree(home / ".cache", ignore_errors=True)
        (out / "manifest.json").write_text(json.dumps({"tree": tree, "group_fingerprint": fpr},
                                                      indent=1, sort_keys=True,
                                                      ensure_ascii=False) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make"]:
        make_golden(sys.argv[2] if len(sys.argv) > 2 else GOLDEN)
    else:
        print(__doc__)
