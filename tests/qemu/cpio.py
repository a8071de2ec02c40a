"""A writer for the kernel's initramfs format (cpio "newc"), gzip-compressed.

Written here rather than run through cpio(1) so that every entry is owned by root with the
modes the image needs, whoever builds it, and so that device nodes (/dev/console, which the
kernel opens before /init runs) can be added without creating them on the build host.
"""

import gzip
import os
import stat

TRAILER = "TRAILER!!!"


class Archive:
    def __init__(self, path, level=6):
        self.f = gzip.open(path, "wb", compresslevel=level)
        self.ino = 1
        self.count = 0

    def _entry(self, name, mode, data=b"", mtime=0, rdev=(0, 0), nlink=1):
        raw = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, int(mtime), len(data), 0, 0,
                  rdev[0], rdev[1], len(raw), 0)
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.f.write(header + raw + b"\0" * (-(len(header) + len(raw)) % 4))
        self.f.write(data + b"\0" * (-len(data) % 4))
        self.ino += 1
        self.count += 1

    def add_tree(self, root):
        """Every file, directory and symlink under `root`, named relative to it. Other kinds
        (sockets, fifos, device nodes a package left behind) are left out."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            if rel != ".":
                st = os.lstat(dirpath)
                self._entry(rel, stat.S_IFDIR | stat.S_IMODE(st.st_mode), mtime=st.st_mtime,
                            nlink=2)
            # os.walk lists symlinks to directories among dirnames: archive them as links.
            for name in sorted(filenames) + [d for d in dirnames
                                             if os.path.islink(os.path.join(dirpath, d))]:
                path = os.path.join(dirpath, name)
                arc = os.path.normpath(os.path.join(rel, name))
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    self._entry(arc, stat.S_IFLNK | 0o777, os.readlink(path).encode(),
                                st.st_mtime)
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as f:
                        self._entry(arc, stat.S_IFREG | stat.S_IMODE(st.st_mode), f.read(),
                                    st.st_mtime)

    def add_file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def add_chardev(self, name, major, minor, mode=0o600):
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def close(self):
        self._entry(TRAILER, 0)
        self.f.close()
