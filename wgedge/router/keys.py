"""`private_key 'generate'` (UCI, as OpenWrt): a new key written into the file in its place."""

import os


def generate_keys(loaded):
    """`private_key 'generate'`: make a key and write it into the file in place of 'generate'
    (as OpenWrt does), keeping every other byte of the file and its permissions."""
    from wgedge.config.schema import encode_key
    from wgedge.core.noise import clamp

    targets = [i for i in loaded.interfaces if i.generate_line and i.private_key is None]
    if not targets:
        return
    with open(loaded.path) as f:
        lines = f.read().split("\n")
    for iface in targets:
        iface.private_key = clamp(os.urandom(32))
        i = iface.generate_line - 1
        lines[i] = lines[i].replace("'generate'", "'%s'" % encode_key(iface.private_key), 1) \
            if "'generate'" in lines[i] else lines[i].replace("generate",
                                                               encode_key(iface.private_key), 1)
    mode = os.stat(loaded.path).st_mode & 0o777
    tmp = loaded.path + ".wgedge-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode & 0o700)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, loaded.path)
