"""A real Object Lock enforcer for the tests: single-node Ceph with the RADOS Gateway on 127.0.0.1.

One monitor, one bluestore OSD on a sparse file and one radosgw, in a scratch folder, on ports
chosen here; no manager daemon is needed. Started once per test run (shared by the pytest-xdist
workers through a lock and a state file in the run's folder), stopped by PID when the last user
is done. Also a script, for bench/s3.sh:

    python tests/cephrgw.py start DIR    # prints export lines: endpoint and credentials
    python tests/cephrgw.py stop DIR

Facts this relies on (Ceph 16.2): a pool of size 1 needs `osd_pool_default_size`,
`osd_pool_default_min_size`, `mon_allow_pool_size_one` and `osd_crush_chooseleaf_type = 0`;
`ceph-osd --mkfs` needs `--no-mon-config` and the uuid the monitor was given; without cephx a
daemon must talk to the monitor in crc mode (`ms_mon_client_mode`), not secure;
`bluestore_block_path` must lie outside the OSD's data folder; memstore loses everything on
restart and hangs radosgw after a kill, hence bluestore; the first `radosgw-admin user create`
makes the gateway's pools, before radosgw starts; without `tcp_nodelay` on the beast frontend
every small response waits some 40 ms for a delayed ACK.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from s3server import CREDENTIALS  # the gateway's user has the keys moto is given

ACCESS_KEY = CREDENTIALS["AWS_ACCESS_KEY_ID"]
SECRET_KEY = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
DAEMONS = ("radosgw", "ceph-mon", "ceph-osd")
TOOLS = ("monmaptool", "radosgw-admin", "ceph")
OSD_SIZE = 20 << 30  # sparse: only what is written takes space
START_TIMEOUT = 60


def missing() -> list[str]:
    """The Ceph programs this machine lacks (quickstart.py `system_tools` installs them)."""
    return [t for t in DAEMONS + TOOLS if shutil.which(t) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CephRGW:
    """One cluster in `root`: its config, its daemons' PIDs, and the gateway's endpoint."""

    kind = "rgw"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.conf = self.root / "ceph.conf"
        self.state = self.root / "state.json"
        self.endpoint = ""
        self.pids: dict[str, int] = {}

    # -- starting ------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def start(self) -> "CephRGW":
        self.root.mkdir(parents=True, exist_ok=True)
        mon_port, rgw_port = _free_port(), _free_port()
        self.endpoint = f"http://127.0.0.1:{rgw_port}"
        self._write_conf(mon_port, rgw_port)
        try:
            self._start_mon(mon_port)
            self._start_osd()
            self._start_rgw()
        except BaseException:
            self.stop()
            raise
        self.state.write_text(json.dumps({"endpoint": self.endpoint, "pids": self.pids}))
        return self

    def _write_conf(self, mon_port: int, rgw_port: int) -> None:
        r = self.root
        self.fsid = str(uuid.uuid4())
        self.conf.write_text(
            f"""[global]
fsid = {self.fsid}
mon_host = 127.0.0.1:{mon_port}
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = {r}/run
admin_socket = {r}/run/$name.asok
log_file = {r}/log/$name.log
pid_file = {r}/run/$name.pid
keyring = {r}/keyring
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
# a test machine's disk may be nearly full: the monitor must start anyway (its default stops at 5 %)
mon_data_avail_crit = 1
mon_data_avail_warn = 2
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000
ms_bind_ipv6 = false
ms_mon_client_mode = crc
[mon.a]
mon_data = {r}/mon
[osd.0]
osd_data = {r}/osd
osd_objectstore = bluestore
bluestore_block_path = {r}/osd-block
bluestore_block_size = {OSD_SIZE}
bluestore_block_create = true
bluestore_cache_size = 67108864
osd_memory_target = 536870912
[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw_data = {r}/rgw
rgw_dns_name = 127.0.0.1
rgw_enable_usage_log = false
"""
        )
        for sub in ("run", "log", "mon", "osd", "rgw"):
            (r / sub).mkdir(exist_ok=True)

    def _ceph(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run(
            [*args, "-c", str(self.conf)], capture_output=True, text=True, timeout=timeout, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {out.stderr.strip()[-2000:]}")
        return out.stdout

    def _daemon(self, name: str, *cmd: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        proc = subprocess.Popen(
            [*cmd, "-c", str(self.conf), "-f"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal stops pytest, and pytest stops these
        )
        log.close()
        self.pids[name] = proc.pid

    def _start_mon(self, port: int) -> None:
        r = self.root
        self._ceph("monmaptool", "--create", "--clobber", "--fsid", self.fsid,
                   "--add", "a", f"127.0.0.1:{port}", str(r / "monmap"))  # fmt: skip
        self._ceph("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(r / "monmap"))
        self._daemon("mon", "ceph-mon", "-i", "a")
        self._wait(lambda: self._ceph("ceph", "mon", "stat", timeout=10), "the monitor")

    def _start_osd(self) -> None:
        osd_uuid = str(uuid.uuid4())  # the OSD boots only under the uuid the monitor knows
        self._ceph("ceph", "osd", "create", osd_uuid)  # id 0
        self._ceph("ceph-osd", "-i", "0", "--mkfs", "--no-mon-config", "--osd-uuid", osd_uuid, timeout=120)
        self._daemon("osd", "ceph-osd", "-i", "0")
        self._wait(lambda: "1 up" in self._ceph("ceph", "osd", "stat", timeout=10) or _fail(), "the OSD")

    def _start_rgw(self) -> None:
        self._ceph("radosgw-admin", "user", "create", "--uid", "amber", "--display-name", "amber tests",
                   "--access-key", ACCESS_KEY, "--secret", SECRET_KEY, timeout=120)  # fmt: skip
        self._daemon("rgw", "radosgw", "-n", "client.rgw")
        self._wait(lambda: urllib.request.urlopen(self.endpoint, timeout=2), "the gateway")

    def _wait(self, probe, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            for name, pid in self.pids.items():
                if not _alive(pid):
                    raise RuntimeError(f"ceph {name} exited; see {self.root / 'log'}")
            try:
                probe()
                return
            except Exception as e:  # not up yet: refused, HTTP error, a command that failed
                if isinstance(e, urllib.error.HTTPError):
                    return  # the gateway answers (403 to an anonymous request)
                last = e
                time.sleep(0.3)
        raise RuntimeError(f"{what} did not start in {START_TIMEOUT}s ({last}); see {self.root / 'log'}")

    # -- stopping ------------------------------------------------------------------

    @classmethod
    def load(cls, root: Path) -> "CephRGW":
        rgw = cls(root)
        st = json.loads(rgw.state.read_text())
        rgw.endpoint, rgw.pids = st["endpoint"], st["pids"]
        return rgw

    def stop(self) -> None:
        """Stop the daemons by PID, gateway first, each with SIGTERM then SIGKILL."""
        for name in ("rgw", "osd", "mon"):
            pid = self.pids.get(name)
            if pid is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _reap(pid)
        self.pids = {}
        with contextlib.suppress(FileNotFoundError):
            (self.root / "osd-block").unlink()  # the only big file

    # -- as a client ---------------------------------------------------------------

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self, object_lock: bool = True) -> str:
        name = f"amber-{uuid.uuid4().hex[:20]}"
        kw = {"ObjectLockEnabledForBucket": True} if object_lock else {}
        self.client().create_bucket(Bucket=name, **kw)
        return name


def _fail():
    raise RuntimeError("not yet")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# -- one cluster for every worker of a test run --------------------------------------


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def acquire(run_dir: Path, owner: int) -> CephRGW:
    """The run's cluster, started by the first caller; each caller must `release` it. Should
    the test run end without that (a worker killed), a watchdog stops the cluster once the
    process `owner` (the test run's main process) is gone."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with _locked(run_dir / "lock"):
        users_file = run_dir / "users"
        users = int(users_file.read_text() or 0) if users_file.exists() else 0
        failed = run_dir / "failed"
        if failed.exists():
            raise RuntimeError(failed.read_text())
        if users == 0 and not (run_dir / "cluster" / "state.json").exists():
            try:
                CephRGW(run_dir / "cluster").start()
            except Exception as e:
                failed.write_text(f"the Ceph RGW test cluster did not start: {e}")
                raise
            subprocess.Popen(
                [sys.executable, __file__, "watch", str(run_dir), str(owner)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        users_file.write_text(str(users + 1))
        return CephRGW.load(run_dir / "cluster")


def release(run_dir: Path) -> None:
    """One user is done; the last one stops the cluster."""
    with _locked(run_dir / "lock"):
        users_file = run_dir / "users"
        users = int(users_file.read_text() or 0) - 1
        users_file.write_text(str(max(users, 0)))
        if users <= 0:
            CephRGW.load(run_dir / "cluster").stop()
            shutil.rmtree(run_dir / "cluster", ignore_errors=True)


def watch(run_dir: Path, owner: int) -> None:
    """Wait for `owner` to end, then stop the run's cluster if it is still up, and remove the
    run's folder."""
    while _alive(owner):
        time.sleep(1)
    with _locked(run_dir / "lock"):
        if (run_dir / "cluster" / "state.json").exists():
            CephRGW.load(run_dir / "cluster").stop()
    shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "watch":
        watch(Path(argv[2]), int(argv[3]))
        return 0
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(argv[2])
    if argv[1] == "stop":
        CephRGW.load(root).stop()
        return 0
    if missing():
        print(f"missing: {' '.join(missing())} (apt-get install --no-install-recommends radosgw ceph-mon ceph-osd)",
              file=sys.stderr)  # fmt: skip
        return 1
    rgw = CephRGW(root).start()
    print(f"export AMBER_S3_ENDPOINT={rgw.endpoint}")
    for k, v in CREDENTIALS.items():
        print(f"export {k}={v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
