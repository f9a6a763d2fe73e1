"""Translate as the source arrives: a source prefix in, the policy's reads and the target words written out.

    python -m apps.simulmt.infer --model runs/simulmt/simulpl "keze ga nuni wo lotigu"       # word by word, printed
    python -m apps.simulmt.infer --model RUN --setting wait-3 "keze ga nuni wo lotigu"
    python -m apps.simulmt.infer serve --model runs/simulmt/simulpl --port 8000

`--setting` is the latency knob: `tau=T` (the model's own policy: read when P(<read>) >= T; lower
reads more), `tau=T,lag=L` (also read while read - written < L) or `wait-K`. The server keeps
each translation as a session:

    POST   /sessions                 {"setting": "tau=0.9,lag=2"}          -> {"id", "setting"}
    POST   /sessions/{id}/source     {"words": ["keze", "ga"], "finished": false}
                                     (or "text": "keze ga")                -> {"actions", "written", "read",
                                                                                "target", "done", "waiting", "truncated"}
    GET    /sessions/{id}            the session's state (the same fields, everything so far)
    DELETE /sessions/{id}            forget it
    GET    /health

`actions` lists R (a source word read) and W (a target word written) since the last call and
`written` the new target words; `waiting` means the policy wants the next source word. Send the
last words with `"finished": true`. A malformed body is a 422 naming the field, an unknown
session a 404, words after the end a 409; at most --max-sessions sessions are kept (the least
recently used one is dropped). One model call at a time.
"""

from __future__ import annotations

import argparse
import sys
import threading
import uuid
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from apps.simulmt.decode import Setting, SimultaneousDecoder, StreamingSession
from shared.kit import fail, set_threads
from shared.models import load_policy, resolve_model

PROG = "python -m apps.simulmt.infer"


class SessionStore:
    """Streaming sessions by id over one decoder; a lock keeps model calls one at a time."""

    def __init__(self, decoder: SimultaneousDecoder, default: Setting, max_sessions: int = 256):
        self.decoder, self.default, self.max_sessions = decoder, default, max_sessions
        self.sessions: OrderedDict[str, StreamingSession] = OrderedDict()
        self.lock = threading.Lock()

    def open(self, setting: Setting | None = None) -> str:
        with self.lock:
            sid = uuid.uuid4().hex
            self.sessions[sid] = StreamingSession(self.decoder, setting or self.default)
            while len(self.sessions) > self.max_sessions:
                self.sessions.popitem(last=False)
            return sid

    def get(self, sid: str) -> StreamingSession:
        session = self.sessions.get(sid)
        if session is None:
            raise KeyError(sid)
        self.sessions.move_to_end(sid)
        return session

    def feed(self, sid: str, words: list[str], finished: bool) -> dict:
        with self.lock:
            return self.get(sid).feed(words, finished)

    def state(self, sid: str) -> dict:
        session = self.get(sid)
        traj = session.trajectory()
        return {"id": sid, "setting": session.setting.name, "source": session.row.source, "read": session.row.read,
                "actions": traj.actions()[: len(traj.target) + session.row.read], "target": traj.text,
                "delays": traj.delays, "done": session.done, "truncated": session.row.truncated}


def _words(body: Any) -> tuple[list[str], bool]:
    if not isinstance(body, dict):
        raise ValueError("body: expected a JSON object")
    finished = body.get("finished", False)
    if not isinstance(finished, bool):
        raise ValueError("finished: expected true or false")
    if "words" in body and "text" in body:
        raise ValueError("give words or text, not both")
    if "text" in body:
        if not isinstance(body["text"], str):
            raise ValueError("text: expected a string")
        return body["text"].split(), finished
    words = body.get("words", [])
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() and len(w.split()) == 1 for w in words):
        raise ValueError("words: expected a list of single words")
    return [w.strip() for w in words], finished


def create_app(store: SessionStore, name: str = "simulmt"):
    """The FastAPI app of the session API above."""
    app = FastAPI(title=f"{name} simultaneous translation")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "code": status}}, status_code=status)

    async def body_of(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise ValueError("body: not valid JSON") from None

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": name, "sessions": len(store.sessions), "setting": store.default.name}

    @app.post("/sessions")
    async def open_session(request: Request):
        raw = await request.body()
        try:
            body = {} if not raw.strip() else await body_of(request)
            if not isinstance(body, dict):
                raise ValueError("body: expected a JSON object")
            setting = Setting.parse(body["setting"]) if "setting" in body else None
        except (ValueError, TypeError, AttributeError) as exc:
            return error(422, f"setting: {exc}")
        sid = store.open(setting)
        return {"id": sid, "setting": store.get(sid).setting.name}

    @app.post("/sessions/{sid}/source")
    async def source(sid: str, request: Request):
        try:
            words, finished = _words(await body_of(request))
        except ValueError as exc:
            return error(422, str(exc))
        try:
            return store.feed(sid, words, finished)
        except KeyError:
            return error(404, f"no session {sid}")
        except ValueError as exc:
            return error(409, str(exc))

    @app.get("/sessions/{sid}")
    def state(sid: str):
        try:
            return store.state(sid)
        except KeyError:
            return error(404, f"no session {sid}")

    @app.delete("/sessions/{sid}")
    def close(sid: str):
        with store.lock:
            if store.sessions.pop(sid, None) is None:
                return error(404, f"no session {sid}")
        return {"id": sid, "deleted": True}

    return app


def load_decoder(source: str) -> SimultaneousDecoder:
    """The decoder of a run folder (its final model) or a save_pretrained folder with the action tokens."""
    spec, _ = resolve_model(source)
    model, tok = load_policy(spec)
    return SimultaneousDecoder(model, tok)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    serving = bool(argv) and argv[0] == "serve"
    parser = argparse.ArgumentParser(prog=PROG + (" serve" if serving else ""), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a training run folder or a model folder")
    parser.add_argument("--setting", default="tau=0.9", help="latency setting: tau=T, tau=T,lag=L or wait-K (default tau=0.9)")
    if serving:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--max-sessions", type=int, default=256)
    else:
        parser.add_argument("source", nargs="+", help="source sentence(s), one argument each")
    args = parser.parse_args(argv[1:] if serving else argv)
    try:
        setting = Setting.parse(args.setting)
        decoder = load_decoder(args.model)
    except (ValueError, OSError) as exc:
        fail(PROG, exc)
    set_threads()
    if serving:
        import uvicorn

        store = SessionStore(decoder, setting, args.max_sessions)
        uvicorn.run(create_app(store, name=str(args.model)), host=args.host, port=args.port)
        return
    for sentence in args.source:
        session = StreamingSession(decoder, setting)
        words = sentence.split()
        for i, word in enumerate(words):
            step = session.feed([word], finished=i + 1 == len(words))
            print(f"read {word!r:>14}  ->  wrote: {' '.join(step['written'])}", flush=True)
        print(f"translation: {session.trajectory().text}   (delays {session.trajectory().delays})", flush=True)


if __name__ == "__main__":
    main()
