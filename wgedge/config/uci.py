"""A parser for OpenWrt's UCI file syntax, written for wgedge (no libuci). MicroPython-safe.

    config TYPE ['name']          starts a section (names are [A-Za-z0-9_]; unnamed allowed)
    option KEY 'value'            sets an option of the current section
    list KEY 'value'              appends to a list option
    # comment, blank lines, ';' between statements on one line

Values: 'single quotes' (taken literally), "double quotes" and bare words (backslash escapes
the next character), adjacent pieces joined ('a'"b"c is abc).

Rules kept here: parsing never stops at the first error; every error carries the file, line
and a message, and `parse` returns (sections, errors). Nothing here knows WireGuard.
"""


class ConfigError(Exception):
    def __init__(self, path, line, message, option=None):
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
                    errors.append(ConfigError(path, lineno, "bad section type %r: use letters, "
                                              "digits and _" % words[1]))
                    current = None
                    continue
                name = words[2] if len(words) == 3 else None
                if name is not None and not valid_name(name):
                    errors.append(ConfigError(path, lineno, "bad section name %r: use letters, "
                                              "digits and _" % name))
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
                                              % keyword, key))
                    continue
                if not valid_name(key):
                    errors.append(ConfigError(path, lineno, "bad option name %r" % key))
                    continue
                if key not in current.order:
                    current.order.append(key)
                if keyword == "option":
                    if key in current.lists:
                        errors.append(ConfigError(path, lineno, "already given as a list", key))
                        continue
                    current.options[key] = (value, lineno)
                else:
                    if key in current.options:
                        errors.append(ConfigError(path, lineno, "already given as an option",
                                                  key))
                        continue
                    current.lists.setdefault(key, []).append((value, lineno))
            else:
                errors.append(ConfigError(path, lineno, "unknown keyword %r (expected config, "
                                          "option or list)" % keyword))
    return sections, errors


TRUE_WORDS = ("1", "yes", "on", "true", "enabled")
FALSE_WORDS = ("0", "no", "off", "false", "disabled")


def parse_bool(text):
    t = text.lower()
    if t in TRUE_WORDS:
        return True
    if t in FALSE_WORDS:
        return False
    raise ValueError("expected a boolean (0/1, no/yes, off/on, false/true), got %r" % text)
