"""`wgedge check --export FILE`: sections as `uci export` prints them, byte for byte the same
for a file uci reads (tests/uci_golden/). MicroPython-safe like the parser (uci.py), and
run there too on the golden files; only the command line uses it."""


def escape(text):
    """uci's escaping inside single quotes: ' becomes '\\''."""
    return text.replace("'", "'\\''")


def quote(text):
    return "'" + escape(text) + "'"


def export(sections, package, names=False):
    """The sections as `uci export PACKAGE` prints them (`uci -n export` with names=True:
    unnamed sections get their cfgNNHHHH id). Values are printed as read, so a caller that
    decoded the file with surrogateescape gets uci's bytes back by encoding the same way."""
    out = ["package %s\n" % escape(package)]
    for s in sections:
        out.append("\nconfig %s" % escape(s.type))
        if s.name is not None or names:
            out.append(" %s" % quote(s.uci_name))
        out.append("\n")
        for key in s.order:
            value = s.raw[key]
            if isinstance(value, list):
                for item in value:
                    out.append("\tlist %s %s\n" % (key, quote(item)))
            else:
                out.append("\toption %s %s\n" % (key, quote(value)))
    out.append("\n")
    return "".join(out)
