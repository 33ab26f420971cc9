"""The command-line contract of scsctl and scsfs (DESIGN.md)."""
import json
import re
import stat
import subprocess


from scsmount import SCSFS, Vault, daemon_pids, is_mounted, one_line, refused

FPR_RE = re.compile(r"[0-9a-fA-F]{4}(?:[ :]?[0-9a-fA-F]{4}){7,}")


def fpr_in(text):
    m = FPR_RE.findall(text)
    assert m, f"no fingerprint in {text!r}"
    return m


def norm(f):
    return re.sub(r"[^0-9a-f]", "", f.lower())


def test_id_new_show_export(alice_template, tmp_path):
    u = alice_template
    d = u.data_dir
    assert d.is_dir()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700, "identity dir must be 0700"
    files = [p for p in d.rglob("*") if p.is_file()]
    assert files, "no identity files written"
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, f"{p} is readable by others"
    show = u.ctl("id", "show").stdout
    f_show = fpr_in(show)
    assert len(norm(f_show[0])) == 64, f"fingerprint should be SHA-256 (64 hex digits): {show!r}"
    exp = u.ctl("id", "export").stdout
    j = json.loads(exp)
    assert isinstance(j, dict)
    assert j.get("name") == "alice", j
    text = json.dumps(j).lower()
    for bad in ("private", "secret", "pkcs8", "encrypted", "-----begin encrypted", "scrypt"):
        assert bad not in text, f"export contains {bad!r}: {exp!r}"
    # no line of any private key file in the export
    nkeys = 0
    for p in files:
        blob = p.read_bytes()
        if b"PRIVATE KEY" in blob:
            nkeys += 1
            for line in blob.splitlines():
                if len(line) >= 32 and b"-----" not in line:
                    assert line not in exp.encode(), f"export contains a line of {p.name}"
    assert nkeys >= 1, f"no PKCS#8 private key file in {d}: {[p.name for p in files]}"
    # the export needs no passphrase
    assert u.ctl("id", "export", passfile=False).stdout == exp
    assert u.ctl("id", "show", passfile=False).stdout == show


def test_id_new_refuses_to_overwrite(alice, tmp_path):
    before = {p: p.read_bytes() for p in alice.data_dir.rglob("*") if p.is_file()}
    r = alice.ctl("id", "new", "alice2", check=False)
    assert r.returncode != 0, "id new overwrote an existing identity"
    one_line(r.stderr)
    after = {p: p.read_bytes() for p in alice.data_dir.rglob("*") if p.is_file()}
    assert after == before


def test_distinct_identities(alice_template, mallory_template):
    a = norm(fpr_in(alice_template.ctl("id", "show").stdout)[0])
    m = norm(fpr_in(mallory_template.ctl("id", "show").stdout)[0])
    assert a != m


def test_init_status_fingerprint_and_default(fuse, alice, tmp_path):
    v = Vault(alice, tmp_path / "cloud", tmp_path / "mnt")
    r = v.init()
    init_f = [norm(x) for x in fpr_in(r.stdout + r.stderr)]
    st = alice.ctl("status")
    lines = [l for l in st.stdout.splitlines() if l.startswith("group fingerprint: ")]
    assert len(lines) == 1, f"status should have one 'group fingerprint: ' line: {st.stdout!r}"
    status_f = norm(lines[0][len("group fingerprint: "):])
    assert len(status_f) == 64, lines[0]
    assert status_f in init_f, f"init printed {init_f}, status says {status_f}"
    # the member fingerprint is not the group fingerprint
    assert norm(fpr_in(alice.ctl("id", "show").stdout)[0]) != status_f
    b = v.backing
    assert b.is_dir(".scsfs")
    assert b.exists(".scsfs/format") and not b.is_dir(".scsfs/format")
    assert "00000000.entry" in b.listdir(".scsfs/keyring") or \
        b.listdir(".scsfs/keyring"), "no keyring entry"
    # no REMOTE: the default from `scsctl init`
    try:
        v.mount(remote=False)
        (v.mnt / "via-default").write_bytes(b"x" * 1000)
        v.unmount()                      # (gdrive: uploads what is queued first)
        assert any(b.size(r) == 256 + 28 + 1000 for r in b.files()), \
            "the file did not land in the default folder"
    finally:
        v.cleanup()


def test_passphrase_sources(fuse, vault, tmp_path):
    v = vault
    # SCSFS_PASSPHRASE_FILE (the default of these helpers)
    v.mount()
    assert is_mounted(v.mnt)
    v.unmount()
    # -o passphrase_file= (scsfs), without the environment variable
    v.mount(args=["-o", f"passphrase_file={v.user.passfile}"], passfile=False)
    (v.mnt / "f").write_bytes(b"x")
    v.unmount()
    # --passphrase-file (scsctl), without the environment variable: a
    # command that needs the private keys
    r = v.user.ctl("--passphrase-file", str(v.user.passfile), "verify", passfile=False, check=False)
    assert r.returncode == 0, f"scsctl --passphrase-file F verify: {r.stderr!r}"
    # an explicit file wins over the environment
    wrong = v.user.write_passfile("wrong", v.user.home / "wrong")
    r = v.user.ctl("--passphrase-file", str(wrong), "verify", check=False)
    refused(r, None, "passphrase")
    r = v.user.run([SCSFS, "-o", f"passphrase_file={wrong}", v.remote, v.mnt], timeout=60)
    refused(r, v.mnt, "passphrase")
    # and without any: refused in one line, nothing mounted
    r = v.user.run([SCSFS, v.remote, v.mnt], passfile=False, timeout=60)
    refused(r, v.mnt, "passphrase")


def test_secrets_not_in_argv_or_ps(fuse, vault):
    v = vault
    v.mount(args=["-o", f"passphrase_file={v.user.passfile}"], passfile=False)
    try:
        pids = daemon_pids(v.mnt)
        assert pids
        pw = v.user.passphrase.encode()
        for pid in pids:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert pw not in f.read()
            with open(f"/proc/{pid}/environ", "rb") as f:
                assert pw not in f.read()
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, timeout=30).stdout
        assert pw not in ps
        # no core dumps of a process holding private keys
        for pid in pids:
            with open(f"/proc/{pid}/limits") as f:
                core = [l for l in f if l.startswith("Max core file size")][0].split()
            assert core[4] == "0", f"scsfs may dump core (soft limit {core[4]})"
    finally:
        v.unmount()


def test_foreground_stays_and_exits_on_unmount(fuse, vault):
    v = vault
    v.mount(foreground=True)
    assert v.proc.poll() is None
    (v.mnt / "f").write_bytes(b"fg")
    v.unmount()          # checks exit status 0


def test_two_users_same_identity_copy_can_mount(fuse, vault, tmp_path):
    """Copying the XDG data dir carries the identity and the pinned group."""
    other = vault.user.clone(tmp_path / "home-copy")
    v2 = Vault(other, vault.cloud, tmp_path / "mnt2")
    try:
        v2.mount()
        (v2.mnt / "x").write_bytes(b"from copy")
        v2.unmount()
        vault.mount()
        assert (vault.mnt / "x").read_bytes() == b"from copy"
        vault.unmount()
    finally:
        v2.cleanup()
