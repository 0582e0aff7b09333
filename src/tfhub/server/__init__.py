"""The hub server: storage backends, catalog, publishing, pages, and the client side of it."""
