"""Run a single-node Apache Kafka broker (KRaft) from the official jars, without Docker.

    python -m deploy.kafka fetch    # download the broker jars from Maven Central once
    python -m deploy.kafka up       # fetch if needed, format storage, start, wait, create the topic
    python -m deploy.kafka down     # stop the broker started by `up` (pidfile)
    python -m deploy.kafka status

The broker binds to 127.0.0.1 only, on the port of KAFKA_BOOTSTRAP_SERVERS; its data,
logs and pidfile live under $CAMPAIGNS_DATA_DIR/kafka (default var/kafka; kafka-<port> for
a broker on another port than 9092), its jars under var/kafka. `up` twice is harmless.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from rollup.config import REPO_ROOT, Settings

POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
JARS_DIR = REPO_ROOT / "var" / "kafka"
DEFAULT_PORT = 9092
TOPIC_PARTITIONS = 6


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if not match:
        raise SystemExit(f"no <kafka.version> in {POM}")
    return match.group(1)


class Broker:
    def __init__(self, settings: Settings, controller_port: int | None = None) -> None:
        self.settings = settings
        self.version = kafka_version()
        # The jars are a download cache, shared by every broker and data directory.
        self.lib = JARS_DIR / f"lib-{self.version}"
        host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port)
        self.controller_port = controller_port or int(os.environ.get("KAFKA_CONTROLLER_PORT")
                                                      or self.port + 1)
        # A broker per port: one on another port (`make test`'s) keeps its own data, logs
        # and pidfile, so it never meets `make run`'s broker or a user's.
        self.home = settings.data_dir / ("kafka" if self.port == DEFAULT_PORT
                                         else f"kafka-{self.port}")
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.pidfile = self.home / "kafka.pid"

    # -- fetch ---------------------------------------------------------------
    def fetch(self) -> None:
        if (self.lib / f"kafka_2.13-{self.version}.jar").exists():
            return
        if not shutil.which("mvn"):
            raise SystemExit("Maven (mvn) is needed to fetch the Kafka broker jars")
        print(f"[kafka] fetching Apache Kafka {self.version} jars from Maven Central ...",
              flush=True)
        tmp = self.lib.with_name(self.lib.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            "mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
        ]
        subprocess.run(cmd, check=True)
        tmp.rename(self.lib)  # atomic: a half-fetched directory is never used

    # -- config --------------------------------------------------------------
    def _write_config(self) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data}",
                    f"num.partitions={TOPIC_PARTITIONS}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=6",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "auto.create.topics.enable=true",
                    "log.retention.hours=-1",
                    "",
                ]
            )
        )
        log4j = self.home / "log4j2.properties"
        log4j.write_text(
            "rootLogger.level=INFO\n"
            "rootLogger.appenderRef.file.ref=file\n"
            "appender.file.type=RollingFile\n"
            "appender.file.name=file\n"
            f"appender.file.fileName={self.logs / 'server.log'}\n"
            f"appender.file.filePattern={self.logs / 'server.log.%i'}\n"
            "appender.file.layout.type=PatternLayout\n"
            "appender.file.layout.pattern=[%d] %p %m (%c)%n\n"
            "appender.file.policies.type=Policies\n"
            "appender.file.policies.size.type=SizeBasedTriggeringPolicy\n"
            "appender.file.policies.size.size=20MB\n"
            "appender.file.strategy.type=DefaultRolloverStrategy\n"
            "appender.file.strategy.max=3\n"
            "logger.request.name=kafka.request.logger\n"
            "logger.request.level=WARN\n"
        )
        return config

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp", f"{self.lib}/*", main, *args,
        ]

    def _format(self, config: Path) -> None:
        if (self.data / "meta.properties").exists():
            return
        cluster_id = _kafka_uuid()
        subprocess.run(
            self._java(
                "kafka.tools.StorageTool", "format", "--standalone",
                "-t", cluster_id, "-c", str(config),
            ),
            check=True, stdout=subprocess.DEVNULL,
        )

    # -- lifecycle -----------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:  # our own child (started in this process) that exited: reap it, or it
            # stays a zombie that os.kill(pid, 0) still finds
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None
        except ChildProcessError:
            pass  # not our child: another process started it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def port_open(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex((self.host, self.port)) == 0

    def up(self, timeout: float = 90.0) -> None:
        if self.pid() is not None and self.ready(timeout=5):
            print(f"[kafka] already running (pid {self.pid()}) on {self.host}:{self.port}")
            self.ensure_topic(self.settings.kafka_topic)
            return
        if self.pid() is None and self.port_open():
            raise SystemExit(
                f"[kafka] port {self.port} is taken by another process; set "
                "KAFKA_BOOTSTRAP_SERVERS to a free 127.0.0.1 port"
            )
        self.fetch()
        config = self._write_config()
        self._format(config)
        out = open(self.logs / "stdout.log", "ab")
        proc = subprocess.Popen(
            self._java("kafka.Kafka", str(config)),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C on the caller must not kill the broker mid-write
        )
        self.pidfile.write_text(str(proc.pid))
        print(f"[kafka] starting Apache Kafka {self.version} (pid {proc.pid}) ...", flush=True)
        if not self.ready(timeout=timeout):
            tail = (self.logs / "stdout.log").read_text(errors="replace")[-3000:]
            self.down()
            raise SystemExit(f"[kafka] broker did not become ready in {timeout:.0f}s\n{tail}")
        print(f"[kafka] ready on {self.host}:{self.port}", flush=True)
        self.ensure_topic(self.settings.kafka_topic)

    def ready(self, timeout: float) -> bool:
        """True once the broker answers a metadata request (not merely an open port)."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.port_open():
                admin = AdminClient({"bootstrap.servers": f"{self.host}:{self.port}"})
                try:
                    metadata = admin.list_topics(timeout=3)
                    if metadata.brokers:
                        return True
                except Exception:  # noqa: BLE001 - not ready yet, keep polling
                    pass
            time.sleep(0.3)
        return False

    def ensure_topic(self, topic: str, partitions: int = TOPIC_PARTITIONS) -> None:
        create_topic(f"{self.host}:{self.port}", topic, partitions)

    def down(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            print("[kafka] not running")
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        self.pidfile.unlink(missing_ok=True)
        print(f"[kafka] stopped (pid {pid})")

    def status(self) -> int:
        pid = self.pid()
        if pid is None:
            print("[kafka] not running")
            return 1
        state = "ready" if self.ready(timeout=3) else "not answering"
        print(f"[kafka] pid {pid}, {self.host}:{self.port}, {state}, version {self.version}")
        return 0 if state == "ready" else 1


def create_topic(bootstrap: str, topic: str, partitions: int = TOPIC_PARTITIONS) -> None:
    """Create `topic` with infinite retention when missing (the topic is the log)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=10).topics:
        return
    spec = NewTopic(
        topic, num_partitions=partitions, replication_factor=1,
        config={"retention.ms": "-1", "retention.bytes": "-1"},
    )
    for name, future in admin.create_topics([spec], operation_timeout=30).items():
        try:
            future.result()
            print(f"[kafka] created topic {name} ({partitions} partitions, infinite retention)")
        except Exception as exc:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def _kafka_uuid() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.kafka", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["fetch", "up", "down", "status"])
    args = parser.parse_args(argv)
    broker = Broker(Settings.from_env())
    os.chdir(REPO_ROOT)
    if args.action == "fetch":
        broker.fetch()
    elif args.action == "up":
        broker.up()
    elif args.action == "down":
        broker.down()
    else:
        return broker.status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
