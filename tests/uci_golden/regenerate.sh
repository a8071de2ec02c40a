#!/bin/sh
# Regenerate the expected outputs of the golden differential tests (tests/test_uci_golden.py)
# with OpenWrt's own uci. Every file here without a dot in its name is an input; for each:
#   NAME.export   what `uci export NAME` printed (the file was read)
#   NAME.named    what `uci -n export NAME` printed (unnamed sections get their cfgNNHHHH id)
#   NAME.refused  `exit CODE` and uci's message, when uci refused the file (strict mode,
#                 its default: one bad statement refuses the whole file)
#
# usage: tests/uci_golden/regenerate.sh /path/to/uci
#
# The expected files in the repository were made with openwrt/uci 66127cd76c5d (2025-12-02)
# on openwrt/libubox 1aa36ee774c8 (2026-02-13), built on Debian with libjson-c-dev:
#   git clone https://github.com/openwrt/libubox && cd libubox && mkdir build && cd build
#   cmake .. -DBUILD_LUA=OFF -DBUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=/tmp/ref-prefix
#   make install
#   git clone https://github.com/openwrt/uci && cd uci && mkdir build && cd build
#   cmake .. -DBUILD_LUA=OFF -DCMAKE_PREFIX_PATH=/tmp/ref-prefix \
#       -DCMAKE_C_FLAGS=-I/tmp/ref-prefix/include -DCMAKE_EXE_LINKER_FLAGS=-L/tmp/ref-prefix/lib \
#       -DCMAKE_SHARED_LINKER_FLAGS=-L/tmp/ref-prefix/lib
#   make
#   LD_LIBRARY_PATH=/tmp/ref-prefix/lib:$PWD tests/uci_golden/regenerate.sh $PWD/uci
# (none of uci's code is in this repository; only what it printed).
#
# -C and -t point at an empty directory so that no override file (/var/run/uci) and no
# saved change (/tmp/.uci) of the machine that runs this changes what uci prints.
set -eu
UCI=${1:?usage: $0 /path/to/uci}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/conf" "$work/empty"
for input in "$here"/*; do
    name=$(basename "$input")
    case "$name" in *.*) continue ;; esac
    cp "$input" "$work/conf/$name"
    rm -f "$here/$name.export" "$here/$name.named" "$here/$name.refused"
    set -- -c "$work/conf" -C "$work/empty" -t "$work/empty"
    if "$UCI" "$@" export "$name" >"$work/out" 2>"$work/err"; then
        mv "$work/out" "$here/$name.export"
        "$UCI" "$@" -n export "$name" >"$here/$name.named"
    else
        code=$?
        { echo "exit $code"; sed "s|^$UCI: |uci: |" "$work/err"; } >"$here/$name.refused"
    fi
    rm "$work/conf/$name"
done
