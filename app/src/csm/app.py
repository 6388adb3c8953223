"""FastAPI application factory."""

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="Cassandra Security Manager")

    @app.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "ok"}

    return app
