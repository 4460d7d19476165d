"""Ingest: from a camera card (or a folder) to jumps that belong to customers.

The pure core lives here, one concept per module, so each step can be tested on its
own and the supervisor only orchestrates:

* :mod:`.card` — what is on a card: video files, their proxies, GoPro chapters grouped
  into recordings, in camera order. Reads only.
* :mod:`.copy` — which files are new (identity by name, size, mtime, quick hash) and a
  crash-safe, cancellable, incremental copy into ``input/<batch uuid>/``.
* :mod:`.phases` — the phase and freefall-source vocabulary (no numpy: the models use it).
* :mod:`.freefall` — freefall and jump phases from the wind band of the audio, and
  :func:`.freefall.fuse` with the altitude.
* :mod:`.telemetry` — GoPro GPS altitude (``gpmd`` track, read without decoding) →
  freefall, fused with the sound by :func:`.freefall.fuse`.
* :mod:`.resolve` — recordings (QR customer, freefalls) → jumps with a state, a reason
  when staff must decide, and in/out points.
"""
