"""Reading a config file: the entry point of wgedge/config. `load(path)` -> Loaded, with
every problem of the file in `errors` and `warnings` (file, line, option), a UCI file read by
uci.py, a wg-quick file (a name ending in .conf) by wgquick.py, both checked by the one
validator (validate.py)."""

from wgedge.config import uci, wgquick
from wgedge.config.schema import Loaded
from wgedge.config.uci import ConfigError
from wgedge.config.validate import UCI, check_sections


def read_text(path):
    """The file's text. Bytes that are not UTF-8 come back as surrogate escapes: a stray
    byte in a description does not refuse the file (uci reads bytes), the parser warns
    about it, and `check --export` prints it back unchanged."""
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "surrogateescape")


def from_uci(text, path):
    loaded = Loaded(path)
    sections, errors = uci.parse(text, path, loaded.warnings)
    loaded.errors.extend(errors)
    check_sections(sections, loaded, UCI)
    return loaded


def load(path):
    """Read a UCI file, or a wg-quick file when the name ends in .conf."""
    try:
        text = read_text(path)
    except OSError as exc:
        loaded = Loaded(path)
        loaded.errors.append(ConfigError(path, 0, "cannot read: %s" % exc.strerror))
        return loaded
    if path.endswith(".conf"):
        return wgquick.from_text(text, path)
    return from_uci(text, path)
