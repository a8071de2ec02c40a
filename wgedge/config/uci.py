"""A parser for OpenWrt's UCI file syntax, written for wgedge (no libuci). MicroPython-safe.

    config TYPE ['name']          starts a section (unnamed allowed; '' is unnamed too)
    option KEY 'value'            sets an option of the current section
    list KEY 'value'              appends to a list option
    # comment, blank lines, ';' between statements on one line

A file means here what it means to OpenWrt's own uci (openwrt/uci file.c, list.c): the word
rules are in _Reader, the merge rules in _Package, each checked against the real uci
(tests/uci_golden/ holds what it printed; docs/configuration.md lists where wgedge differs
on purpose). export.py prints the sections as `uci export` does.

About 540 lines, on purpose: one parser, whose word rules (_Reader) and merge rules
(_Package) must be read beside each other and beside uci's file.c to check them, and the
rule for secrets in messages that every config module follows (key_like, shown, redact,
ConfigError). The module must stay MicroPython-safe (tests/test_subset.py), so it cannot lean
on a sibling module that is not.

Rules kept here: parsing never stops at the first error; every error carries the file, line
and a message, and `parse` returns (sections, errors), warnings going to the list it is
given. A file uci refuses gives at least one error. Nothing here knows WireGuard.

Secrets in messages (the rule for every config error and warning, here, in validate.py,
schema.py and wgquick.py): a key pasted into the wrong place (an address, a port, a section
name) must not come back in a message, which reaches terminals, syslog and bug reports. A
message names the file, the line, the option and what was expected; it quotes the offending
value only when that value cannot be (part of) a key:
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
    """One section as uci holds it after reading the file.

    `name` is None for an unnamed section; `uci_name` is then the id uci gives it
    (cfgNNHHHH, see _anonymous_id). `options` and `lists` hold what the model reads, values
    with any byte that was not UTF-8 replaced by U+FFFD; `raw` holds the values exactly as
    read (a str, or a list of str for a list option), which `export` prints. `order` is uci's
    order of the options: where an option was first set, kept when a later line changes it.
    `lines` are the lines of every `config` statement that opened this section (more than
    one when sections of the same type and name were merged)."""

    def __init__(self, stype, name, line, uci_name=None):
        self.type = stype
        self.name = name
        self.uci_name = name if uci_name is None else uci_name
        self.line = line
        self.lines = [line]
        self.options = {}  # key -> (value, line)
        self.lists = {}  # key -> [(value, line)]
        self.raw = {}  # key -> value or [values], as read
        self.order = []  # keys in uci's order

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
# C's isspace() in the C locale, which uci uses between words
_SPACE = " \t\n\r\f\v"
_END = "\0"  # the end of uci's line buffer


def valid_name(text):
    """A section or option name: [A-Za-z0-9_]+ (uci's rule for names)."""
    if not text:
        return False
    for c in text:
        if c not in _NAME_CHARS:
            return False
    return True


def valid_type(text):
    """A section type: printable ASCII without spaces (uci allows `bridge-vlan`, `a.b`)."""
    if not text:
        return False
    for c in text:
        if ord(c) < 33 or ord(c) > 126:
            return False
    return True


def valid_package(text):
    """A package (file) name as uci accepts it: [A-Za-z0-9_-]+."""
    if not text:
        return False
    for c in text:
        if c not in _NAME_CHARS and c != "-":
            return False
    return True


def _anonymous_id(count, stype):
    """The name uci gives the `count`th section of the file when it has none: a counter
    and a hash (D. J. Bernstein's) of the type, as `uci show` and `uci -n export` print."""
    h = 5381
    for c in stype:
        h = (h * 33 + ord(c)) & 0xFFFFFFFF
    return "cfg%02x%04x" % (count, h & 0xFFFF)


def _clean(value):
    """`value` with each byte that was not UTF-8 (read as a surrogate escape) made U+FFFD."""
    for c in value:
        if 0xDC80 <= ord(c) <= 0xDCFF:
            break
    else:
        return value
    return "".join("\ufffd" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in value)


class _Refused(Exception):
    """A statement uci refuses: the message, and the rest of the line is skipped."""

    def __init__(self, message, option=None):
        super().__init__(message)
        self.message = message
        self.option = option


class _Reader:
    """uci's line buffer and word rules (file.c in openwrt/uci), written here as they
    behave, because a file must mean here what it means to OpenWrt:

    - A statement is read from one line; the line grows when a quoted word runs past its
      end (the value then holds the newline) or when a backslash ends it (the lines are
      joined; a word still ends if the next line starts with white space).
    - Words: 'single quotes' are literal; in "double quotes" and bare words a backslash
      takes the next character literally; pieces join ('a'"b"c is abc). A bare `#` ends
      the line (`host#name` is host, `'a'#b` is a), quoted or after a backslash it is kept.
    - `;` ends a statement. Where a bare word is directly followed by `;` uci cuts the line
      there: the rest of the line is ignored (`reader.cut` records it, the parser warns).
    - The keyword is the first run of non-blank (space, tab) characters and must be
      exactly config/option/list/package or c/o/l/p.
    """

    def __init__(self, text):
        self.text = text
        self.next = 0  # where the next physical line starts in text
        self.buf = []  # characters: a statement that runs over many lines grows in place
        self.end = 0  # logical end of buf (uci writes a NUL there)
        self.pos = 0
        self.line = 0  # physical lines read so far
        self.cut = False
        self.short = False

    def more(self):
        return self.next < len(self.text)

    def getln(self, offset):
        """Replace the buffer from `offset` on with the next physical line."""
        while len(self.buf) > offset:
            self.buf.pop()
        self.end = offset
        if self.next >= len(self.text):
            return
        stop = self.text.find("\n", self.next)
        stop = len(self.text) if stop < 0 else stop + 1
        self.buf.extend(self.text[self.next:stop])
        self.end = len(self.buf)
        self.next = stop
        self.line += 1

    def at(self, i):
        return self.buf[i] if i < self.end else _END

    def cur(self):
        return self.at(self.pos)

    def skip_space(self):
        while self.cur() in _SPACE:
            self.pos += 1

    def _backslash(self):
        """After a backslash: False when it ended the line (the next line was joined)."""
        self.pos += 1
        c = self.cur()
        if c == _END or c == "\n" or (c == "\r" and self.at(self.pos + 1) == "\n"
                                      and self.at(self.pos + 2) == _END):
            self.getln(self.pos)
            return False
        return True

    def _quoted(self, out, quote):
        self.pos += 1
        while True:
            c = self.cur()
            if c == quote:
                self.pos += 1
                return
            if c == _END:
                self.getln(self.pos)
                if self.cur() == _END:
                    raise _Refused("unterminated %s quote (the file ends inside it)"
                                   % ("single" if quote == "'" else "double"))
                continue
            if c == "\\" and quote == '"' and not self._backslash():
                continue
            out.append(self.cur())
            self.pos += 1

    def word(self):
        """One word, as uci's parse_str reads it."""
        start = self.pos
        out = []
        go_on = True
        while True:
            c = self.cur()
            if c == "'" or c == '"':
                self._quoted(out, c)
            elif c == "#":
                self.end = self.pos
                break
            elif c == _END:
                break
            elif c == ";":
                go_on = False
                break
            elif c == "\\" and not self._backslash():
                pass
            else:
                out.append(self.cur())
                self.pos += 1
            c = self.cur()
            if c == _END or c in _SPACE:
                break
        if self.cur() != _END and go_on:
            self.pos += 1
        elif self.cur() != _END and start + len(out) == self.pos:
            # uci ends the word with a NUL where it stopped: on this ';' itself
            rest = "".join(self.buf[self.pos + 1:self.end]).strip()
            if rest and rest[0] != "#":
                self.cut = True
            self.end = self.pos
        return "".join(out)

    def arg(self, required=None):
        """The next word; `required` names it for the error when it is missing or empty."""
        self.skip_space()
        if self.cur() == ";":
            self.pos += 1
            value = ""
        else:
            value = self.word()
        if not value and required:
            raise _Refused("missing %s" % required)
        return value

    def assert_end(self):
        self.skip_space()
        if self.arg():
            raise _Refused("too many words (quote a value that holds spaces)")

    def keyword(self):
        """The next statement's keyword, or None at the end of the line."""
        p = self.pos
        while self.at(p) in " \t":
            p += 1
        if self.at(p) == _END:
            return None
        q = p
        while self.at(q) not in " \t" + _END:
            q += 1
        word = "".join(self.buf[p:q])
        if word[0] == "#":
            return None
        # the arguments start after the blank that ends the keyword; a keyword that ends
        # the file has none (checked once the keyword is known to be one)
        self.short = q + 1 > self.end
        self.pos = q + 1
        return word


_KEYWORDS = {"c": "config", "config": "config", "o": "option", "option": "option",
             "l": "list", "list": "list", "p": "package", "package": "package"}


class _Package:
    """The sections read so far, and the rules by which uci merges statements into them."""

    def __init__(self, path, warnings):
        self.path = path
        self.warnings = warnings
        self.sections = []
        self.by_name = {}
        self.count = 0  # sections created: the counter in anonymous ids

    def warn(self, line, message, option=None):
        if self.warnings is not None:
            option = None if option is None else option_name(option)
            self.warnings.append(ConfigError(self.path, line, message, option))

    def config(self, stype, name, line):
        if not name:
            self.count += 1
            section = Section(stype, None, line, _anonymous_id(self.count, stype))
        else:
            section = self.by_name.get(name)
            if section is not None and section.type != stype:
                raise _Refused("section %s is already a %s section (line %d): one name cannot "
                               "have two types" % (shown(name), shown(section.type),
                                                   section.line))
            if section is not None:
                section.lines.append(line)
                self.warn(line, "section %s %s at line %d is given again here: the two are "
                          "merged, later options win (as OpenWrt reads them)"
                          % (shown(stype), shown(name), section.line))
                return section
            self.count += 1
            section = Section(stype, name, line)
        self.sections.append(section)
        self.by_name[section.uci_name] = section
        return section

    def option(self, s, key, value, line):
        if not value:
            if key in s.raw:
                self.warn(line, "an empty value changes nothing: the value from line %d stays"
                          % s.line_of(key), key)
            else:
                self.warn(line, "no value: the option is not set", key)
            return
        if key in s.lists:
            self.warn(line, "replaces the list given at line %d" % s.line_of(key), key)
            del s.lists[key]
        elif key in s.options:
            self.warn(line, "given again: this value replaces the one from line %d"
                      % s.options[key][1], key)
        else:
            s.order.append(key)
        s.options[key] = (_clean(value), line)
        s.raw[key] = value
        self._check_text(value, line, key)

    def add_list(self, s, key, value, line):
        if key in s.options:
            # `option X` then `list X`: the option's value becomes the list's first item
            old, old_line = s.options.pop(key)
            s.lists[key] = [(old, old_line)]
            s.raw[key] = [s.raw[key]]
        elif key not in s.lists:
            s.lists[key] = []
            s.raw[key] = []
            s.order.append(key)
        s.lists[key].append((_clean(value), line))
        s.raw[key].append(value)
        self._check_text(value, line, key)

    def _check_text(self, value, line, key):
        if _clean(value) is not value:
            self.warn(line, "the value holds bytes that are not UTF-8 (read as U+FFFD)", key)
        if "\n" in value:
            self.warn(line, "the value runs over %d lines (is a quote missing?)"
                      % (value.count("\n") + 1), key)


def _statement(reader, package, current, word, line):
    """Apply one statement; returns the current section (None before the first, False
    after a refused `config`: its options are read but not kept)."""
    kind = _KEYWORDS.get(word)
    if not word.strip():
        raise _Refused("a ';' ends the line: uci refuses that, remove it")
    if kind is None and _KEYWORDS.get(word.strip()) is not None:
        raise _Refused("%s without arguments" % _KEYWORDS[word.strip()])
    if kind is None:
        raise _Refused("unknown keyword %s (expected config, option or list)"
                       % shown(word.strip()))
    if reader.short:
        raise _Refused("%s without arguments" % kind)
    if kind == "package":
        name = reader.arg("package name")
        if not valid_package(name):
            raise _Refused("bad package name %s: use letters, digits, _ and -" % shown(name))
        reader.assert_end()
        return current  # the file's name is the package, as `uci` reads /etc/config
    if kind == "config":
        stype = reader.arg("section type")
        if not valid_type(stype):
            raise _Refused("bad section type %s: use printable characters without spaces"
                           % shown(stype))
        name = reader.arg()
        if name and not valid_name(name):
            raise _Refused("bad section name %s: use letters, digits and _" % shown(name))
        reader.assert_end()
        return package.config(stype, name, line)
    key = reader.arg("option name")
    if current is None:
        raise _Refused("%s outside a config section" % kind, option_name(key))
    if not valid_name(key):
        raise _Refused("bad option name %s: use letters, digits and _" % shown(key))
    value = reader.arg()
    reader.assert_end()
    if current is False:
        return current
    if kind == "option":
        package.option(current, key, value, line)
    else:
        package.add_list(current, key, value, line)
    return current


def parse(text, path="<config>", warnings=None):
    """-> (sections, errors): the file as uci reads it. Sections keep uci's order; errors
    and (when a list is given) warnings are ConfigError objects. Where uci refuses the whole
    file (its default, strict mode), each refused statement is an error here and the rest of
    its line is skipped, so one run reports them all; a file with errors is not used."""
    package = _Package(path, warnings)
    errors = []
    if "\0" in text:
        errors.append(ConfigError(path, text[:text.find("\0")].count("\n") + 1,
                                  "a NUL byte: this is not a text file"))
        return [], errors
    reader = _Reader(text)
    current = None
    while reader.more():
        reader.pos = 0
        reader.getln(0)
        reader.skip_space()
        try:
            while True:
                line = reader.line
                word = reader.keyword()
                if word is None:
                    break
                try:
                    current = _statement(reader, package, current, word, line)
                except _Refused:
                    # the options of a refused section, or after a refused first line, are
                    # read but not kept, and not reported once more each
                    if current is None or _KEYWORDS.get(word.strip()) == "config":
                        current = False
                    raise
                if reader.cut:
                    reader.cut = False
                    package.warn(line, "the rest of the line after ';' is ignored (as uci "
                                 "does): put a space before the ';' or start a new line")
        except _Refused as exc:
            errors.append(ConfigError(path, line, exc.message, exc.option))
    return package.sections, errors


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
