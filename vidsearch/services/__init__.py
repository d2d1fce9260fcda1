"""The services behind the Archive, one job each; vidsearch.compose builds them and hands each its collaborators."""
