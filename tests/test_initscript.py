"""rootfs_overlay's BusyBox init script, driven for real inside a network namespace."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.netns import ROOT, sh

pytestmark = [pytest.mark.root]
SCRIPT = os.path.join(ROOT, "rootfs_overlay", "etc", "init.d", "S50wgedge")
DEFAULT_CONFIG = os.path.join(ROOT, "rootfs_overlay", "usr", "share", "wgedge", "default-config")



def run(ns, action, config, **more_env):
    env = dict(os.environ, PYTHONPATH=ROOT, WGEDGE_CONFIG=config,
               PATH=os.path.dirname(sys.executable) + ":" + os.environ["PATH"],
               WGEDGE_CONSOLE=os.devnull)
    env.update(more_env)
    return sh("sh", SCRIPT, action, ns=ns, env=env, check=False, timeout=60)


def test_start_reload_restart_stop(nets, tmp_path):
    assert os.stat(SCRIPT).st_mode & 0o777 == 0o755
    ns = nets.ns("i")
    ifname = "wgi" + nets.tag  # the script's `stop` downs every interface: only this test's
    # run directories (tests/netns.py) hold any
    conf = tmp_path / "wgedge"
    shutil.copy(DEFAULT_CONFIG, conf)
    text = conf.read_text().replace("'wg0'", "'%s'" % ifname)
    conf.write_text(text)
    conf.chmod(0o600)
    res = run(ns, "start", str(conf))
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
    assert "private_key 'generate'" not in conf.read_text()  # a key was made and written back
    assert "10.99.0.1/24" in sh("ip", "addr", "show", ifname, ns=ns).stdout
    assert os.path.exists("/var/run/wgedge/%s.watchdog.pid" % ifname)
    conf.write_text(conf.read_text() + "\nconfig wireguard_%s 'p'\n\toption public_key " % ifname +
                    "'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='\n"
                    "\tlist allowed_ips '10.99.0.2/32'\n")
    assert run(ns, "reload", str(conf)).returncode == 0
    assert "peer: HIgo9x" in sh("wg", "show", ifname, ns=ns).stdout
    conf.write_text(conf.read_text() + "\tlist allowed_ips 'nonsense'\n")
    res = run(ns, "reload", str(conf))
    assert res.returncode != 0 and "unchanged" in res.stdout
    assert "peer: HIgo9x" in sh("wg", "show", ifname, ns=ns).stdout
    conf.write_text(conf.read_text().replace("\tlist allowed_ips 'nonsense'\n", ""))
    assert run(ns, "restart", str(conf)).returncode == 0
    assert sh("ip", "link", "show", ifname, ns=ns, check=False).returncode == 0
    # Beside it, what `stop` must leave alone: a wireguard-go interface in another namespace
    # (its socket in the same /var/run/wireguard), and a stale pid file naming a live process
    # that wgedge does not run.
    ns_go, goname = nets.ns("g"), "wgg" + nets.tag
    nets.start_wireguard_go(ns_go, goname)
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        with open("/var/run/wgedge/gone.watchdog.pid", "w") as f:
            f.write("%d\n" % bystander.pid)
        res = run(ns, "stop", str(conf))
        assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
        assert bystander.poll() is None, "stop signalled a process wgedge does not run"
    finally:
        bystander.kill()
        bystander.wait()
    assert sh("ip", "link", "show", ifname, ns=ns, check=False).returncode != 0
    assert not os.path.exists("/var/run/wgedge/%s.watchdog.pid" % ifname)
    assert not os.path.exists("/var/run/wireguard/%s.sock" % ifname)
    assert os.listdir("/var/run/wgedge") == []
    assert "listening port" in sh("wg", "show", goname, ns=ns_go).stdout
    assert run(ns, "bogus", str(conf)).returncode == 1


def test_first_boot_installs_the_default_makes_a_key_once_and_shows_its_public_key(nets,
                                                                                  tmp_path):
    """No config yet: `start` installs the image's default (0600), the key is generated and
    written once, and every start writes the public key line to the console; `wgedge status`
    shows the same key. The private key appears in none of them."""
    from wgedge.config import loader, schema
    from wgedge.crypto import load as load_crypto

    ns = nets.ns("f")
    ifname = "wgf" + nets.tag
    default = tmp_path / "default-config"
    with open(DEFAULT_CONFIG) as f:
        default.write_text(f.read().replace("'wg0'", "'%s'" % ifname))
    conf = tmp_path / "data" / "etc" / "config" / "wgedge"  # not even the directory yet
    console = tmp_path / "console"
    env = {"WGEDGE_DEFAULT_CONFIG": str(default), "WGEDGE_CONSOLE": str(console)}
    outputs = []
    res = run(ns, "start", str(conf), **env)
    outputs += [res.stdout, res.stderr]
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
    assert conf.stat().st_mode & 0o777 == 0o600
    text = conf.read_text()
    assert "private_key 'generate'" not in text
    key = loader.load(str(conf)).interfaces[0].private_key
    public = schema.encode_key(load_crypto().x25519_public(key))
    line = "wgedge: %s public key %s\n" % (ifname, public)
    assert console.read_text() == line
    status = sh(sys.executable, "-m", "wgedge", "status", ifname, ns=ns,
                env=dict(os.environ, PYTHONPATH=ROOT))
    outputs.append(status.stdout)
    assert "public key: %s" % public in status.stdout
    assert run(ns, "stop", str(conf), **env).returncode == 0
    res = run(ns, "start", str(conf), **env)  # the next boot: the same key, shown again
    outputs += [res.stdout, res.stderr]
    assert res.returncode == 0, res.stdout + res.stderr
    assert conf.read_text() == text and console.read_text() == line * 2
    assert run(ns, "stop", str(conf), **env).returncode == 0
    outputs.append(console.read_text())
    secret = (schema.encode_key(key), key.hex())
    assert not [o for o in outputs for s in secret if s in o]
