# GeoRisk application image (the database runs in its own PostGIS container; see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GEORISK_HOST=0.0.0.0 GEORISK_DATA_DIR=/data
WORKDIR /app
# The enterprise book (diagram.pdf) is set in a CJK font from Debian (layers/risk/fonts.py).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md alembic.ini ./
COPY geo_api geo_api
COPY layers layers
COPY tiles tiles
COPY scripts scripts
COPY migrations migrations
COPY web web
RUN pip install --no-cache-dir -e .
EXPOSE 8000
# Migrate, seed the demo city once, print a demo key per role, then serve.
CMD ["sh", "-c", "georisk migrate && georisk seed --if-empty --scale ${GEORISK_DEMO_SCALE:-1} && georisk keys demo && georisk serve --host 0.0.0.0"]
