################################################################################
#
# python-wgedge
#
################################################################################

# Built from the br2-external tree itself (the wgedge repository). Keep the
# version equal to wgedge/__init__.py's __version__ (tests/test_firmware_tree.py
# checks it): Buildroot records it in legal-info and the build directory name.
PYTHON_WGEDGE_VERSION = 0.1.0
PYTHON_WGEDGE_SITE = $(BR2_EXTERNAL_WGEDGE_PATH)
PYTHON_WGEDGE_SITE_METHOD = local
PYTHON_WGEDGE_LICENSE = MIT
PYTHON_WGEDGE_SETUP_TYPE = setuptools

# A local site is copied with rsync into $(BUILD_DIR). Leave out what is not
# the package: a Buildroot output directory made inside the repository (which
# would otherwise be copied into itself), the download cache, the venv, and
# everything the repository's .gitignore names.
PYTHON_WGEDGE_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /output --exclude /.cache --exclude /.venv \
	--filter=':- .gitignore'

# The one init script, shared with rootfs_overlay/ (which installs the same
# file again on the wgedge defconfigs): a package installs its own start script,
# so a defconfig that takes python-wgedge without the overlay still gets it.
define PYTHON_WGEDGE_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/rootfs_overlay/etc/init.d/S50wgedge \
		$(TARGET_DIR)/etc/init.d/S50wgedge
endef

$(eval $(python-package))
