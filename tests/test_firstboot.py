"""First boot (wgedge/router/firstboot.py, keys.py): the default config installed once, the key
generated once and durably, public keys on the console, the private key nowhere else.
The whole start through S50wgedge is in tests/test_initscript.py."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.netns import ROOT
from wgedge.config import loader, schema
from wgedge.crypto import load as load_crypto
from wgedge.router import atomicfile, firstboot, keys

DEFAULT = os.path.join(ROOT, "rootfs_overlay", "usr", "share", "wgedge", "default-config")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_the_default_config_is_valid_and_asks_for_a_key():
    loaded = loader.load(DEFAULT)
    assert loaded.errors == []
    assert [i.name for i in loaded.interfaces] == ["wg0"]
    iface = loaded.interfaces[0]
    assert iface.generate_line and iface.private_key is None and iface.peers == []
    assert iface.listen_port == 51820


def test_install_default_only_when_there_is_no_config(tmp_path):
    conf = tmp_path / "etc" / "config" / "wgedge"
    assert firstboot.install_default(str(conf), DEFAULT) is True
    assert conf.read_bytes() == read(DEFAULT) and conf.stat().st_mode & 0o777 == 0o600
    conf.write_text("# mine, even if empty of interfaces\n")
    assert firstboot.install_default(str(conf), DEFAULT) is False
    assert conf.read_text() == "# mine, even if empty of interfaces\n"
    conf.unlink()
    conf.symlink_to(tmp_path / "elsewhere")  # a link the operator made: theirs, even dangling
    assert firstboot.install_default(str(conf), DEFAULT) is False
    assert not (tmp_path / "elsewhere").exists()


def test_install_default_fails_clearly(tmp_path):
    with pytest.raises(firstboot.FirstBootError, match="no .* and no default to install"):
        firstboot.install_default(str(tmp_path / "wgedge"), str(tmp_path / "missing"))
    assert not (tmp_path / "wgedge").exists()


def test_install_default_is_atomic_and_synced(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(atomicfile, "write", lambda *a: calls.append(a))
    firstboot.install_default(str(tmp_path / "wgedge"), DEFAULT)
    assert calls == [(str(tmp_path / "wgedge"), read(DEFAULT), 0o600)]


def installed(tmp_path):
    conf = tmp_path / "wgedge"
    firstboot.install_default(str(conf), DEFAULT)
    return conf


def test_the_key_is_generated_once_and_never_again(tmp_path, monkeypatch):
    conf = installed(tmp_path)
    loaded = loader.load(str(conf))
    keys.generate_keys(loaded)
    key = loaded.interfaces[0].private_key
    after_first = conf.read_bytes()
    assert b"private_key 'generate'" not in after_first
    assert after_first.replace(b"'%s'" % schema.encode_key(key).encode(), b"'generate'") \
        == read(DEFAULT)  # every other byte kept
    inode = conf.stat().st_ino

    def no_write(*args):
        raise AssertionError("the key was written again")

    monkeypatch.setattr(atomicfile, "write", no_write)
    for _ in range(3):  # later boots
        again = loader.load(str(conf))
        keys.generate_keys(again)
        assert again.interfaces[0].private_key == key
    assert conf.read_bytes() == after_first and conf.stat().st_ino == inode


def test_the_generated_key_is_on_the_disk_before_generate_keys_returns(tmp_path, monkeypatch):
    conf = installed(tmp_path)
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd)), real(fd)))
    keys.generate_keys(loader.load(str(conf)))
    assert [s.st_ino for s in synced] == [conf.stat().st_ino, tmp_path.stat().st_ino]


def test_generate_keeps_crlf_and_bytes_that_are_not_utf8(tmp_path):
    conf = tmp_path / "wgedge"
    text = (b"# caf\xe9\r\nconfig interface 'wg0'\r\n\toption proto 'wireguard'\r\n"
            b"\toption private_key 'generate'\r\n")
    conf.write_bytes(text)
    conf.chmod(0o640)
    loaded = loader.load(str(conf))
    keys.generate_keys(loaded)
    key = schema.encode_key(loaded.interfaces[0].private_key).encode()
    assert conf.read_bytes() == text.replace(b"generate", key)
    assert conf.stat().st_mode & 0o777 == 0o600  # it holds a key now: the owner's bits only


def test_a_key_that_cannot_be_written_is_named_after_the_config(tmp_path, monkeypatch):
    conf = installed(tmp_path)

    def read_only(*args):
        raise OSError(30, "Read-only file system", str(tmp_path / ".wgedge.1234.tmp"))

    monkeypatch.setattr(atomicfile, "write", read_only)
    with pytest.raises(OSError) as err:
        keys.generate_keys(loader.load(str(conf)))
    assert err.value.filename == str(conf) and "generated key" in err.value.strerror


CHILD = textwrap.dedent("""
    import os, signal, sys
    from wgedge.config import loader
    from wgedge.router import keys
    real = os.replace
    def replace(a, b):
        if sys.argv[2] == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real(a, b)
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
    keys.generate_keys(loader.load(sys.argv[1]))
""")


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_during_key_generation_leaves_a_file_that_loads(tmp_path, when):
    conf = installed(tmp_path)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(conf), when],
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    loaded = loader.load(str(conf))
    assert loaded.errors == []
    if when == "before":
        assert conf.read_bytes() == read(DEFAULT)  # the next start generates it
    else:
        assert loaded.interfaces[0].private_key is not None


def test_announce_writes_each_public_key_and_no_private_key(tmp_path, capsys):
    conf = tmp_path / "wgedge"
    conf.write_bytes(read(DEFAULT) + b"\nconfig interface 'wg1'\n\toption proto 'wireguard'\n"
                     b"\toption private_key 'generate'\n")
    loaded = loader.load(str(conf))
    keys.generate_keys(loaded)
    console = tmp_path / "console"
    firstboot.announce(loaded, str(console))
    crypto = load_crypto()
    want = "".join("wgedge: %s public key %s\n" % (
        i.name, schema.encode_key(crypto.x25519_public(i.private_key)))
        for i in loaded.interfaces)
    assert console.read_text() == want and len(want.splitlines()) == 2
    out = capsys.readouterr()
    for i in loaded.interfaces:
        for secret in (schema.encode_key(i.private_key), i.private_key.hex()):
            assert secret not in console.read_text() + out.out + out.err


def test_a_console_that_cannot_be_written_is_a_warning(tmp_path, capsys):
    conf = installed(tmp_path)
    loaded = loader.load(str(conf))
    keys.generate_keys(loaded)
    firstboot.announce(loaded, str(tmp_path / "no" / "such" / "console"))
    err = capsys.readouterr().err
    assert err.startswith("wgedge: warning: cannot write the public keys to ")
    assert schema.encode_key(loaded.interfaces[0].private_key) not in err


def test_up_takes_install_default_and_console():
    proc = subprocess.run([sys.executable, "-m", "wgedge", "up", "--help"],
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert "--install-default DEFAULT" in proc.stdout and "--console DEV" in proc.stdout
