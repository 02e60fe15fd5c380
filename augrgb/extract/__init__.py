"""Stage 1: decode raw videos, compute flow and poses, encode snippets (I3D, AGCN), write the feature store."""
