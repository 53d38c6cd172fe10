"""A small test double of the Hugging Face Hub HTTP API, served on 127.0.0.1 from a background thread.

It answers what the real clients (huggingface_hub 2.x over httpx2, datasets, diffusers) send for create_repo,
create_commit / upload_folder (preupload -> LFS batch + PUT -> NDJSON commit), repo/model/dataset_info,
list_repo_tree / list_repo_files, get_paths_info and downloads (HEAD/GET .../resolve/..., Range included).

    with HubDouble() as hub:   # then run the client in a *subprocess* whose environment has, before any
        ...                    # HF import: HF_ENDPOINT=hub.endpoint HF_HUB_DISABLE_XET=1 HF_HUB_OFFLINE=0
                               # HF_DATASETS_OFFLINE=0 HF_TOKEN=test-token HF_HOME=<fresh temp dir>
        hub.files("me/data", "dataset"), hub.commits("me/data", "dataset")

Simplifications: repos live in memory with one branch, "main"; create_repo makes no initial commit (nor
.gitattributes), so commits() lists only pushed commits; the upload mode follows the file extension
(LFS_SUFFIXES), not .gitattributes; LFS objects are shared by all repos; tokens are not checked.
Unknown routes answer 404 {"error": ...} and are printed to stderr, so gaps show up in test output.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".safetensors", ".npy", ".png")
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}  # as in resolve/LFS URLs
_API = r"/api/(?P<types>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"
_GIT = r"/(?P<prefix>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+)"


class HubError(Exception):
    """An error answer. `code` goes to X-Error-Code, which the client maps to RepositoryNotFoundError etc."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.headers, self.extra = status, code, headers or {}, extra


@dataclass
class Blob:
    data: bytes
    lfs: bool

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def pointer(self) -> bytes:
        """The LFS pointer file: what git itself stores for an LFS-tracked file."""
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @cached_property
    def oid(self) -> str:
        """Git blob id: sha1 of b"blob <len>\\0" + bytes; for an LFS file the bytes are its pointer file."""
        raw = self.pointer if self.lfs else self.data
        return hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()


@dataclass
class Commit:
    sha: str | None
    title: str = ""
    date: str = ""
    files: dict[str, Blob] = field(default_factory=dict)

    def folders(self) -> set[str]:
        return {str(p) for path in self.files for p in PurePosixPath(path).parents if str(p) != "."}

    def state(self, path: str) -> str | None:
        """Hash of a file or folder as of this commit (None when absent); folders hash their files."""
        if path in self.files:
            return self.files[path].oid
        inside = sorted((p, b.oid) for p, b in self.files.items() if p.startswith(path + "/"))
        return hashlib.sha1(repr(inside).encode()).hexdigest() if inside else None


class HubDouble:
    def __init__(self) -> None:
        self._repos: dict[tuple[str, str], list[Commit]] = {}  # (repo_type, repo_id) -> history, oldest first
        self._lfs: dict[str, bytes] = {}  # sha256 -> content, filled by the LFS PUTs
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self  # type: ignore[attr-defined]
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None
        self.routes = [  # (methods, path regex, handler); regexes see the raw (still %-encoded) path
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", lambda req: {"errors": [], "warnings": []}),
            ("GET", r"/api/agent-harnesses", lambda req: {"standardEnvVars": [], "harnesses": {}}),  # client telemetry
            ("GET", _API + r"(?:/revision/(?P<rev>[^/]+))?", self._repo_info),
            ("GET", _API + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", self._tree),
            ("POST", _API + r"/paths-info/(?P<rev>[^/]+)", self._paths_info),
            ("POST", _API + r"/preupload/(?P<rev>[^/]+)", self._preupload),
            ("POST", _API + r"/commit/(?P<rev>[^/]+)", self._commit),
            ("POST", _GIT + r"\.git/info/lfs/objects/batch", self._lfs_batch),
            ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", self._lfs_put),
            ("GET HEAD", _GIT + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)", self._resolve),
        ]

    # -- test-facing API -------------------------------------------------------------------------
    def start(self) -> HubDouble:
        self._thread = threading.Thread(target=self._server.serve_forever, name="hub-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    __enter__ = start

    def __exit__(self, *exc) -> None:
        self.stop()

    def files(self, repo_id: str, repo_type: str = "model") -> dict[str, bytes]:
        """{path: content} at the latest commit."""
        with self._lock:
            history = self._history(repo_type, repo_id)
            return {p: b.data for p, b in history[-1].files.items()} if history else {}

    def commits(self, repo_id: str, repo_type: str = "model") -> list[str]:
        """Commit shas, oldest first."""
        with self._lock:
            return [c.sha for c in self._history(repo_type, repo_id)]

    # -- helpers -----------------------------------------------------------------------------------
    def _history(self, repo_type: str, repo_id: str) -> list[Commit]:
        if (repo_type, repo_id) not in self._repos:
            raise HubError(404, f"Repository {repo_id} ({repo_type}) not found", "RepoNotFound")
        return self._repos[(repo_type, repo_id)]

    def _resolve_rev(self, req: Request) -> tuple[list[Commit], Commit]:
        """The route's repo history and the commit its revision names: "main" (the head) or a commit sha."""
        history = self._history(req.repo_type, req.args["repo"])
        rev = req.args.get("rev") or "main"
        if rev == "main":
            return history, history[-1] if history else Commit(sha=None)  # an empty repo has no sha
        for commit in history:
            if commit.sha == rev:
                return history, commit
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def _entry(self, history: list[Commit], commit: Commit, path: str, expand: bool) -> dict:
        """One item of /tree and /paths-info (what RepoFile / RepoFolder parse)."""
        blob = commit.files.get(path)
        if blob is None:
            entry = {"type": "directory", "path": path, "oid": commit.state(path), "size": 0}
        else:
            entry = {"type": "file", "path": path, "oid": blob.oid, "size": len(blob.data)}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
        if expand:  # the last commit that changed this path, up to `commit`
            last, previous = commit, None
            for c in history[: history.index(commit) + 1]:
                if (state := c.state(path)) != previous:
                    last, previous = c, state
            entry["lastCommit"] = {"id": last.sha, "title": last.title, "date": last.date}
        return entry

    # -- routes --------------------------------------------------------------------------------------
    def _create_repo(self, req: Request):
        body = req.json()
        repo_type = body.get("type") or "model"
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else f"me/{body['name']}"
        url = f"{self.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self._repos:  # exist_ok=True swallows the 409 but still reads "url" from it
            raise HubError(409, "You already created this repo", url=url)
        self._repos[(repo_type, repo_id)] = []
        return {"url": url, "name": repo_id, "id": repo_id}

    def _repo_info(self, req: Request):
        _, commit = self._resolve_rev(req)
        blobs = req.flag("blobs")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling: dict = {"rfilename": path}
            if blobs:  # files_metadata=True
                sibling |= {"size": len(blob.data), "blobId": blob.oid}
                if blob.lfs:
                    sibling["lfs"] = {"size": len(blob.data), "sha256": blob.sha256, "pointerSize": len(blob.pointer)}
            siblings.append(sibling)
        return {"id": req.args["repo"], "author": req.args["repo"].split("/")[0], "sha": commit.sha, "private": False,
                "lastModified": commit.date or None, "gated": False, "tags": [], "siblings": siblings}

    def _tree(self, req: Request):
        history, commit = self._resolve_rev(req)
        base = (req.args.get("path") or "").strip("/")  # the client sends it %2F-encoded, already decoded here
        if base and base not in commit.folders():
            raise HubError(404, f"{base} is not a folder at {commit.sha}", "EntryNotFound")
        prefix = base + "/" if base else ""
        paths = [p for p in sorted(commit.folders() | set(commit.files)) if p.startswith(prefix)]
        if not req.flag("recursive"):
            paths = [p for p in paths if "/" not in p[len(prefix):]]
        # A single page: no `Link: <...>; rel="next"` header, so the client stops paginating.
        return [self._entry(history, commit, p, req.flag("expand")) for p in paths]

    def _paths_info(self, req: Request):
        history, commit = self._resolve_rev(req)
        form = parse_qs(req.body.decode())  # form-encoded: paths=a&paths=b&expand=false
        expand = form.get("expand", ["false"])[0].lower() in ("1", "true")
        known = commit.folders() | set(commit.files)
        return [self._entry(history, commit, p.strip("/"), expand) for p in form.get("paths", []) if p.strip("/") in known]

    def _preupload(self, req: Request):
        _, commit = self._resolve_rev(req)
        files = []
        for f in req.json()["files"]:
            path, remote = f["path"], commit.files.get(f["path"])
            # `oid` lets the client drop unchanged files: sha256 for LFS files, git sha1 otherwise.
            oid = None if remote is None else remote.sha256 if remote.lfs else remote.oid
            mode = "lfs" if path.endswith(LFS_SUFFIXES) else "regular"
            files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return {"files": files, "commitOid": commit.sha}

    def _lfs_batch(self, req: Request):
        self._history(req.repo_type, req.args["repo"])
        objects = []
        for obj in req.json()["objects"]:
            item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self._lfs:  # no "actions" at all means "already stored, skip the upload"
                item["actions"] = {"upload": {"href": f"{self.endpoint}/lfs-upload/{obj['oid']}", "expires_in": 3600}}
            objects.append(item)
        return {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}

    def _lfs_put(self, req: Request):
        oid = req.args["oid"]
        if hashlib.sha256(req.body).hexdigest() != oid:
            raise HubError(400, f"content does not match sha256 {oid}")
        self._lfs[oid] = req.body
        return {}

    def _commit(self, req: Request):
        history, head = self._resolve_rev(req)
        if req.args["rev"] != "main" or req.flag("create_pr"):
            raise HubError(400, "the hub double only commits to main (no branches, no PRs)")
        lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        header = lines[0]["value"]  # {"summary", "description", "parentCommit"?}
        if header.get("parentCommit") not in (None, head.sha):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(head.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = value["path"]
            if key == "file":
                files[path] = Blob(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":  # content went through the LFS PUT; the commit only names its sha256
                if value["oid"] not in self._lfs:
                    raise HubError(422, f"LFS object {value['oid']} was never uploaded")
                files[path] = Blob(self._lfs[value["oid"]], lfs=True)
            elif key in ("deletedFile", "deletedFolder"):
                folder = path.rstrip("/") + "/"
                gone = [p for p in files if p == path or (key == "deletedFolder" and p.startswith(folder))]
                if not gone:  # the client looks for this wording to hint at file-vs-folder deletes
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                for p in gone:
                    del files[p]
            else:
                raise HubError(400, f"unsupported commit operation {key!r}")
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        commit = Commit(secrets.token_hex(20), header["summary"], now, files)
        history.append(commit)
        url = f"{self.endpoint}/{URL_PREFIX[req.repo_type]}{req.args['repo']}/commit/{commit.sha}"
        return {"commitUrl": url, "commitOid": commit.sha, "success": True, "pullRequestUrl": None}

    def _resolve(self, req: Request):
        """File download. Served directly (no CDN redirect), with the headers hf_hub_download relies on."""
        _, commit = self._resolve_rev(req)
        blob = commit.files.get(req.args["path"])
        if blob is None:  # X-Repo-Commit on the 404 lets the client cache the file's absence
            raise HubError(404, f"{req.args['path']} not found", "EntryNotFound",
                           {"X-Repo-Commit": commit.sha} if commit.sha else {})
        size = len(blob.data)
        headers = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if blob.lfs:  # the client prefers X-Linked-Etag/-Size (set by the Hub on its redirect to the CDN)
            headers |= {"ETag": f'"{blob.sha256}"', "X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(size)}
        else:
            headers["ETag"] = f'"{blob.oid}"'
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", req.headers.get("Range", "").strip())
        if not match or match.groups() == ("", ""):
            return 200, headers, blob.data
        first, last = match.groups()
        start = int(first) if first else max(size - int(last), 0)  # "bytes=-N" is the last N bytes
        end = min(int(last), size - 1) if first and last else size - 1
        if start >= size or start > end:
            return 416, {**headers, "Content-Range": f"bytes */{size}"}, b""
        return 206, {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}, blob.data[start : end + 1]


@dataclass
class Request:
    args: dict[str, str]  # route groups, %-decoded
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    @property
    def repo_type(self) -> str:
        if self.args.get("types"):
            return self.args["types"][:-1]
        return {"datasets/": "dataset", "spaces/": "space"}.get(self.args.get("prefix") or "", "model")

    def json(self):
        return json.loads(self.body or b"{}")

    def flag(self, name: str) -> bool:  # httpx sends query booleans as "true"/"false"
        return self.query.get(name, ["false"])[0].lower() in ("1", "true")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":  # streamed uploads
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # optional trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self) -> None:
        hub: HubDouble = self.server.hub  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        body = self._read_body()
        try:
            for methods, pattern, handler in hub.routes:
                match = re.fullmatch(pattern, url.path)
                if self.command in methods.split() and match:
                    args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    req = Request(args, parse_qs(url.query), self.headers, body)
                    with hub._lock:
                        result = handler(req)
                    break
            else:
                print(f"[hub-double] unhandled route: {self.command} {self.path}", file=sys.stderr, flush=True)
                raise HubError(404, f"hub double: no route for {self.command} {url.path}")
        except HubError as err:
            message = str(err).encode("ascii", "replace").decode()  # header values must stay latin-1
            headers = {**err.headers, **({"X-Error-Code": err.code} if err.code else {}), "X-Error-Message": message}
            result = err.status, headers, json.dumps({"error": str(err), **err.extra}).encode()
        except Exception:  # a bug in the double: show it, answer 500
            traceback.print_exc(file=sys.stderr)
            result = 500, {}, json.dumps({"error": "hub double crashed, see stderr"}).encode()
        if not isinstance(result, tuple):  # plain JSON answer
            result = 200, {}, json.dumps(result).encode()
        status, headers, payload = result
        headers.setdefault("Content-Type", "application/json")
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:  # quiet: only unhandled routes are printed
        pass
