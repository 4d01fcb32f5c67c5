# The database of `docker compose up`: PostGIS plus pg_partman 4.x from Debian's own packages
# (migration 0015 registers positions and readings with it). The PGDG repository this image
# also reads ships pg_partman 5.x, whose API and partition names differ: the version is pinned.
FROM postgis/postgis:15-3.4
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15-partman=4.7.2-1 \
    && rm -rf /var/lib/apt/lists/*
