"""Read files out of a local bare git mirror of a public repository, at a fixed commit,
without a work tree: the data build's only way to reach source images and labels.

Mirrors live at `<root>/<owner>+<name>/repo` (the layout the project's `fetch` step
produces). Nothing here touches the network.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

from trafficprn.errors import InputError


class MissingBlobError(InputError):
    """A file the tree lists is absent from the snapshot (large files are left out)."""


def mirror_dir(root: Path, repo: str) -> Path:
    """The bare git directory of `owner/name` under `root` (`repo`, or `repo/.git` where
    the snapshot arrived as a git directory inside an empty work tree)."""
    owner, _, name = repo.partition("/")
    bare = root / f"{owner}+{name}" / "repo"
    nested = bare / ".git"
    return nested if not (bare / "HEAD").exists() and (nested / "HEAD").exists() else bare


class GitSnapshot:
    """The tree of one commit of a bare mirror: list its files, read their bytes.
    Use as a context manager (it keeps one `git cat-file --batch` process open)."""

    def __init__(self, root: Path, repo: str, commit: str):
        self.repo = repo
        self.commit = commit
        self.git_dir = mirror_dir(root, repo)
        if not (self.git_dir / "HEAD").exists():
            raise InputError(
                f"no mirror of {repo} at {self.git_dir}: fetch it first (fetch github:{repo}), "
                "then rerun; the build downloads nothing itself"
            )
        probe = self._git("cat-file", "-t", commit, check=False)
        if probe.returncode != 0 or probe.stdout.strip() != b"commit":
            raise InputError(
                f"the mirror of {repo} at {self.git_dir} lacks commit {commit}: fetch a newer snapshot "
                f"(fetch github:{repo}) or update the manifest's commit"
            )
        self._batch: subprocess.Popen[bytes] | None = None

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(["git", "--git-dir", str(self.git_dir), *args], capture_output=True, check=False)
        if check and done.returncode != 0:
            raise InputError(f"git {' '.join(args)} failed in {self.git_dir}: {done.stderr.decode(errors='replace')}")
        return done

    def list_files(self, folder: str) -> list[str]:
        """Every file path under `folder` (repository-relative), sorted."""
        spec = ["--", folder.strip("/") + "/"] if folder.strip("./") else []  # "" or ".": the whole tree
        out = self._git("ls-tree", "-r", "-z", "--name-only", self.commit, *spec)
        paths = sorted(p for p in out.stdout.decode("utf-8", errors="surrogateescape").split("\0") if p)
        if not paths:
            raise InputError(f"{self.repo}@{self.commit[:12]} has no files under {folder!r}")
        return paths

    def read(self, path: str) -> bytes:
        """The bytes of `path` at the commit."""
        if "\n" in path:
            raise InputError(f"cannot read a path with a newline: {path!r}")
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "--git-dir", str(self.git_dir), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        stdin, stdout = self._batch.stdin, self._batch.stdout
        if stdin is None or stdout is None:
            raise InputError("git cat-file --batch has no pipes")
        stdin.write(f"{self.commit}:{path}\n".encode("utf-8", errors="surrogateescape"))
        stdin.flush()
        header = stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise MissingBlobError(
                f"{self.repo}@{self.commit[:12]}:{path} is missing from the mirror "
                f"(files of 4 MiB and more are left out of snapshots): {b' '.join(header).decode()}"
            )
        data = stdout.read(int(header[2]))
        stdout.read(1)  # the newline after each object
        return data

    def close(self) -> None:
        if self._batch is not None:
            if self._batch.stdin is not None:
                self._batch.stdin.close()
            self._batch.wait(timeout=30)
            if self._batch.stdout is not None:
                self._batch.stdout.close()
            self._batch = None

    def __enter__(self) -> GitSnapshot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
