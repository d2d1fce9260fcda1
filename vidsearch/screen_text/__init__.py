"""Text on screen: lines of text read in kept frames (and inside vehicles' boxes, where plates and fleet numbers
are), joined into spans, matched by queries tolerant of the reader's confusions, and a video's clock read from a
burned-in overlay."""

from .fold import fold
from .reader import TextReader
from .spans import TextSpans

__all__ = ["TextReader", "TextSpans", "fold"]
