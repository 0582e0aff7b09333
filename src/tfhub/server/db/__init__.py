"""The catalog database (SQLite or PostgreSQL): connections, migrations, rows, queries and
download counts. :class:`tfhub.server.catalog.Catalog` is its only user."""
