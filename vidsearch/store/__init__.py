"""The catalog: what every vector means (video, time, box, score), in SQLite through SQLAlchemy."""

from .catalog import Catalog
from .schema import head_revision

__all__ = ["Catalog", "head_revision"]
