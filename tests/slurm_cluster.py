"""A real Slurm cluster on this machine, for tests/test_slurm.py: munged, slurmctld and one slurmd
per node ("nodes" n1, n2 on localhost, each slurmd started with -N and its own Port=), all in the
foreground under a private directory (config, munge key and socket, state, spool, logs) and
stopped by PID.  Without slurmdbd there is no sacct: jobcomp/filetxt is Slurm's record of the
finished jobs (one line per job or array task)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SBIN = Path("/usr/sbin")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "sinfo", "squeue", "scontrol", "scancel")


def slurm_missing() -> str | None:
    """Why the cluster cannot start here, or None; installs slurm-wlm and munge through
    tools/install_slurm.sh when they are missing and we are root."""
    if os.geteuid() != 0:
        return "a test Slurm cluster needs root (SlurmUser=root, and tools/install_slurm.sh to install it)"

    def absent() -> list[str]:
        return [d for d in DAEMONS if not (SBIN / d).is_file()] + [c for c in CLIENTS if not shutil.which(c)]

    if absent():
        proc = subprocess.run([ROOT / "tools/install_slurm.sh"], capture_output=True, text=True)
        if proc.returncode != 0:
            return f"tools/install_slurm.sh failed: {(proc.stderr or proc.stdout).strip()[-500:]}"
    return f"still missing after tools/install_slurm.sh: {' '.join(absent())}" if absent() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_record(line: str) -> dict[str, str]:
    """One jobcomp/filetxt line, `Key=value Key=value ...`, as a dict."""
    return dict(word.partition("=")[::2] for word in line.split())


@dataclass
class SlurmCluster:
    root: Path
    nodes: list[str]
    mem_mb: int                       # RealMemory of each node
    env: dict[str, str]               # the caller's environment plus SLURM_CONF
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    def jobs(self) -> list[dict[str, str]]:
        """Slurm's record of every finished job (and array task), oldest first."""
        comp = self.log_dir / "jobcomp.txt"
        lines = comp.read_text().splitlines() if comp.exists() else []
        return [parse_record(line) for line in lines if line.strip()]

    def run(self, *cmd: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, **kw)

    def logs_tail(self, lines: int = 15) -> str:
        out = []
        for f in sorted([*self.log_dir.glob("*.log"), *self.log_dir.glob("*.stderr")]):
            out.append(f"== {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def write_config(self, cpus: int) -> Path:
        r = self.root
        ports = {n: free_port() for n in self.nodes}
        node_lines = [f"NodeName={n} NodeHostname=localhost NodeAddr=127.0.0.1 Port={ports[n]} CPUs={cpus} "
                      f"RealMemory={self.mem_mb} State=UNKNOWN" for n in self.nodes]
        conf = r / "slurm.conf"
        conf.write_text("\n".join([
            "ClusterName=pasetest",
            "SlurmctldHost=localhost",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r}/run/munge.socket",
            f"SlurmctldPort={free_port()}",
            f"SlurmctldPidFile={r}/state/slurmctld.pid",
            f"SlurmdPidFile={r}/state/slurmd.%n.pid",
            f"StateSaveLocation={r}/state",
            f"SlurmdSpoolDir={r}/spool/%n",
            f"SlurmctldLogFile={r}/log/slurmctld.log",
            f"SlurmdLogFile={r}/log/slurmd.%n.log",
            # No cgroups: the processes of a job are found through /proc, and nothing is confined.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",  # so that --mem is checked against RealMemory
            "SlurmdParameters=config_overrides",
            "MpiDefault=none",
            "ReturnToService=2",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={r}/log/jobcomp.txt",
            "MinJobAge=600",
            *node_lines,
            f"PartitionName=debug Nodes={','.join(self.nodes)} Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")
        return conf

    def start(self, cpus: int, timeout: float = 60) -> None:
        r = self.root
        for d in ("munge", "run", "state", "log", *(f"spool/{n}" for n in self.nodes)):
            (r / d).mkdir(parents=True, exist_ok=True)
        # munged wants its key private and every directory above its socket open to everyone.
        (r / "munge").chmod(0o700)
        (r / "run").chmod(0o755)
        key = r / "munge/munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        conf = self.write_config(cpus)
        self.env["SLURM_CONF"] = str(conf)
        self.spawn("munged", SBIN / "munged", "--foreground", f"--socket={r}/run/munge.socket",
                   f"--key-file={key}", f"--pid-file={r}/munge/munged.pid", f"--seed-file={r}/munge/seed",
                   f"--log-file={r}/log/munged.log")
        self.wait_for(lambda: (r / "run/munge.socket").exists(), "munged's socket", timeout)
        self.spawn("slurmctld", SBIN / "slurmctld", "-D", "-f", str(conf))
        self.wait_for(lambda: self.run("scontrol", "ping").stdout.count("UP") > 0, "slurmctld", timeout)
        for n in self.nodes:
            self.spawn(f"slurmd.{n}", SBIN / "slurmd", "-D", "-f", str(conf), "-N", n)

        def idle() -> bool:
            out = self.run("sinfo", "-h", "-N", "-o", "%N %t").stdout.split("\n")
            return sorted(line.split()[0] for line in out if line.endswith(" idle")) == sorted(self.nodes)

        self.wait_for(idle, "every node idle in sinfo", timeout)

    def spawn(self, name: str, *cmd) -> None:
        out = open(self.log_dir / f"{name}.stderr", "w")
        self.procs[name] = subprocess.Popen([str(c) for c in cmd], env=self.env, stdout=out, stderr=out,
                                            stdin=subprocess.DEVNULL)
        out.close()

    def wait_for(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with status {p.returncode} waiting for {what}\n"
                                       f"{self.logs_tail()}")
            try:
                if ready():
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}\n{self.logs_tail()}")

    def stop(self) -> None:
        """Cancels what is left, then stops the daemons by PID, slurmd first, munged last."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--user", "root", timeout=30)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.run("squeue", "-h", timeout=30).stdout.strip():
                time.sleep(0.5)
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def start_cluster(nodes: tuple[str, ...] = ("n1", "n2"), env: dict[str, str] | None = None) -> SlurmCluster:
    """A cluster of `nodes` on this machine, each with every CPU and an equal share of the memory
    (so the cluster as a whole is this machine).  Its directory is under /tmp: munged refuses a
    socket under a directory that not everyone can enter, as pytest's base temp dir is."""
    root = Path(tempfile.mkdtemp(prefix="pase-slurm-"))
    root.chmod(0o755)
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // len(nodes)
    cluster = SlurmCluster(root, list(nodes), mem_mb, dict(env if env is not None else os.environ))
    try:
        cluster.start(os.cpu_count() or 1)
    except BaseException:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster
