"""scsctl join REMOTE --fingerprint FPR: pinning a group after comparing its
fingerprint out of band, through the real programs."""

import json
import re

from scsmount import SCSFS, Vault, refused, is_mounted


def group_fpr(vault):
    r = vault.user.ctl("status")
    m = re.search(r"^group fingerprint: ([0-9a-f ]+)$", r.stdout, re.M)
    assert m, r.stdout
    return m.group(1)


def pins(user):
    d = user.data_dir / "groups"
    return sorted(p.name for p in d.glob("*.json")) if d.exists() else []


def test_join_with_the_right_fingerprint_pins_and_sets_default(vault, mallory):
    fpr = group_fpr(vault)
    r = mallory.ctl("join", vault.remote, "--fingerprint", fpr)
    assert fpr in r.stdout
    assert "not a member yet" in r.stdout
    assert len(pins(mallory)) == 1
    pin = json.loads((mallory.data_dir / "groups" / pins(mallory)[0]).read_text())
    assert pin["seq"] == 0
    assert f"default_remote = {vault.remote}" in (mallory.config_dir / "config").read_text()
    # Pinned but not a member: mounting is refused with the member message.
    mnt = vault.mnt.parent / "mallory-mnt"
    mnt.mkdir()
    refused(mallory.run([SCSFS, mnt]), mnt, "not a member")
    refused(mallory.ctl("status", check=False), None, "not a member")


def test_join_accepts_the_fingerprint_typed_loosely(vault, mallory):
    fpr = group_fpr(vault)
    loose = fpr.replace(" ", "").upper()
    loose = ":".join(loose[i:i + 4] for i in range(0, len(loose), 4))
    mallory.ctl("join", vault.remote, "--fingerprint", loose)
    assert len(pins(mallory)) == 1


def test_join_refuses_a_different_fingerprint_and_writes_nothing(vault, mallory):
    fpr = group_fpr(vault)
    flipped = ("0" if fpr[0] != "0" else "1") + fpr[1:]
    before_cfg = (mallory.config_dir / "config").read_text() if (mallory.config_dir / "config").exists() else None
    r = mallory.ctl("join", vault.remote, "--fingerprint", flipped, check=False)
    line = refused(r, None, "fingerprint")
    assert fpr in line, "the message shows the fingerprint the folder really has"
    assert pins(mallory) == []
    after_cfg = (mallory.config_dir / "config").read_text() if (mallory.config_dir / "config").exists() else None
    assert before_cfg == after_cfg


def test_join_refuses_malformed_fingerprint_and_foreign_folder(vault, mallory, tmp_path):
    refused(mallory.ctl("join", vault.remote, "--fingerprint", "abcd", check=False), None, "fingerprint")
    empty = Vault(mallory, tmp_path / "empty", tmp_path / "mnt-empty").make_folder()
    refused(mallory.ctl("join", empty.remote, "--fingerprint", "0" * 64, check=False),
            None, "not an scsfs group")
    missing = Vault(mallory, tmp_path / "missing", tmp_path / "mnt-missing")
    if not missing.drive_folder:
        missing.cloud.rmdir()        # (a Vault makes its local: folder)
    refused(mallory.ctl("join", missing.remote, "--fingerprint", "0" * 64, check=False),
            None, "does not exist")
    assert pins(mallory) == []


def test_joined_machine_refuses_a_substituted_group(vault, mallory, alice_template, tmp_path):
    """After joining, a folder whose keyring was replaced by another group's
    (same layout, valid signatures, different genesis) is refused."""
    fpr = group_fpr(vault)
    mallory.ctl("join", vault.remote, "--fingerprint", fpr)
    # Another group made by alice elsewhere.
    other_user = alice_template.clone(tmp_path / "home-alice-2")
    other = Vault(other_user, tmp_path / "other", tmp_path / "mnt-other")
    other.init()
    vault.backing.rmtree(".scsfs")
    other.backing.copy_to(vault.backing, ".scsfs")
    r = mallory.ctl("status", vault.remote, check=False)
    refused(r, None, "pinned", "join")
    assert not is_mounted(vault.mnt)
