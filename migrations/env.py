"""Alembic environment: runs on the connection vidsearch hands over, or on sqlalchemy.url."""

from alembic import context
from sqlalchemy import create_engine

from vidsearch.store.schema import modelled

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, render_as_batch=True, include_name=modelled)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        context.configure(connection=conn, render_as_batch=True, include_name=modelled)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
