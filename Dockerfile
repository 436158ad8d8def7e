FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 app

COPY requirements/prod.lock requirements/prod.lock
RUN pip install -r requirements/prod.lock

COPY pyproject.toml README.md alembic.ini ./
COPY bot bot
COPY handlers handlers
COPY keyboards keyboards
COPY services services
COPY db db
COPY scheduler scheduler
COPY sandbox sandbox
COPY locales locales
RUN pip install --no-deps -e . && mkdir -p /app/data && chown app:app /app/data

USER app
ENV HTTP_HOST=0.0.0.0 HTTP_PORT=8000 DATA_DIR=/app/data LOG_FORMAT=json ENVIRONMENT=production
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["cryptouniverse", "run"]
