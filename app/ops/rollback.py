"""Three-layer rollback, in order: orchestration (the previous compose/env files), image (the previous tag retagged
as mem0-fixed:local), data (a backup restored into a new database that the env file then points at).

The data layer is restored when asked (`--restore-backup DIR --database NAME`) or, with only those given as the
means, when `mem0-fixed invariants` (run as the previous version, with the previous env) reports a migration that
version does not know. Such a database without a backup to restore stops the rollback before the restart (exit 1):
the previous version would refuse to start on it.

    mem0-fixed rollback --compose-dir /srv/mem0 --previous-env /srv/mem0/releases/41/.env \\
        --previous-image mem0-fixed:41 --restore-backup /srv/mem0/backups/41 --database mem0_rollback_41

`--dry-run` changes nothing and prints every step and docker command; `--skip-docker` does the file and data
layers and prints the docker commands instead of running them (a host without Docker).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg.conninfo import make_conninfo

LOCAL_IMAGE = "mem0-fixed:local"
COMPOSE_FILE = "docker-compose.prd.yml"
UNKNOWN_MIGRATION = "applied but unknown to this version"


class RollbackError(Exception):
    """A layer could not be rolled back; the message says which and why."""


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose env file (comments, blanks and `export ` skipped; one level of quotes)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip().removeprefix("export ").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def set_env(text: str, key: str, value: str) -> str:
    """`text` (an env file) with `key` set to `value`: its line replaced, or appended."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip().removeprefix("export ").strip().split("=", 1)[0].strip() == key:
            lines[index] = f"{key}={value}"
            break
    else:
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def with_database(url: str, database: str) -> str:
    """The connection string pointed at `database` (a URL keeps its form; key=value via psycopg)."""
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path=f"/{database}"))
    return make_conninfo(url, dbname=database)


class Rollback:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.compose_dir: Path = args.compose_dir
        self.env_file = self.compose_dir / ".env"
        self.compose_file = self.compose_dir / COMPOSE_FILE
        self.dry_run: bool = args.dry_run

    def say(self, line: str) -> None:
        print(f"rollback: {line}", flush=True)

    def docker(self, *argv: str) -> None:
        command = [self.args.docker, *argv]
        if self.dry_run or self.args.skip_docker:
            self.say(f"would run: {shlex.join(command)}")
            return
        self.say(f"running: {shlex.join(command)}")
        result = subprocess.run(command, check=False, timeout=1800)
        if result.returncode != 0:
            raise RollbackError(f"{shlex.join(command)} exited {result.returncode}")

    def mem0(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """The previous version's CLI (`--mem0-command`), with the compose env file's settings."""
        command = [*shlex.split(self.args.mem0_command), *argv]
        env = {**os.environ, **read_env(self.env_file if self.env_file.exists() else self.args.previous_env)}
        if self.dry_run:  # the files are not replaced in a dry run: judge with the previous env directly
            env = {**os.environ, **read_env(self.args.previous_env)}
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=3600)
        print(result.stdout, end="", flush=True)
        print(result.stderr, end="", file=sys.stderr, flush=True)
        return result

    def copy(self, source: Path, target: Path) -> None:
        if self.dry_run:
            self.say(f"would copy {source} to {target}")
            return
        if target.exists():
            shutil.copy2(target, target.with_name(target.name + ".rolled-back"))  # the candidate's, kept for a look
        shutil.copy2(source, target)
        self.say(f"copied {source} to {target}")

    def orchestration(self) -> None:
        self.say("layer 1/3 orchestration: the previous compose and env files")
        self.copy(self.args.previous_env, self.env_file)
        if self.args.previous_compose is not None:
            self.copy(self.args.previous_compose, self.compose_file)

    def image(self) -> None:
        self.say(f"layer 2/3 image: {self.args.previous_image} becomes {LOCAL_IMAGE}")
        self.docker("tag", self.args.previous_image, LOCAL_IMAGE)

    def data(self) -> bool:
        """Restores the backup when asked or when the previous version does not know an applied migration;
        returns whether the env file now points at a restored database."""
        self.say("layer 3/3 data: invariants as the previous version sees them")
        checked = self.mem0("invariants", "--offline")
        unknown = UNKNOWN_MIGRATION in checked.stdout
        if not unknown and not self.args.force_restore:
            if checked.returncode != 0:
                raise RollbackError("the invariants fail for a reason a restore would not fix; see above")
            self.say("the database is one the previous version knows: no restore")
            return False
        if self.args.restore_backup is None or self.args.database is None:
            raise RollbackError(
                "the database carries a migration the previous version does not know: "
                "rerun with --restore-backup DIR --database NAME (the backup taken before the deploy)"
            )
        why = "a migration the previous version does not know" if unknown else "--force-restore"
        self.say(f"restoring {self.args.restore_backup} into database {self.args.database} ({why})")
        if self.dry_run:
            self.say(f"would point DATABASE_URL / POSTGRES_DB in {self.env_file} at {self.args.database}")
            return True
        restored = self.mem0("restore", str(self.args.restore_backup), "--database", self.args.database)
        if restored.returncode != 0:
            raise RollbackError(f"the restore into {self.args.database} failed; see above")
        self.point_at(self.args.database)
        after = self.mem0("invariants", "--offline")
        if after.returncode != 0:
            raise RollbackError(f"the invariants fail on the restored database {self.args.database}; see above")
        return True

    def point_at(self, database: str) -> None:
        text = self.env_file.read_text(encoding="utf-8")
        current = read_env(self.env_file)
        if current.get("DATABASE_URL"):
            text = set_env(text, "DATABASE_URL", with_database(current["DATABASE_URL"], database))
        text = set_env(text, "POSTGRES_DB", database)
        self.env_file.write_text(text, encoding="utf-8")
        self.say(f"{self.env_file} now points at database {database}")

    def restart(self) -> None:
        self.say("restarting the server on the previous files, image and data")
        compose = ["compose", "-f", str(self.compose_file), "--env-file", str(self.env_file)]
        self.docker(*compose, "up", "-d", "--force-recreate", "--no-build", "mem0")

    def run(self) -> int:
        self.orchestration()
        self.image()
        restored = self.data()
        self.restart()
        self.say(
            "done: previous files, image "
            + self.args.previous_image
            + (f" and database {self.args.database}" if restored else ", data unchanged")
            + (" (dry run: nothing changed)" if self.dry_run else "")
        )
        return 0


def add_rollback_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "rollback",
        help="roll back orchestration, image and (when needed) data to the previous release",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--compose-dir", type=Path, required=True, help=f"where {COMPOSE_FILE} and .env live")
    parser.add_argument("--previous-env", type=Path, required=True, help="the previous release's env file")
    parser.add_argument("--previous-compose", type=Path, help=f"the previous release's {COMPOSE_FILE}, if it changed")
    parser.add_argument("--previous-image", required=True, help="the previous image's tag (kept by the deploy)")
    parser.add_argument("--restore-backup", type=Path, help="the backup (mem0-fixed backup) taken before the deploy")
    parser.add_argument("--database", help="the new database to restore it into")
    parser.add_argument("--force-restore", action="store_true", help="restore even if the invariants do not ask")
    parser.add_argument("--mem0-command", default="mem0-fixed", help="the previous version's CLI (mem0-fixed)")
    parser.add_argument("--docker", default="docker", help="the docker binary (docker)")
    parser.add_argument("--dry-run", action="store_true", help="change nothing; print every step and command")
    parser.add_argument("--skip-docker", action="store_true", help="print the docker commands instead of running")
    # run_rollback's usage errors are this parser's: its usage line, `mem0-fixed rollback: error: …`, exit 2.
    parser.set_defaults(rollback_parser=parser)


def _check_options(args: argparse.Namespace) -> None:
    parser: argparse.ArgumentParser = args.rollback_parser
    if (args.restore_backup is None) != (args.database is None):
        parser.error("--restore-backup and --database go together")
    if args.force_restore and args.restore_backup is None:
        parser.error("--force-restore needs --restore-backup DIR --database NAME")


def run_rollback(args: argparse.Namespace) -> int:
    _check_options(args)
    try:
        return Rollback(args).run()
    except RollbackError as error:
        print(f"rollback: FAILED: {error}", file=sys.stderr)
        return 1
