"""The web page's server: FastAPI routes, background jobs and the static page."""
