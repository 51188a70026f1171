"""A small OpenAI-compatible server for the serving tests: `/v1/models`, `/v1/completions` and
`/v1/chat/completions`, on 127.0.0.1, recording every request (path, headers in lower case, body).

It answers deterministically from the prompt (so tests know what to expect) and can misbehave on cue: a list of
behaviours is consumed one per request (then `default` applies): "ok", "500", "hang" (never answers), "close"
(drops the connection without an answer). With `logprobs=True` it echoes prompt log-probabilities the way vLLM
does: one token per whitespace-separated word (the space belongs to the word after it), each word scored
-0.25 * its length, the first token unscored (None), every token the top-1 choice unless it is "WRONG".
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional


def answer_for(prompt: str) -> str:
    """What the fake model generates for a prompt: its length, then a newline and more text (past a stop)."""
    return f"answer {len(prompt)}\nafter the stop"


def words(text: str) -> List[tuple]:
    """(token, offset): each word with the whitespace before it."""
    return [(m.group(0), m.start()) for m in re.finditer(r"\s*\S+|\s+$", text)]


def word_logprob(token: str) -> float:
    return -0.25 * len(token)


class FakeOpenAI:
    def __init__(self, behaviours: Optional[List[str]] = None, default: str = "ok", logprobs: bool = False,
                 stop_after: Optional[int] = None):
        self.behaviours = list(behaviours or [])
        self.default, self.logprobs, self.stop_after = default, logprobs, stop_after
        self.requests: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> List[str]:
        return [r["raw"] for r in self.requests]

    def next_behaviour(self) -> str:
        with self.lock:
            count = sum(1 for r in self.requests if r["method"] == "POST")
            if self.stop_after is not None and count > self.stop_after:
                return "close"
            return self.behaviours.pop(0) if self.behaviours else self.default

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append({"method": "GET", "path": self.path, "headers": self._headers(), "raw": ""})
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0,
                                                             "owned_by": "tests"}]})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
                with fake.lock:
                    fake.requests.append({"method": "POST", "path": self.path, "headers": self._headers(),
                                          "raw": raw})
                behaviour = fake.next_behaviour()
                if behaviour == "hang":
                    time.sleep(30)
                    return
                if behaviour == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if behaviour == "500":
                    self._send(500, {"error": {"message": "internal error", "type": "server_error"}})
                    return
                body = json.loads(raw)
                if self.path.endswith("/chat/completions"):
                    self._send(200, fake.chat(body))
                else:
                    self._send(200, fake.completion(body))

            def _headers(self) -> Dict[str, str]:
                return {k.lower(): v for k, v in self.headers.items()}

            def _send(self, code: int, payload: Dict[str, Any]) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def completion(self, body: Dict[str, Any]) -> Dict[str, Any]:
        prompt = body["prompt"]
        choice: Dict[str, Any] = {"index": 0, "finish_reason": "stop", "text": answer_for(prompt)}
        if body.get("echo"):
            choice["text"] = prompt + " next"
            choice["logprobs"] = self.prompt_logprobs(prompt) if self.logprobs else None
        return {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"],
                "choices": [choice]}

    def prompt_logprobs(self, prompt: str) -> Dict[str, Any]:
        tokens = words(prompt) + [(" next", len(prompt))]
        values = [None] + [word_logprob(t) for t, _ in tokens[1:]]
        top = [None] + [{t if t.strip() != "WRONG" else " other": word_logprob(t)} for t, _ in tokens[1:]]
        return {"tokens": [t for t, _ in tokens], "token_logprobs": values, "top_logprobs": top,
                "text_offset": [o for _, o in tokens]}

    def chat(self, body: Dict[str, Any]) -> Dict[str, Any]:
        text = json.dumps(body["messages"])
        return {"id": "chat-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer_for(text)}}]}
