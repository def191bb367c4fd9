"""The notifier's edges: the SQL status store and its tables (``store``, ``models``), the catalogue of
pre-generated avatars in S3 (``catalogue``) and the in-process fan-out to open SSE streams
(``broadcast``). They apply the pure core (``..core``) to the outside world."""
