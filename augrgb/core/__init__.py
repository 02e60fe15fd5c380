"""The bottom layer, shared by every other: ``errors``, ``paths``, ``files`` (atomic writes, content hashes),
``memory``, ``registry``, ``config`` (the one config loader; presets in ``augrgb/configs``), ``grid`` (the one
snippet grid) and ``inputs`` (the inputs of batch commands). See docs/architecture.md.
"""
