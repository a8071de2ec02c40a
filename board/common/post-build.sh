#!/bin/sh
# Post-build script of every wgedge defconfig (BR2_ROOTFS_POST_BUILD_SCRIPT).
# $1 is the target directory; other arguments are ignored.
set -eu

TARGET_DIR="$1"

# /etc/config/wgedge holds the private keys ('generate' becomes a key on first
# start), so only root may read it. The overlay copies it in with mode 0644.
if [ -f "$TARGET_DIR/etc/config/wgedge" ]; then
	chmod 0600 "$TARGET_DIR/etc/config/wgedge"
fi
