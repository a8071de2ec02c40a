"""A parser for OpenWrt's UCI file syntax, written for wgedge (no libuci). MicroPython-safe.

    config TYPE ['name']          starts a section (names are [A-Za-z0-9_]; unnamed allowed)
    option KEY 'value'            sets an option of the current section
    list KEY 'value'              appends to a list option
    # comment, blank lines, ';' between statements on one line

Values: 'single quotes' (taken literally), "double quotes" and bare words (backslash escapes
the next character), adjacent pieces joined ('a'"b"c is abc).

Rules kept here: parsing never stops at the first error; every error carries the file, line
and a message, and `parse` returns (sections, errors). Nothing here knows WireGuard.

Secrets in messages (the rule for every config error and warning, here, in model.py and in
wgquick.py): a key pasted into the wrong place (an address, a port, a section name) must not
come back in a message, which reaches terminals, syslog and bug reports. A message names the
file, the line, the option and what was expected; it quotes the offending value only when
that value cannot be (part of) a key:
- the value of a key option (private_key, public_key, preshared_key, PrivateKey, PublicKey,
  PresharedKey) and the contents of a key file are never quoted, whatever they hold;
- a path (private_key_file, preshared_key_file, watchdog_device) is never quoted: the option
  and line say which one, and a path is as base64-shaped as a key;
- any other value, option name, section name or keyword is quoted only when it does not hold
  KEY_RUN (16) or more base64 characters in a row (`shown`); otherwise its length is given
  instead. A key is 44 such characters, a truncated or mistyped one may be any length, while
  addresses, ports, booleans and interface names (15 at most) have no such run, host names
  seldom one.
- an option name is printed as given only when it is one of the schema's names; a name the
  user wrote that matches none goes through `option_name` first.
- as a last guard for a message that forgot the rule, ConfigError replaces any such run in
  its message by the run's length (`redact`).
"""

B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
KEY_RUN = 16


def _key_runs(text):
    """[(start, end)] of the runs of KEY_RUN or more base64 characters in `text`."""
    runs = []
    start = -1
    n = len(text)
    for i in range(n + 1):
        inside = i < n and text[i] in B64_CHARS
        if inside and start < 0:
            start = i
        elif not inside and start >= 0:
            if i - start >= KEY_RUN:
                runs.append((start, i))
            start = -1
    return runs


def key_like(text):
    """True when `text` could be (part of) a key: KEY_RUN or more base64 characters in a row."""
    return bool(_key_runs(text))


def shown(text):
    """`text` as a message may quote it: quoted, or only its length when it is key_like."""
    if text is None:
        return "nothing"
    if key_like(text):
        return "%d characters that could be a key (not shown)" % len(text)
    return repr(text)


def option_name(name):
    """An option name the user wrote, as ConfigError may print it (see the rule above)."""
    return redact(name)


def redact(text):
    """`text` with every key_like run replaced by its length: the last guard of the rule."""
    out = []
    end = 0
    for start, stop in _key_runs(text):
        out.append(text[end:start])
        out.append("[%d characters that could be a key, not shown]" % (stop - start))
        end = stop
    out.append(text[end:])
    return "".join(out)


class ConfigError(Exception):
    def __init__(self, path, line, message, option=None):
        """`option`: a name of the schema, or a name the user wrote passed through
        option_name(). The message is redacted here, as the rule's last guard."""
        message = redact(message)
        super().__init__(message)
        self.path = path
        self.line = line
        self.option = option
        self.message = message

    def __str__(self):
        where = "%s:%d" % (self.path, self.line) if self.line else str(self.path)
        if self.option:
            return "%s: option '%s': %s" % (where, self.option, self.message)
        return "%s: %s" % (where, self.message)


class Section:
    def __init__(self, stype, name, line):
        self.type = stype
        self.name = name
        self.line = line
        self.options = {}  # key -> (value, line)
        self.lists = {}  # key -> [(value, line)]
        self.order = []  # keys in the order first seen

    def get(self, key, default=None):
        v = self.options.get(key)
        return default if v is None else v[0]

    def line_of(self, key):
        if key in self.options:
            return self.options[key][1]
        if key in self.lists:
            return self.lists[key][0][1]
        return self.line


_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


def valid_name(text):
    if not text:
        return False
    for c in text:
        if c not in _NAME_CHARS:
            return False
    return True


def _tokenize(text, path, lineno, errors):
    """Split one physical line into statements, each a list of words. Returns [] on error."""
    statements = []
    words = []
    word = None  # None: no word in progress; else list of characters
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                errors.append(ConfigError(path, lineno, "unterminated single quote"))
                return []
            word = (word or []) + [text[i + 1:end]]
            i = end + 1
            continue
        if c == '"':
            i += 1
            piece = []
            closed = False
            while i < n:
                c = text[i]
                if c == "\\" and i + 1 < n:
                    piece.append(text[i + 1])
                    i += 2
                    continue
                if c == '"':
                    closed = True
                    i += 1
                    break
                piece.append(c)
                i += 1
            if not closed:
                errors.append(ConfigError(path, lineno, "unterminated double quote"))
                return []
            word = (word or []) + ["".join(piece)]
            continue
        if c == "\\":
            if i + 1 >= n:
                errors.append(ConfigError(path, lineno, "backslash at end of line"))
                return []
            word = (word or []) + [text[i + 1]]
            i += 2
            continue
        if c == "#" and word is None:
            break
        if c == ";":
            if word is not None:
                words.append("".join(word))
                word = None
            if words:
                statements.append(words)
            words = []
            i += 1
            continue
        if c in " \t\r\f\v":
            if word is not None:
                words.append("".join(word))
                word = None
            i += 1
            continue
        word = (word or []) + [c]
        i += 1
    if word is not None:
        words.append("".join(word))
    if words:
        statements.append(words)
    return statements


def parse(text, path="<config>"):
    """-> (sections, errors). Sections keep file order; errors are ConfigError objects."""
    sections = []
    errors = []
    current = None
    lineno = 0
    for raw in text.split("\n"):
        lineno += 1
        for words in _tokenize(raw, path, lineno, errors):
            keyword = words[0]
            if keyword == "package":
                continue  # allowed by uci import; the file name is the package
            if keyword == "config":
                if len(words) not in (2, 3):
                    errors.append(ConfigError(path, lineno, "expected: config TYPE ['name']"))
                    current = None
                    continue
                if not valid_name(words[1]):
                    errors.append(ConfigError(path, lineno, "bad section type %s: use letters, "
                                              "digits and _" % shown(words[1])))
                    current = None
                    continue
                name = words[2] if len(words) == 3 else None
                if name is not None and not valid_name(name):
                    errors.append(ConfigError(path, lineno, "bad section name %s: use letters, "
                                              "digits and _" % shown(name)))
                    current = None
                    continue
                current = Section(words[1], name, lineno)
                sections.append(current)
            elif keyword in ("option", "list"):
                if len(words) != 3:
                    errors.append(ConfigError(path, lineno, "expected: %s KEY 'value'" % keyword))
                    continue
                key, value = words[1], words[2]
                if current is None:
                    errors.append(ConfigError(path, lineno, "%s outside a config section"
                                              % keyword, option_name(key)))
                    continue
                if not valid_name(key):
                    errors.append(ConfigError(path, lineno, "bad option name %s: use letters, "
                                              "digits and _" % shown(key)))
                    continue
                if key not in current.order:
                    current.order.append(key)
                if keyword == "option":
                    if key in current.lists:
                        errors.append(ConfigError(path, lineno, "already given as a list",
                                                  option_name(key)))
                        continue
                    current.options[key] = (value, lineno)
                else:
                    if key in current.options:
                        errors.append(ConfigError(path, lineno, "already given as an option",
                                                  option_name(key)))
                        continue
                    current.lists.setdefault(key, []).append((value, lineno))
            else:
                errors.append(ConfigError(path, lineno, "unknown keyword %s (expected config, "
                                          "option or list)" % shown(keyword)))
    return sections, errors


TRUE_WORDS = ("1", "yes", "on", "true", "enabled")
FALSE_WORDS = ("0", "no", "off", "false", "disabled")


def parse_bool(text):
    t = text.lower()
    if t in TRUE_WORDS:
        return True
    if t in FALSE_WORDS:
        return False
    raise ValueError("expected a boolean (0/1, no/yes, off/on, false/true), got %s"
                     % shown(text))
