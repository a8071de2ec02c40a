"""Which `cryptography` takes the fast path, and the warning a slow one gets (wgedge/crypto/fast.py).

Runs with the venv's cryptography and again with the oldest supported one (38.0.4, `make test`'s
second pass), so the rule is checked against a real slow release as well as a real fast one.
"""

import cryptography
import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wgedge import cli
from wgedge.crypto import fast, pure
from wgedge.router import sysinfo

# (row, cryptography version, path): "slow" before 42.0.0 (Python and cffi), "slower" for 42.x
# (Rust core, 3x the cost of 43), "fast" from 43.0.0 (docs/firmware.md has the measurements).
VERSIONS = [
    (1, "38.0.4", "slow"),   # Debian 12
    (2, "39.0.2", "slow"),
    (3, "41.0.7", "slow"),   # the last release before the Rust AEAD
    (4, "41.99.0", "slow"),
    (5, "42.0.0", "slower"),
    (6, "42.0.0rc1", "slower"),
    (7, "42.0.8", "slower"),
    (8, "43.0.0", "fast"),   # the first fast one
    (9, "43.0.0rc1", "fast"),
    (10, "47.0.0", "fast"),  # Buildroot 2026.05.1, the QEMU test image
    (11, "48.0.0", "fast"),  # Buildroot 2026.08
    (12, "50.0.2", "fast"),
    (13, "100.0", "fast"),
    (14, "3.4.8", "slow"),
]


@pytest.mark.parametrize("row,version,path", VERSIONS)
def test_slow_path_by_version(row, version, path):
    text = fast.slow_path(version)
    assert (text is None) == (path == "fast"), row
    if text is not None:
        assert text.startswith("cryptography %s takes the %s path" % (version, path)
                               if path == "slow" else
                               "cryptography %s takes a slower path" % version), row
        assert text.endswith("of cryptography 43.0.0 or newer; install 43.0.0 or newer"), row


def test_installed_cryptography_is_judged_by_its_implementation():
    """The version rule agrees with what the installed release really is: its ChaCha20Poly1305
    comes from the Rust core exactly from 42.0.0 on, and only such a release can be fast."""
    in_rust = ChaCha20Poly1305.__module__.startswith("cryptography.hazmat.bindings")
    version = fast.version_tuple(cryptography.__version__)
    assert in_rust == (version >= fast.RUST_AEAD_SINCE), ChaCha20Poly1305.__module__
    assert in_rust or fast.slow_path() is not None


def test_backend_describes_and_warns_with_the_version_faked(monkeypatch):
    backend = fast.FastBackend()
    monkeypatch.setattr(cryptography, "__version__", "41.0.7")
    assert "AEAD slow path" in backend.describe()
    (warning,) = backend.warnings()
    assert warning.startswith("cryptography 41.0.7 takes the slow path")
    assert sysinfo.warning_lines(backend) == ["warning: " + warning]
    monkeypatch.setattr(cryptography, "__version__", "47.0.0")
    assert "AEAD fast path" in backend.describe()
    assert backend.warnings() == [] and sysinfo.warning_lines(backend) == []
    assert pure.PureBackend().warnings() == []


@pytest.mark.parametrize("version,warned", [("38.0.4", True), ("43.0.0", False)])
def test_info_prints_the_warning_with_the_version_faked(monkeypatch, capsys, version, warned):
    monkeypatch.setattr(cryptography, "__version__", version)
    monkeypatch.setenv("WGEDGE_CRYPTO", "fast")
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert ("crypto: fast (cryptography %s " % version) in out
    assert ("AEAD slow path" in out) == warned and ("AEAD fast path" in out) != warned
    lines = [line for line in out.splitlines() if line.startswith("warning: ")]
    if warned:
        assert lines == ["warning: cryptography %s takes the slow path: ChaCha20-Poly1305 "
                         "through Python and cffi, about 7 times the CPU time per packet of "
                         "cryptography 43.0.0 or newer; install 43.0.0 or newer" % version]
    else:
        assert lines == []


# (number cryptography's bindings report, text)
OPENSSL_NUMBERS = [
    (0x30500040, "OpenSSL 3.5.4"),
    (0x30000140, "OpenSSL 3.0.20"),
    (0x40000030, "OpenSSL 4.0.3"),
    (0x1010117F, "OpenSSL 1.1.1w"),
    (0x1010100F, "OpenSSL 1.1.1"),
]


@pytest.mark.parametrize("number,text", OPENSSL_NUMBERS)
def test_openssl_version_text(number, text):
    assert fast.openssl_version_text(number) == text


def test_describe_names_the_openssl_cryptography_reports():
    text = fast.openssl_version_text()
    assert text.startswith("OpenSSL ") and text != "OpenSSL (version unknown)"
    try:
        from cryptography.hazmat.backends.openssl.backend import backend
    except ImportError:
        return
    # The same major.minor.patch as the backend's own text ("OpenSSL 3.0.7 1 Nov 2022").
    assert backend.openssl_version_text().startswith(text), text
