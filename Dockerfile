# Scalp Radar production image: one image for web (Daphne), Celery workers, beat and migrate.
#   docker compose build        (see docker-compose.yml)
#   docker build -t scalpradar:latest .
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:$PATH" \
    SCALPRADAR_DATA_DIR=/app/var \
    NUMBA_CACHE_DIR=/app/var/numba-cache

# uv from PyPI, pinned to the minor version that wrote uv.lock.
RUN pip install --no-cache-dir "uv==0.13.*"

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when the lock file changes.
# (The project itself is not a package, `tool.uv.package = false`: the code is just copied.)
COPY pyproject.toml uv.lock .python-version ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .

# Non-root runtime user; it owns only the data dir (logs, static files, beat schedule).
RUN groupadd --system --gid 10001 scalpradar \
    && useradd --system --uid 10001 --gid scalpradar --home-dir /app --no-create-home scalpradar \
    && mkdir -p /app/var \
    && chown scalpradar:scalpradar /app/var
USER scalpradar

# Static files are collected at build time; the throw-away key only lets settings load (it is
# never used at run time, where SECRET_KEY comes from the environment).
RUN SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput --verbosity 0

EXPOSE 8000
CMD ["daphne", "--bind", "0.0.0.0", "--port", "8000", "--proxy-headers", "scalpradar.asgi:application"]
