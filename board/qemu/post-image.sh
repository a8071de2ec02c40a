#!/bin/sh
# Post-image script of the wgedge QEMU defconfigs (BR2_ROOTFS_POST_IMAGE_SCRIPT).
#   $1  the images directory (BINARIES_DIR)
#   $2  the board directory, from BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS
# Writes $1/start-qemu.sh, which boots the image with the QEMU command line of
# $2/readme.txt: the one line there that starts with qemu-system-, written
# relative to the images directory. Buildroot's own start-qemu.sh generator
# only knows its in-tree qemu_* defconfigs.
set -eu

IMAGES_DIR="$1"
BOARD_DIR="$2"
README="$BOARD_DIR/readme.txt"

QEMU_CMD="$(sed -n 's/^[[:space:]]*\(qemu-system-.*\)$/\1/p' "$README")"
case "$QEMU_CMD" in
	"")
		echo "post-image: no qemu-system- line in $README" >&2
		exit 1;;
	*"
"*)
		echo "post-image: more than one qemu-system- line in $README" >&2
		exit 1;;
esac

cat > "$IMAGES_DIR/start-qemu.sh" <<END
#!/bin/sh
# Boots this wgedge image in QEMU (written by board/qemu/post-image.sh from
# $README). Arguments are passed on to QEMU.
cd "\$(dirname "\$0")" || exit 1
exec $QEMU_CMD "\$@"
END
chmod 0755 "$IMAGES_DIR/start-qemu.sh"
echo "post-image: wrote $IMAGES_DIR/start-qemu.sh"
