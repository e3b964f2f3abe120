"""The cache-hit baseline: a bare Starlette route returning fixed bytes from memory, served by
uvicorn with the settings of edgesite's ``run_node`` (edgesite/cli.py): access log off, log
level warning, lifespan on, uvicorn's default loop and HTTP parser (uvloop, httptools).

    python benchmarks/baseline_app.py --bodies bodies.pickle --port 8101

``bodies.pickle`` maps URL path -> (content type, body bytes), taken from an edgesite node so
both servers send the same bytes. Unknown paths get 404.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def make_app(bodies: dict[str, tuple[str, bytes]]) -> Starlette:
    async def page(request: Request) -> Response:
        found = bodies.get(request.url.path)
        if found is None:
            return Response(b"404 Not Found\n", status_code=404, media_type="text/plain")
        ctype, body = found
        return Response(body, media_type=ctype)

    return Starlette(routes=[Route("/{path:path}", page)])


async def serve(bodies: dict[str, tuple[str, bytes]], host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(make_app(bodies), host=host, port=port, access_log=False, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    with open(args.bodies, "rb") as fh:
        bodies = pickle.load(fh)
    asyncio.run(serve(bodies, args.host, args.port))


if __name__ == "__main__":
    main()
