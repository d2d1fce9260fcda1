"""Faces, opt-in: found in kept frames (inside person boxes first), described by a face-recognition model, grouped
into identities per person appearance (finder), and into people across the archive (grouping)."""

from .finder import PersonBox, VideoFaces
from .models import FaceModel, load_face_model

__all__ = ["FaceModel", "PersonBox", "VideoFaces", "load_face_model"]
