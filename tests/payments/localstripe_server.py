"""Run localstripe (a fake Stripe API, PyPI `localstripe`) for the payment tests.

    python tests/payments/localstripe_server.py PORT

Differences from `python -m localstripe`, each for the tests' sake:
- it listens on 127.0.0.1 only (localstripe itself binds every address);
- it keeps its data in memory: localstripe pickles it to /tmp/localstripe.pickle after every
  write and reads it back at start, which other runs on the machine would share;
- it replays idempotent requests as Stripe documents: localstripe ignores `Idempotency-Key`,
  so a POST repeated with the same key and the same parameters answers the first response
  again, and with other parameters answers 400 `idempotency_error`;
- it logs every POST (path, API key, idempotency key) at GET /_config/test/requests, and
  DELETE /_config/test/state forgets everything between tests.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web


def build_app() -> web.Application:
    import localstripe.resources as resources

    resources.Store.dump_to_disk = lambda self: None  # memory only (see above)
    from localstripe.server import app

    replies: dict[tuple[str, str], tuple[str, bytes, int, bytes]] = {}
    posts: list[dict[str, str]] = []

    @web.middleware
    async def idempotency(request: web.Request, handler):
        if request.method != "POST" or request.path.startswith("/_config/"):
            return await handler(request)
        key = request.headers.get("Idempotency-Key", "")
        api_key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        body = await request.read()
        posts.append({"path": request.path, "api_key": api_key, "idempotency_key": key})
        if key and (api_key, key) in replies:
            path, first_body, status, reply = replies[(api_key, key)]
            if (path, first_body) != (request.path, body):
                return web.json_response(
                    {
                        "error": {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with "
                            "the same parameters they were first used with.",
                        }
                    },
                    status=400,
                )
            return web.Response(
                body=reply,
                status=status,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        response = await handler(request)
        if key and isinstance(response, web.Response) and response.body is not None:
            replies[(api_key, key)] = (request.path, body, response.status, response.body)
        return response

    async def requests_log(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(posts), content_type="application/json")

    async def forget(request: web.Request) -> web.Response:
        resources.store.clear()
        replies.clear()
        posts.clear()
        return web.Response()

    # After localstripe's error and auth middlewares, before its handlers.
    app.middlewares.insert(2, idempotency)
    app.router.add_get("/_config/test/requests", requests_log)
    app.router.add_delete("/_config/test/state", forget)
    return app


if __name__ == "__main__":
    web.run_app(build_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None)
