#!/bin/sh
# Post-image script of every wgedge defconfig (BR2_ROOTFS_POST_IMAGE_SCRIPT), run before a
# board's own. Buildroot has built rootfs.squashfs in the images directory; this writes
#   preinit.cpio.gz  the preinit initramfs (board/common/mkpreinit: preinit/init as /init,
#                    BusyBox and e2fsck from the target with the libraries they load)
#   the disk image   genimage with the board's genimage.cfg (root slots a and b, data)
#   rootfs.upgrade   the same root as an upgrade file for wgedge-upgrade (mkupgrade), named
#                    for the board in /etc/wgedge-board
#   $1  the images directory (BINARIES_DIR)
#   $2  the board directory (BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS): its genimage.cfg, or the
#       one of the directory above (board/qemu/genimage.cfg serves both QEMU boards)
set -eu

IMAGES_DIR="$1"
BOARD_DIR="$2"
COMMON_DIR="$(dirname "$0")"
: "${TARGET_DIR:?run by Buildroot, which sets TARGET_DIR}"
: "${BUILD_DIR:?run by Buildroot, which sets BUILD_DIR}"

BOARD_NAME="$(cat "$TARGET_DIR/etc/wgedge-board")"
GENIMAGE_CFG="$BOARD_DIR/genimage.cfg"
[ -f "$GENIMAGE_CFG" ] || GENIMAGE_CFG="$(dirname "$BOARD_DIR")/genimage.cfg"

python3 "$COMMON_DIR/mkpreinit" --root "$TARGET_DIR" --init "$COMMON_DIR/preinit/init" \
	--binary /bin/busybox --binary /sbin/e2fsck "$IMAGES_DIR/preinit.cpio.gz"

# An empty root path: genimage copies it, and every image here is built already (the data
# partition is made empty).
GENIMAGE_TMP="$BUILD_DIR/genimage.tmp"
ROOTPATH_TMP="$(mktemp -d)"
trap 'rm -rf "$ROOTPATH_TMP"' EXIT
rm -rf "$GENIMAGE_TMP"
genimage --rootpath "$ROOTPATH_TMP" --tmppath "$GENIMAGE_TMP" \
	--inputpath "$IMAGES_DIR" --outputpath "$IMAGES_DIR" --config "$GENIMAGE_CFG"

python3 "$COMMON_DIR/mkupgrade" --board "$BOARD_NAME" "$IMAGES_DIR/rootfs.squashfs" \
	"$IMAGES_DIR/rootfs.upgrade"
echo "post-image: $IMAGES_DIR: preinit.cpio.gz, the disk image, rootfs.upgrade ($BOARD_NAME)"
