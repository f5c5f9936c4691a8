# Nightdesk: a slim, non-root image that migrates the database, then serves.
#   docker build -t nightdesk .
#   docker run -p 8000:8000 -e NIGHTDESK_DATABASE_URL=postgresql+psycopg://... \
#     -e NIGHTDESK_ENVIRONMENT=production -e NIGHTDESK_PUBLIC_URL=https://calls.example.com \
#     -e NIGHTDESK_TWILIO_ACCOUNT_SID=AC... -e NIGHTDESK_TWILIO_AUTH_TOKEN=... \
#     -e NIGHTDESK_SECRET_KEY=... nightdesk
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
USER nightdesk
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 NIGHTDESK_FLOWS_DIR=/app/voice_flows
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["sh", "-c", "nightdesk db upgrade && (nightdesk flows sync || echo 'flow files refused: the versions already loaded stay') && exec nightdesk serve --host 0.0.0.0 --port 8000"]
