#!/bin/sh
# Post-build script of every wgedge defconfig (BR2_ROOTFS_POST_BUILD_SCRIPT).
# $1 is the target directory; other arguments are ignored.
#
# The root is a read-only squashfs: the preinit (board/common/preinit/init) mounts the data
# partition on /data and binds /data/etc/config onto /etc/config, so both must exist as
# empty directories. A file put into /etc/config would be hidden at run time: the config
# a device starts from is /usr/share/wgedge/default-config (installed on the first boot).
set -eu

TARGET_DIR="$1"

mkdir -p "$TARGET_DIR/data" "$TARGET_DIR/etc/config"
if [ -n "$(ls -A "$TARGET_DIR/etc/config")" ]; then
	echo "post-build: $TARGET_DIR/etc/config is not empty: the data partition is mounted" \
		"over it at boot; ship a default config as /usr/share/wgedge/default-config" >&2
	exit 1
fi

# A default config may hold private keys (a custom one with keys in it), so only root may
# read it; the first boot installs it as /etc/config/wgedge, mode 0600.
if [ -f "$TARGET_DIR/usr/share/wgedge/default-config" ]; then
	chmod 0600 "$TARGET_DIR/usr/share/wgedge/default-config"
fi
