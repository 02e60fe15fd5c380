"""The stream network every stage shares: ``stream`` (filter + head), ``filters`` (``TEMPORAL_FILTERS``: ss-tcn,
pdan, tgm), ``heads`` (sigmoid / softmax classifiers and L_cls), ``masks`` (padding helpers) and ``checkpoint``
(``save_stream``, ``load_stream`` with its typed ``StreamCheckpoint``).
"""
