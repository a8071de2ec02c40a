"""The router side: everything that runs an interface on a Linux router around the core.

    manage.py          what `up`, `down`, `reload` and `status` do (state files, configure)
    lifecycle.py       one interface's up / down / reload as the commands run them
    watchdog.py        supervision of one daemon: restart, DNS re-resolve, reload on SIGHUP
    daemon.py          the interface daemon (`wgedge IFNAME`): logging, pid file, detach
    netsetup.py        addresses, routes, MTU through netlink (pyroute2, imported only here)
    control_client.py  the client side of the control socket (`wg`'s text protocol)
    runlock.py         one owner per interface
    privileges.py      dropping capabilities after setup
    sysinfo.py         version, Python, crypto and CPU lines for `info` and the daemon's log
    statusview.py      `status` as text and Prometheus
    atomicfile.py      the one way a file is written: aside, fsync, rename, fsync the directory
    keys.py            `private_key 'generate'` written into the config
    firstboot.py       the default config installed, public keys on the console
    upgrade.py         wgedge-upgrade: the other root slot written, tried once, confirmed
    upgradefile.py     the upgrade file's trailer (also read by board/common/mkupgrade)

Nothing in wgedge/core, crypto, io or config imports this package.
"""
