"""The initramfs writer (cpio "newc", gzip-compressed) for the images tests/qemu builds.

The writer itself is board/common/mkpreinit's `Archive`: Buildroot's post-image script runs that
file to build the preinit initramfs, so it cannot import from tests/. It writes every entry
owned by root with the modes the image needs, whoever builds it, and adds device nodes
(/dev/console, which the kernel opens before /init runs) without creating them on the host.
"""

import importlib.machinery
import importlib.util
import os

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "board", "common", "mkpreinit")
_loader = importlib.machinery.SourceFileLoader("wgedge_mkpreinit", _PATH)
_spec = importlib.util.spec_from_loader(_loader.name, _loader)
mkpreinit = importlib.util.module_from_spec(_spec)
_loader.exec_module(mkpreinit)

Archive = mkpreinit.Archive
TRAILER = mkpreinit.TRAILER
