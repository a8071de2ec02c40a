"""Golden differential tests: files read by OpenWrt's own uci and by wgedge.

Each file without a dot in tests/uci_golden/ is an input. Beside it is what the real uci
printed for it (tests/uci_golden/regenerate.sh is the command that made them):
NAME.export (`uci export NAME`), NAME.named (`uci -n export NAME`) or, when uci refused the
file, NAME.refused. `wgedge check --export NAME` must print NAME.export byte for byte, the
function behind it with names=True NAME.named, and a file uci refuses wgedge refuses too.
"""

import os

import pytest

from wgedge import cli
from wgedge.config import export, loader, uci

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "uci_golden")
INPUTS = sorted(n for n in os.listdir(HERE) if "." not in n)
READ = [n for n in INPUTS if os.path.exists(os.path.join(HERE, n + ".export"))]
REFUSED = [n for n in INPUTS if os.path.exists(os.path.join(HERE, n + ".refused"))]


def golden(name):
    with open(os.path.join(HERE, name), "rb") as f:
        return f.read()


def read(name):
    """(sections, errors, warnings) of the input as wgedge reads it."""
    warnings = []
    sections, errors = uci.parse(loader.read_text(os.path.join(HERE, name)), name, warnings)
    return sections, errors, warnings


def test_every_input_has_one_expectation_and_there_are_enough():
    assert len(INPUTS) >= 40
    for name in INPUTS:
        assert (name in READ) != (name in REFUSED), name
        assert os.path.exists(os.path.join(HERE, name + ".named")) == (name in READ), name
    # both kinds are there, and the LuCI-written network files of DSA routers
    assert len(REFUSED) >= 10 and len(READ) >= 30
    assert any(b"config bridge-vlan" in golden(n) for n in READ)


@pytest.mark.parametrize("name", READ)
def test_check_export_prints_what_uci_printed(name, capfdbinary):
    code = cli.main(["check", "--export", os.path.join(HERE, name)])
    out, _ = capfdbinary.readouterr()
    assert code == 0
    assert out == golden(name + ".export")


@pytest.mark.parametrize("name", READ)
def test_unnamed_sections_get_uci_ids(name):
    sections, errors, _ = read(name)
    assert not errors
    text = export.export(sections, name, names=True)
    assert text.encode("utf-8", "surrogateescape") == golden(name + ".named")


@pytest.mark.parametrize("name", REFUSED)
def test_a_file_uci_refuses_is_refused(name, capfdbinary):
    expected = golden(name + ".refused").decode()
    assert expected.startswith("exit 1\nuci: Parse error (")
    _, errors, _ = read(name)
    assert errors
    code = cli.main(["check", "--export", os.path.join(HERE, name)])
    out, err = capfdbinary.readouterr()
    assert code == 1 and out == b""
    assert b"error: " + os.path.join(HERE, name).encode() in err


def test_micropython_reads_the_golden_files_the_same(micropython):
    """uci.py and export.py stay in the MicroPython subset: there it prints the same exports (the UTF-8
    inputs; MicroPython has no surrogate escapes for the stray-byte file)."""
    texts = []
    for name in READ:
        try:
            texts.append((name, golden(name).decode()))
        except UnicodeDecodeError:
            continue
    script = ("from wgedge.config import export, uci\n"
              "for name, text in %r:\n"
              "    sections, errors = uci.parse(text, name, [])\n"
              "    print(export.export(sections, name, True).replace('\\r', '<CR>'), end='')\n"
              % texts)
    # (a carriage return is spelled out: the runner's pipe reads text with universal newlines)
    expected = "".join(golden(name + ".named").decode().replace("\r", "<CR>")
                       for name, _ in texts)
    assert len(texts) >= 40
    assert micropython(script) == expected


# --- against the real uci, when one is at hand -------------------------------------------
# WGEDGE_UCI=/path/to/uci (built as tests/uci_golden/regenerate.sh says; set LD_LIBRARY_PATH
# for its libraries) runs random files through both readers. Without it the test is skipped:
# the golden files above are what every run checks.

PIECES = ["a", "b1", "x_y", "'q r'", '"s\\"t"', "'it'\\''s'", "h#c", "'#'", "v\\ w", "''",
          '""', "\\\n", "m\\\nn", "'multi\nline'", '"d\nq"', "\u00e9", "\udce9", ";", "1420",
          "-", "a.b", "\\#", "\\\\", "cfg01b619"]
ENDINGS = ["", "", "", " # c", "#c", ";", " ; option z 1", ";option z 2", " ", "\r"]


def random_file(rnd):
    def word():
        return "".join(rnd.choice(PIECES) for _ in range(rnd.choice([1, 1, 1, 2, 3])))

    lines = []
    for i in range(rnd.randint(1, 10)):
        if i == 0 or rnd.random() < 0.25:
            stype = rnd.choice(["t", "interface", "bridge-vlan", "wireguard_wg0", word()])
            line = "config %s%s" % (stype, rnd.choice(["", " a", " ''", " " + word()]))
        else:
            line = "\t%s %s%s" % (rnd.choice(["option", "list", "o", "l", word()]),
                                  rnd.choice(["k", "mtu", word()]),
                                  rnd.choice(["", " " + word(), " " + word() + " " + word()]))
        lines.append(line + rnd.choice(ENDINGS))
    return ("\n".join(lines) + rnd.choice(["\n", ""])).encode("utf-8", "surrogateescape")


@pytest.mark.skipif(not os.environ.get("WGEDGE_UCI"), reason="WGEDGE_UCI (a built uci) not set")
def test_random_files_read_as_uci_reads_them(tmp_path):
    import random
    import subprocess

    conf, empty = tmp_path / "conf", tmp_path / "empty"
    conf.mkdir()
    empty.mkdir()
    accepted = 0
    for seed in range(300):
        data = random_file(random.Random(seed))
        (conf / "f").write_bytes(data)
        for names in (False, True):
            real = subprocess.run([os.environ["WGEDGE_UCI"], "-c", str(conf), "-C", str(empty),
                                   "-t", str(empty)] + ["-n"] * names + ["export", "f"],
                                  capture_output=True)
            sections, errors = uci.parse(data.decode("utf-8", "surrogateescape"), "f", [])
            assert (real.returncode != 0) == bool(errors), (seed, data, real.stderr, errors)
            if not errors:
                ours = export.export(sections, "f", names).encode("utf-8", "surrogateescape")
                assert ours == real.stdout, (seed, data)
                accepted += not names
    assert accepted > 30  # the generator still makes files uci reads
