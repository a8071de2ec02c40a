#!/bin/sh
# Post-build script of wgedge_raspberrypi4_64_defconfig, after
# board/common/post-build.sh. $1 is the target directory.
set -eu

TARGET_DIR="$1"
INITTAB="$TARGET_DIR/etc/inittab"

# A login prompt on the HDMI screen (tty1) too, besides the serial console.
if [ -f "$INITTAB" ] && ! grep -q '^tty1::' "$INITTAB"; then
	echo 'tty1::respawn:/sbin/getty -L tty1 0 vt100 # HDMI console' >> "$INITTAB"
fi
