"""The lesson routers: one module per capability a lesson builds, each mounted by ``create_app``."""
