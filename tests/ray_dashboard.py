"""A Ray dashboard stand-in that serves responses recorded from a real Ray 2.60 head (tests/data/ray/), for
shape variations a local head cannot show (GPUs, several machines, missing fields) and failures it will
not produce on demand (a lost answer, a token). Served by a real uvicorn through ``serve_asgi``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

DATA = Path(__file__).parent / "data" / "ray"


def recorded(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


@dataclass
class Dashboard:
    """Answers by path; ``token`` demands ``Authorization: Bearer TOKEN`` as Ray's middleware does."""

    routes: dict[str, Any] = field(
        default_factory=lambda: {
            "/api/version": recorded("version"),
            "/api/authentication_mode": recorded("authentication_mode"),
            "/api/v0/nodes": recorded("nodes"),
            "/nodes": recorded("nodes_summary"),
            "/api/v0/actors": recorded("actors_detail"),
            "/api/jobs/": recorded("jobs"),
            "/api/jobs/rec-print": recorded("job_rec-print"),
            "/api/jobs/rec-print/logs": recorded("logs_rec-print"),
            "/api/jobs/rec-actor/logs": recorded("logs_rec-actor"),
        }
    )
    token: str | None = None
    # POST /api/jobs/: how many first tries "get lost" (a 503 after the job was made)
    lose_first_submissions: int = 0
    submitted: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.answer, methods=["GET", "POST"])])

    async def answer(self, request: Request) -> Response:
        path = request.url.path
        self.requests.append(f"{request.method} {path}")
        if self.token is not None and path not in ("/api/authentication_mode", "/api/version"):
            header = request.headers.get("authorization", "")
            if not header:
                return PlainTextResponse("Unauthorized: Missing authentication token", status_code=401)
            if header != f"Bearer {self.token}":
                return PlainTextResponse("Forbidden: Invalid authentication token", status_code=403)
        if request.method == "POST" and path == "/api/jobs/":
            return await self.submit(await request.json())
        if path not in self.routes:
            return PlainTextResponse(
                f"Job {path.split('/')[3] if path.count('/') > 2 else path} does not exist", 404
            )
        body = self.routes[path]
        if isinstance(body, Response):
            return body
        return JSONResponse(body)

    async def submit(self, body: dict[str, Any]) -> Response:
        sid = body["submission_id"]
        if any(s["submission_id"] == sid for s in self.submitted):
            # what Ray 2.60 answers, a 500 whose traceback ends in the reason
            return PlainTextResponse(
                "Traceback (most recent call last):\n  ...\nValueError: Job with submission_id "
                f"{sid} already exists. Please use a different submission_id.\n.",
                status_code=500,
            )
        self.submitted.append(body)
        self.routes[f"/api/jobs/{sid}"] = {
            "type": "SUBMISSION",
            "job_id": None,
            "submission_id": sid,
            "status": "PENDING",
            "entrypoint": body["entrypoint"],
            "metadata": body.get("metadata"),
            "runtime_env": body.get("runtime_env"),
            "start_time": 1795283256861,
        }
        if self.lose_first_submissions > 0:
            self.lose_first_submissions -= 1
            return PlainTextResponse("upstream went away", status_code=503)
        return JSONResponse({"job_id": None, "submission_id": sid})
