# Nightdesk: a slim, non-root image that migrates the database, syncs the flows, then serves.
#   cp nightdesk.env.example nightdesk.env   # and fill it in
#   docker build -t nightdesk .
#   docker run -p 8000:8000 --env-file nightdesk.env -v nightdesk-var:/app/var nightdesk
# With PostgreSQL beside it: `docker compose up --build` (compose.yaml).
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir 'uv>=0.5,<1'
WORKDIR /app
ENV UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY app ./app
COPY migrations ./migrations
COPY alembic.ini ./
RUN uv sync --locked --no-dev

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app nightdesk
WORKDIR /app
COPY --from=build --chown=nightdesk /app /app
COPY --chown=nightdesk voice_flows ./voice_flows
# The embedded SQLite default lives here: a volume the non-root user can write.
RUN mkdir -p /app/var && chown nightdesk /app/var
VOLUME /app/var
USER nightdesk
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 NIGHTDESK_FLOWS_DIR=/app/voice_flows
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["sh", "-c", "nightdesk db upgrade && (nightdesk flows sync || echo 'flow files refused: the versions already loaded stay') && exec nightdesk serve --host 0.0.0.0 --port 8000"]
